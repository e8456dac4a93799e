//! [`Robot`]: a serial chain from a URDF between a base and a tip link, with merged joint limits,
//! collision spheres and the self-collision pairs to check.
//!
//! Internally the chain is a list of *bodies*: body 0 is rigid with the base link, body `j + 1`
//! moves with joint `j`. Every link on the chain (and every link fixed to one, e.g. a flange or a
//! hand beyond the tip) belongs to one body at a constant offset, and so does every sphere.

use std::path::PathBuf;

use nalgebra::Vector3;

use super::frame::Frame;
use super::joint_limits::{JointLimits, JointLimitsFile};
use super::spheres::{load_spheres, SphereSpec};
use super::srdf::{load_srdf, DisabledPair};
use super::urdf::{Urdf, UrdfJointType};
use crate::{Error, Result};

/// A moving joint's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JointKind {
    /// Rotation within limits.
    Revolute,
    /// Rotation without limits (interpolated along the shortest signed difference).
    Continuous,
    /// Translation.
    Prismatic,
}

/// A moving joint of the chain, base to tip.
#[derive(Debug, Clone, PartialEq)]
pub struct RobotJoint {
    /// Name (as in `/joint_states`).
    pub name: String,
    /// Type.
    pub kind: JointKind,
    /// Merged limits.
    pub limits: JointLimits,
    /// Joint frame in the parent body frame (fixed joints folded in).
    pub(crate) offset: Frame,
    /// Unit axis in the joint frame.
    pub(crate) axis: Vector3<f64>,
}

/// A link of the robot: the body it moves with and its frame in that body's frame.
#[derive(Debug, Clone, PartialEq)]
pub struct RobotLink {
    /// Name.
    pub name: String,
    /// Body index (0: base; `j + 1`: after joint `j`).
    pub body: usize,
    /// Link frame in the body frame.
    pub offset: Frame,
}

/// A collision sphere, fixed to a link.
#[derive(Debug, Clone, PartialEq)]
pub struct CollisionSphere {
    /// Index into [`Robot::links`].
    pub link: usize,
    /// Body index.
    pub body: usize,
    /// Centre in the body frame, metres.
    pub center: Vector3<f64>,
    /// Radius, metres.
    pub radius: f64,
}

/// Where a URDF comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum UrdfSource {
    /// A file.
    Path(PathBuf),
    /// XML text (e.g. the `robot_description` parameter), with a name for messages.
    Xml { xml: String, name: String },
}

/// The files that describe a robot, and the chain's ends.
#[derive(Debug, Clone, PartialEq)]
pub struct RobotFiles {
    /// The URDF.
    pub urdf: UrdfSource,
    /// cuRobo-layout spheres file (no spheres: no collision checks).
    pub spheres: Option<PathBuf>,
    /// SRDF with `<disable_collisions>`.
    pub srdf: Option<PathBuf>,
    /// MoveIt `joint_limits.yaml`.
    pub joint_limits: Option<PathBuf>,
    /// Base link (default: the URDF's root link).
    pub base_link: Option<String>,
    /// Tip link (default: the only leaf link).
    pub tip_link: Option<String>,
    /// Skip self-collision between links on the same body or one joint apart (default true).
    pub skip_adjacent: bool,
}

impl RobotFiles {
    /// Just a URDF file, defaults elsewhere.
    pub fn urdf(path: impl Into<PathBuf>) -> Self {
        RobotFiles {
            urdf: UrdfSource::Path(path.into()),
            spheres: None,
            srdf: None,
            joint_limits: None,
            base_link: None,
            tip_link: None,
            skip_adjacent: true,
        }
    }
}

/// A serial arm: chain, limits, spheres and self-collision pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct Robot {
    /// `<robot name>`.
    pub name: String,
    /// Base link (the planning frame).
    pub base_link: String,
    /// Tip link (the end effector).
    pub tip_link: String,
    /// Moving joints, base to tip.
    pub joints: Vec<RobotJoint>,
    /// Links of the chain and links fixed to them.
    pub links: Vec<RobotLink>,
    /// Collision spheres.
    pub spheres: Vec<CollisionSphere>,
    /// Sphere index pairs checked for self-collision (`i < j`).
    pub self_pairs: Vec<(u32, u32)>,
    /// Index of the tip in `links`.
    pub tip: usize,
    /// `lever[s * dof + j]`: an upper bound on the distance from joint `j`'s axis to sphere
    /// `s`'s centre in any configuration (0 for joints after the sphere's body); for a prismatic
    /// joint, 1 (the centre moves as the joint does).
    pub lever: Vec<f64>,
}

