//! URDF parsing: links with their collision geometry, joints with origin, axis, limits and mimic.
//!
//! Only what the planner needs is read (no inertia, no visuals, no transmissions); every value it
//! reads is checked, and an error names the file, the element (with its line) and what was
//! expected. The parser is `roxmltree` (read-only DOM with text positions).

use nalgebra::{Isometry3, Translation3, UnitQuaternion, Vector3};

use crate::{Error, Result};

/// A URDF joint type. `Floating` and `Planar` are parsed so that the chain can refuse them by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrdfJointType {
    /// Rotation about the axis within position limits.
    Revolute,
    /// Rotation about the axis without position limits.
    Continuous,
    /// Translation along the axis.
    Prismatic,
    /// Rigid.
    Fixed,
    /// Six degrees of freedom (refused on a chain).
    Floating,
    /// Two translations and one rotation (refused on a chain).
    Planar,
}

impl UrdfJointType {
    /// The URDF spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            UrdfJointType::Revolute => "revolute",
            UrdfJointType::Continuous => "continuous",
            UrdfJointType::Prismatic => "prismatic",
            UrdfJointType::Fixed => "fixed",
            UrdfJointType::Floating => "floating",
            UrdfJointType::Planar => "planar",
        }
    }
}

/// A joint's `<limit>` (SI units; `lower`/`upper` default to 0 as in the URDF spec).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UrdfLimit {
    /// Lower position limit (rad or m).
    pub lower: f64,
    /// Upper position limit (rad or m).
    pub upper: f64,
    /// Velocity limit (rad/s or m/s); `None` when the attribute is absent.
    pub velocity: Option<f64>,
}

/// One `<joint>`.
#[derive(Debug, Clone, PartialEq)]
pub struct UrdfJoint {
    /// `name` attribute.
    pub name: String,
    /// `type` attribute.
    pub kind: UrdfJointType,
    /// `<parent link>`.
    pub parent: String,
    /// `<child link>`.
    pub child: String,
    /// `<origin>`: child joint frame in the parent link frame.
    pub origin: Isometry3<f64>,
    /// `<axis xyz>` normalised (default x).
    pub axis: Vector3<f64>,
    /// `<limit>`, when present.
    pub limit: Option<UrdfLimit>,
    /// `<mimic joint>`, when present.
    pub mimic: Option<String>,
    /// Line of the element in the file (for messages).
    pub line: u32,
}

/// A collision geometry (URDF units: metres; box sizes are full extents).
#[derive(Debug, Clone, PartialEq)]
pub enum Geometry {
    /// `<box size="x y z">`.
    Box { size: [f64; 3] },
    /// `<cylinder radius length>`, axis z.
    Cylinder { radius: f64, length: f64 },
    /// `<sphere radius>`.
    Sphere { radius: f64 },
    /// `<mesh filename scale>`.
    Mesh { filename: String, scale: [f64; 3] },
}

/// One `<collision>` of a link.
#[derive(Debug, Clone, PartialEq)]
pub struct UrdfCollision {
    /// `<origin>` of the geometry in the link frame.
    pub origin: Isometry3<f64>,
    /// The geometry.
    pub geometry: Geometry,
}

/// One `<link>`.
#[derive(Debug, Clone, PartialEq)]
pub struct UrdfLink {
    /// `name` attribute.
    pub name: String,
    /// Its `<collision>` elements.
    pub collisions: Vec<UrdfCollision>,
}

/// A parsed URDF.
#[derive(Debug, Clone, PartialEq)]
pub struct Urdf {
    /// `<robot name>`.
    pub name: String,
    /// Where it came from (a path, or `robot_description`), for messages.
    pub source: String,
    /// Links in file order.
    pub links: Vec<UrdfLink>,
    /// Joints in file order.
    pub joints: Vec<UrdfJoint>,
}

impl Urdf {
    /// Reads and parses a URDF file.
    pub fn from_file(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_xml(&text, &path.display().to_string())
    }

    /// Parses URDF XML (e.g. the `robot_description` parameter); `source` names it in errors.
    pub fn from_xml(xml: &str, source: &str) -> Result<Self> {
        let doc = roxmltree::Document::parse(xml)
            .map_err(|e| Error::robot_file(source, "XML", format!("not well-formed XML: {e}")))?;
        let ctx = Ctx { doc: &doc, source };
        let root = doc.root_element();
        if root.tag_name().name() != "robot" {
            return Err(ctx.err(
                root,
                format!(
                    "expected the root element <robot>, found <{}>",
                    root.tag_name().name()
                ),
            ));
        }
        let name = root.attribute("name").unwrap_or("").to_string();
        let mut links: Vec<UrdfLink> = Vec::new();
        let mut joints: Vec<UrdfJoint> = Vec::new();
        for node in root.children().filter(|n| n.is_element()) {
            match node.tag_name().name() {
                "link" => {
                    let link = ctx.link(node)?;
                    if links.iter().any(|l| l.name == link.name) {
                        return Err(ctx.err(node, format!("duplicate link `{}`", link.name)));
                    }
                    links.push(link);
                }
                "joint" => {
                    let joint = ctx.joint(node)?;
                    if joints.iter().any(|j| j.name == joint.name) {
                        return Err(ctx.err(node, format!("duplicate joint `{}`", joint.name)));
                    }
                    joints.push(joint);
                }
                _ => {}
            }
        }
        for joint in &joints {
            for (role, link) in [("parent", &joint.parent), ("child", &joint.child)] {
                if !links.iter().any(|l| &l.name == link) {
                    return Err(Error::robot_file(
                        source,
                        format!("<joint name=\"{}\"> (line {})", joint.name, joint.line),
                        format!("{role} link `{link}` is not a <link> of this URDF"),
                    ));
                }
            }
            if let Some(other) = joints
                .iter()
                .find(|j| j.child == joint.child && j.name != joint.name)
            {
                return Err(Error::robot_file(
                    source,
                    format!("<joint name=\"{}\"> (line {})", joint.name, joint.line),
                    format!(
                        "link `{}` is the child of two joints (`{}` too): a URDF is a tree",
                        joint.child, other.name
                    ),
                ));
            }
        }
        Ok(Urdf {
            name,
            source: source.to_string(),
            links,
            joints,
        })
    }

    /// The link called `name`.
    pub fn link(&self, name: &str) -> Option<&UrdfLink> {
        self.links.iter().find(|l| l.name == name)
    }

    /// The joint whose child is `link`.
    pub fn parent_joint(&self, link: &str) -> Option<&UrdfJoint> {
        self.joints.iter().find(|j| j.child == link)
    }
}

struct Ctx<'a, 'input> {
    doc: &'a roxmltree::Document<'input>,
    source: &'a str,
}

impl Ctx<'_, '_> {
    fn describe(&self, node: roxmltree::Node) -> String {
        let line = self.doc.text_pos_at(node.range().start).row;
        match node.attribute("name") {
            Some(name) => format!("<{} name=\"{name}\"> (line {line})", node.tag_name().name()),
            None => format!("<{}> (line {line})", node.tag_name().name()),
        }
    }

    fn err(&self, node: roxmltree::Node, reason: impl Into<String>) -> Error {
        Error::robot_file(self.source, self.describe(node), reason)
    }

    fn required<'n>(&self, node: roxmltree::Node<'n, '_>, attr: &str) -> Result<&'n str> {
        node.attribute(attr)
            .ok_or_else(|| self.err(node, format!("attribute `{attr}` is missing")))
    }

    fn number(&self, node: roxmltree::Node, attr: &str, text: &str) -> Result<f64> {
        let value: f64 = text.trim().parse().map_err(|_| {
            self.err(
                node,
                format!("attribute `{attr}`: expected a number, found `{text}`"),
            )
        })?;
        if !value.is_finite() {
            return Err(self.err(
                node,
                format!("attribute `{attr}`: expected a finite number, found `{text}`"),
            ));
        }
        Ok(value)
    }

    fn triple(&self, node: roxmltree::Node, attr: &str, default: [f64; 3]) -> Result<[f64; 3]> {
        let Some(text) = node.attribute(attr) else {
            return Ok(default);
        };
        let parts: Vec<&str> = text.split_whitespace().collect();
        if parts.len() != 3 {
            return Err(self.err(
                node,
                format!("attribute `{attr}`: expected three numbers, found `{text}`"),
            ));
        }
        let mut out = [0.0; 3];
        for (o, p) in out.iter_mut().zip(&parts) {
            *o = self.number(node, attr, p)?;
        }
        Ok(out)
    }