impl Robot {
    /// Number of moving joints.
    pub fn dof(&self) -> usize {
        self.joints.len()
    }

    /// Joint names, base to tip.
    pub fn joint_names(&self) -> Vec<String> {
        self.joints.iter().map(|j| j.name.clone()).collect()
    }

    /// Index of the link called `name`.
    pub fn link_index(&self, name: &str) -> Option<usize> {
        self.links.iter().position(|l| l.name == name)
    }

    /// Loads every file and builds the robot.
    pub fn load(files: &RobotFiles) -> Result<Self> {
        let urdf = match &files.urdf {
            UrdfSource::Path(p) => Urdf::from_file(p)?,
            UrdfSource::Xml { xml, name } => Urdf::from_xml(xml, name)?,
        };
        let limits = files
            .joint_limits
            .as_deref()
            .map(JointLimitsFile::load)
            .transpose()?;
        let spheres = files.spheres.as_deref().map(load_spheres).transpose()?;
        let srdf = files.srdf.as_deref().map(load_srdf).transpose()?;
        let srdf_source = files
            .srdf
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let spheres_source = files
            .spheres
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let mut robot = Self::from_urdf(
            &urdf,
            files.base_link.as_deref(),
            files.tip_link.as_deref(),
            limits.as_ref(),
        )?;
        if let Some(spheres) = &spheres {
            robot.set_spheres(&urdf, spheres, &spheres_source)?;
        }
        robot.set_self_pairs(
            &urdf,
            srdf.as_deref().unwrap_or(&[]),
            &srdf_source,
            files.skip_adjacent,
        )?;
        Ok(robot)
    }