    fn child<'n, 'i>(
        &self,
        node: roxmltree::Node<'n, 'i>,
        tag: &str,
    ) -> Option<roxmltree::Node<'n, 'i>> {
        node.children()
            .find(|n| n.is_element() && n.tag_name().name() == tag)
    }

    fn origin(&self, parent: roxmltree::Node) -> Result<Isometry3<f64>> {
        let Some(node) = self.child(parent, "origin") else {
            return Ok(Isometry3::identity());
        };
        let xyz = self.triple(node, "xyz", [0.0; 3])?;
        let rpy = self.triple(node, "rpy", [0.0; 3])?;
        Ok(Isometry3::from_parts(
            Translation3::new(xyz[0], xyz[1], xyz[2]),
            // URDF: R = Rz(yaw) Ry(pitch) Rx(roll), nalgebra's convention for these arguments.
            UnitQuaternion::from_euler_angles(rpy[0], rpy[1], rpy[2]),
        ))
    }

    fn link(&self, node: roxmltree::Node) -> Result<UrdfLink> {
        let name = self.required(node, "name")?.to_string();
        let mut collisions = Vec::new();
        for collision in node
            .children()
            .filter(|n| n.is_element() && n.tag_name().name() == "collision")
        {
            let origin = self.origin(collision)?;
            let geometry_node = self.child(collision, "geometry").ok_or_else(|| {
                self.err(
                    collision,
                    format!("link `{name}`: <collision> without <geometry>"),
                )
            })?;
            let shape = geometry_node
                .children()
                .find(|n| n.is_element())
                .ok_or_else(|| self.err(geometry_node, "empty <geometry>"))?;
            let positive = |attr: &str| -> Result<f64> {
                let v = self.number(shape, attr, self.required(shape, attr)?)?;
                if !(v > 0.0) {
                    return Err(self.err(shape, format!("`{attr}` must be > 0, found {v}")));
                }
                Ok(v)
            };
            let geometry = match shape.tag_name().name() {
                "box" => {
                    self.required(shape, "size")?;
                    let size = self.triple(shape, "size", [0.0; 3])?;
                    if !size.iter().all(|s| *s > 0.0) {
                        return Err(self.err(shape, format!("`size` must be > 0, found {size:?}")));
                    }
                    Geometry::Box { size }
                }
                "cylinder" => Geometry::Cylinder {
                    radius: positive("radius")?,
                    length: positive("length")?,
                },
                "sphere" => Geometry::Sphere {
                    radius: positive("radius")?,
                },
                "mesh" => Geometry::Mesh {
                    filename: self.required(shape, "filename")?.to_string(),
                    scale: self.triple(shape, "scale", [1.0; 3])?,
                },
                other => {
                    return Err(self.err(
                        shape,
                        format!(
                        "unsupported geometry <{other}> (expected box, cylinder, sphere or mesh)"
                    ),
                    ))
                }
            };
            collisions.push(UrdfCollision { origin, geometry });
        }
        Ok(UrdfLink { name, collisions })
    }

    fn joint(&self, node: roxmltree::Node) -> Result<UrdfJoint> {
        let name = self.required(node, "name")?.to_string();
        let kind = match self.required(node, "type")? {
            "revolute" => UrdfJointType::Revolute,
            "continuous" => UrdfJointType::Continuous,
            "prismatic" => UrdfJointType::Prismatic,
            "fixed" => UrdfJointType::Fixed,
            "floating" => UrdfJointType::Floating,
            "planar" => UrdfJointType::Planar,
            other => {
                return Err(self.err(
                    node,
                    format!("unknown joint type `{other}` (expected revolute, continuous, prismatic, fixed, floating or planar)"),
                ))
            }
        };
        let link_of = |tag: &str| -> Result<String> {
            let element = self
                .child(node, tag)
                .ok_or_else(|| self.err(node, format!("<{tag} link=\"...\"/> is missing")))?;
            Ok(self.required(element, "link")?.to_string())
        };
        let parent = link_of("parent")?;
        let child = link_of("child")?;
        let origin = self.origin(node)?;
        let axis = match self.child(node, "axis") {
            None => Vector3::x(),
            Some(axis_node) => {
                let a = self.triple(axis_node, "xyz", [1.0, 0.0, 0.0])?;
                let v = Vector3::new(a[0], a[1], a[2]);
                let norm = v.norm();
                if kind != UrdfJointType::Fixed && !(norm > 1e-9) {
                    return Err(self.err(axis_node, "axis `xyz` must be a non-zero vector"));
                }
                if norm > 1e-9 {
                    v / norm
                } else {
                    Vector3::x()
                }
            }
        };
        let limit = match self.child(node, "limit") {
            None => None,
            Some(limit_node) => {
                let get = |attr: &str| -> Result<Option<f64>> {
                    limit_node
                        .attribute(attr)
                        .map(|t| self.number(limit_node, attr, t))
                        .transpose()
                };
                Some(UrdfLimit {
                    lower: get("lower")?.unwrap_or(0.0),
                    upper: get("upper")?.unwrap_or(0.0),
                    velocity: get("velocity")?,
                })
            }
        };
        let mimic = match self.child(node, "mimic") {
            None => None,
            Some(m) => Some(self.required(m, "joint")?.to_string()),
        };
        Ok(UrdfJoint {
            name,
            kind,
            parent,
            child,
            origin,
            axis,
            limit,
            mimic,
            line: self.doc.text_pos_at(node.range().start).row,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_LINKS: &str = r#"<robot name="r">
      <link name="a"><collision><origin xyz="0 0 0.1"/><geometry><box size="0.1 0.2 0.3"/></geometry></collision></link>
      <link name="b"/>
      <joint name="j" type="revolute"><parent link="a"/><child link="b"/>
        <origin xyz="0 0 1" rpy="0 0 1.5707963267948966"/><axis xyz="0 0 2"/>
        <limit lower="-1" upper="1" velocity="2" effort="1"/></joint>
    </robot>"#;

    #[test]
    fn parses_links_joints_and_geometry() {
        let urdf = Urdf::from_xml(TWO_LINKS, "t.urdf").unwrap();
        assert_eq!(urdf.name, "r");
        assert_eq!(urdf.links.len(), 2);
        let j = &urdf.joints[0];
        assert_eq!(j.kind, UrdfJointType::Revolute);
        assert!((j.axis - Vector3::z()).norm() < 1e-12);
        assert_eq!(j.limit.unwrap().velocity, Some(2.0));
        let p = j.origin * nalgebra::Point3::new(1.0, 0.0, 0.0);
        assert!((p.coords - Vector3::new(0.0, 1.0, 1.0)).norm() < 1e-12);
        assert_eq!(
            urdf.links[0].collisions[0].geometry,
            Geometry::Box {
                size: [0.1, 0.2, 0.3]
            }
        );
    }

    #[test]
    fn errors_name_file_element_and_expectation() {
        let bad = TWO_LINKS.replace("<child link=\"b\"/>", "<child link=\"zz\"/>");
        let e = Urdf::from_xml(&bad, "t.urdf").unwrap_err().to_string();
        assert!(
            e.contains("t.urdf") && e.contains("<joint name=\"j\">") && e.contains("`zz`"),
            "{e}"
        );

        let bad = TWO_LINKS.replace("upper=\"1\"", "upper=\"nan\"");
        let e = Urdf::from_xml(&bad, "t.urdf").unwrap_err().to_string();
        assert!(e.contains("<limit>") && e.contains("finite"), "{e}");

        let bad = TWO_LINKS.replace("type=\"revolute\"", "type=\"hinge\"");
        let e = Urdf::from_xml(&bad, "t.urdf").unwrap_err().to_string();
        assert!(e.contains("unknown joint type `hinge`"), "{e}");

        let bad = TWO_LINKS.replace("0.1 0.2 0.3", "0.1 0.2");
        let e = Urdf::from_xml(&bad, "t.urdf").unwrap_err().to_string();
        assert!(e.contains("<box>") && e.contains("three numbers"), "{e}");

        let e = Urdf::from_xml("<robot", "t.urdf").unwrap_err().to_string();
        assert!(e.contains("t.urdf") && e.contains("XML"), "{e}");

        let e = Urdf::from_xml("<sdf/>", "t.urdf").unwrap_err().to_string();
        assert!(e.contains("<robot>"), "{e}");
    }
}