    /// Builds the chain from `base` to `tip` (defaults: root link, only leaf link).
    pub fn from_urdf(
        urdf: &Urdf,
        base: Option<&str>,
        tip: Option<&str>,
        limits_file: Option<&JointLimitsFile>,
    ) -> Result<Self> {
        let src = urdf.source.as_str();
        let root_links: Vec<&str> = urdf
            .links
            .iter()
            .filter(|l| urdf.parent_joint(&l.name).is_none())
            .map(|l| l.name.as_str())
            .collect();
        let base = match base {
            Some(b) => b.to_string(),
            None => match root_links.as_slice() {
                [one] => one.to_string(),
                _ => {
                    return Err(Error::robot_file(
                        src,
                        "<robot>",
                        format!("cannot pick a base link: root links {root_links:?}; name one"),
                    ))
                }
            },
        };
        let tip = match tip {
            Some(t) => t.to_string(),
            None => {
                let leaves: Vec<&str> = urdf
                    .links
                    .iter()
                    .filter(|l| !urdf.joints.iter().any(|j| j.parent == l.name))
                    .map(|l| l.name.as_str())
                    .collect();
                match leaves.as_slice() {
                    [one] => one.to_string(),
                    _ => {
                        return Err(Error::robot_file(
                            src,
                            "<robot>",
                            format!("cannot pick a tip link: leaf links {leaves:?}; name one"),
                        ))
                    }
                }
            }
        };
        for (role, name) in [("base", &base), ("tip", &tip)] {
            if urdf.link(name).is_none() {
                let names: Vec<&str> = urdf.links.iter().map(|l| l.name.as_str()).collect();
                return Err(Error::robot_file(
                    src,
                    format!("{role} link `{name}`"),
                    format!("no such <link> (links: {names:?})"),
                ));
            }
        }
        // Walk from the tip up to the base.
        let mut path = Vec::new();
        let mut link = tip.clone();
        while link != base {
            let Some(joint) = urdf.parent_joint(&link) else {
                return Err(Error::robot_file(
                    src,
                    format!("tip link `{tip}`"),
                    format!("is not below base link `{base}` (walking up from the tip ends at root `{link}`)"),
                ));
            };
            path.push(joint);
            link = joint.parent.clone();
        }
        path.reverse();
        let mut joints: Vec<RobotJoint> = Vec::new();
        let mut links = vec![RobotLink {
            name: base.clone(),
            body: 0,
            offset: Frame::IDENTITY,
        }];
        let mut pending = Frame::IDENTITY; // current link frame in the current body frame
        for joint in &path {
            let element = format!("<joint name=\"{}\"> (line {})", joint.name, joint.line);
            if let Some(m) = &joint.mimic {
                return Err(Error::robot_file(
                    src,
                    element,
                    format!("mimic joints are not supported (mimics `{m}`); fix it or end the chain before it"),
                ));
            }
            let origin = Frame::from_isometry(&joint.origin);
            let kind = match joint.kind {
                UrdfJointType::Fixed => {
                    pending = pending.compose(&origin);
                    links.push(RobotLink {
                        name: joint.child.clone(),
                        body: joints.len(),
                        offset: pending,
                    });
                    continue;
                }
                UrdfJointType::Revolute => JointKind::Revolute,
                UrdfJointType::Continuous => JointKind::Continuous,
                UrdfJointType::Prismatic => JointKind::Prismatic,
                UrdfJointType::Floating | UrdfJointType::Planar => {
                    return Err(Error::robot_file(
                        src,
                        element,
                        format!(
                            "{} joints are not supported on the chain (a floating base? pick a base link below it)",
                            joint.kind.as_str()
                        ),
                    ))
                }
            };
            let mut limits = match (kind, joint.limit) {
                (JointKind::Continuous, l) => JointLimits {
                    lower: f64::NEG_INFINITY,
                    upper: f64::INFINITY,
                    max_velocity: l.and_then(|l| l.velocity).unwrap_or(f64::NAN),
                    max_acceleration: None,
                },
                (_, Some(l)) => JointLimits {
                    lower: l.lower,
                    upper: l.upper,
                    max_velocity: l.velocity.unwrap_or(f64::NAN),
                    max_acceleration: None,
                },
                (_, None) => {
                    return Err(Error::robot_file(
                        src,
                        element,
                        format!(
                            "a {} joint needs <limit lower upper velocity>",
                            joint.kind.as_str()
                        ),
                    ))
                }
            };
            let mut velocity_found = limits.max_velocity.is_finite();
            if let Some(file) = limits_file {
                file.apply(&joint.name, &mut limits, &mut velocity_found);
            }
            if !velocity_found || !(limits.max_velocity > 0.0) {
                return Err(Error::robot_file(
                    src,
                    element,
                    "no velocity limit > 0: expected <limit velocity> or max_velocity in joint_limits.yaml",
                ));
            }
            if kind != JointKind::Continuous && !(limits.lower < limits.upper) {
                return Err(Error::robot_file(
                    src,
                    element,
                    format!(
                        "expected <limit> lower < upper, found {} .. {}",
                        limits.lower, limits.upper
                    ),
                ));
            }
            joints.push(RobotJoint {
                name: joint.name.clone(),
                kind,
                limits,
                offset: pending.compose(&origin),
                axis: joint.axis,
            });
            pending = Frame::IDENTITY;
            links.push(RobotLink {
                name: joint.child.clone(),
                body: joints.len(),
                offset: Frame::IDENTITY,
            });
        }
        if joints.is_empty() {
            return Err(Error::robot_file(
                src,
                format!("chain `{base}` -> `{tip}`"),
                "has no moving joint",
            ));
        }
        if let Some(file) = limits_file {
            let chain: Vec<&str> = joints.iter().map(|j| j.name.as_str()).collect();
            let all: Vec<&str> = urdf.joints.iter().map(|j| j.name.as_str()).collect();
            file.check_joints(&chain, &all)?;
        }
        let tip_index = links.len() - 1;
        // Links fixed to chain links (flanges, hands, tool frames beyond the tip).
        let mut i = 0;
        while i < links.len() {
            let (parent, body, offset) = (links[i].name.clone(), links[i].body, links[i].offset);
            for joint in urdf.joints.iter().filter(|j| j.parent == parent) {
                if joint.kind == UrdfJointType::Fixed
                    && !links.iter().any(|l| l.name == joint.child)
                {
                    links.push(RobotLink {
                        name: joint.child.clone(),
                        body,
                        offset: offset.compose(&Frame::from_isometry(&joint.origin)),
                    });
                }
            }
            i += 1;
        }
        let mut robot = Robot {
            name: urdf.name.clone(),
            base_link: base,
            tip_link: tip,
            joints,
            links,
            spheres: Vec::new(),
            self_pairs: Vec::new(),
            tip: tip_index,
            lever: Vec::new(),
        };
        robot.update_levers();
        Ok(robot)
    }

    /// Sets the collision spheres (link-frame specs) and recomputes the lever bounds.
    pub fn set_spheres(&mut self, urdf: &Urdf, specs: &[SphereSpec], source: &str) -> Result<()> {
        let mut spheres = Vec::with_capacity(specs.len());
        for spec in specs {
            let Some(link) = self.link_index(&spec.link) else {
                let reason = if urdf.link(&spec.link).is_some() {
                    format!(
                        "link `{}` is in the URDF but not on the chain `{}` -> `{}` nor fixed to it",
                        spec.link, self.base_link, self.tip_link
                    )
                } else {
                    format!("no link `{}` in the URDF {}", spec.link, urdf.source)
                };
                return Err(Error::robot_file(
                    source,
                    format!("collision_spheres.{}", spec.link),
                    reason,
                ));
            };
            let l = &self.links[link];
            let c = Vector3::new(spec.center[0], spec.center[1], spec.center[2]);
            spheres.push(CollisionSphere {
                link,
                body: l.body,
                center: l.offset.point(&c),
                radius: spec.radius,
            });
        }
        self.spheres = spheres;
        self.self_pairs.clear();
        self.update_levers();
        Ok(())
    }

    /// Chooses the sphere pairs to check for self-collision: every pair on different links,
    /// less pairs of links on one body or one joint apart (when `skip_adjacent`) and the SRDF's
    /// disabled pairs. SRDF links missing from the URDF are errors; URDF links off the chain are
    /// ignored.
    pub fn set_self_pairs(
        &mut self,
        urdf: &Urdf,
        disabled: &[DisabledPair],
        source: &str,
        skip_adjacent: bool,
    ) -> Result<()> {
        let n_links = self.links.len();
        let mut skip = vec![false; n_links * n_links];
        for pair in disabled {
            let mut idx = [None, None];
            for (k, name) in [&pair.link1, &pair.link2].into_iter().enumerate() {
                if urdf.link(name).is_none() {
                    return Err(Error::robot_file(
                        source,
                        format!("<disable_collisions> (line {})", pair.line),
                        format!("no link `{name}` in the URDF {}", urdf.source),
                    ));
                }
                idx[k] = self.link_index(name);
            }
            if let [Some(a), Some(b)] = idx {
                skip[a * n_links + b] = true;
                skip[b * n_links + a] = true;
            }
        }
        let mut pairs = Vec::new();
        for i in 0..self.spheres.len() {
            for j in i + 1..self.spheres.len() {
                let (a, b) = (&self.spheres[i], &self.spheres[j]);
                if a.link == b.link || skip[a.link * n_links + b.link] {
                    continue;
                }
                if skip_adjacent && a.body.abs_diff(b.body) <= 1 {
                    continue;
                }
                pairs.push((i as u32, j as u32));
            }
        }
        self.self_pairs = pairs;
        Ok(())
    }

    fn update_levers(&mut self) {
        let dof = self.dof();
        let mut lever = vec![0.0; self.spheres.len() * dof];
        for (s, sphere) in self.spheres.iter().enumerate() {
            // Distance from body `b`'s origin to the sphere centre, then walk down to joint j.
            let mut reach = sphere.center.norm();
            for j in (0..sphere.body).rev() {
                let joint = &self.joints[j];
                lever[s * dof + j] = match joint.kind {
                    JointKind::Prismatic => 1.0,
                    _ => reach,
                };
                // From joint j's origin (= body j+1 origin up to its own translation) to the
                // parent body's origin.
                let travel = match joint.kind {
                    JointKind::Prismatic => joint.limits.lower.abs().max(joint.limits.upper.abs()),
                    _ => 0.0,
                };
                reach += travel + joint.offset.translation.norm();
            }
        }
        self.lever = lever;
    }
}
