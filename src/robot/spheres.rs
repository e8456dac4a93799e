//! Collision spheres per link, in cuRobo's `collision_spheres` layout:
//!
//! ```yaml
//! collision_spheres:
//!   panda_link1:
//!     - center: [0.0, -0.08, 0.0]   # metres, in the link frame
//!       radius: 0.06
//! ```
//! Links keep the file's order; every value is checked (finite centre, radius > 0).

use serde_yaml::Value;

use crate::{Error, Result};

/// One sphere as written in the file (link frame).
#[derive(Debug, Clone, PartialEq)]
pub struct SphereSpec {
    /// Link name.
    pub link: String,
    /// Centre in the link frame, metres.
    pub center: [f64; 3],
    /// Radius, metres (> 0).
    pub radius: f64,
}

/// Parses a spheres file's text; `source` names it in errors.
pub fn parse_spheres(text: &str, source: &str) -> Result<Vec<SphereSpec>> {
    let err = |element: String, reason: String| Error::robot_file(source, element, reason);
    let root: Value =
        serde_yaml::from_str(text).map_err(|e| err("YAML".into(), format!("cannot parse: {e}")))?;
    let Value::Mapping(root) = root else {
        return Err(err(
            "top level".into(),
            "expected a mapping with the key `collision_spheres`".into(),
        ));
    };
    for key in root.keys() {
        if key.as_str() != Some("collision_spheres") {
            return Err(err(
                format!("{key:?}"),
                "unknown key (expected only `collision_spheres`)".into(),
            ));
        }
    }
    let Some(Value::Mapping(links)) = root.get("collision_spheres") else {
        return Err(err(
            "collision_spheres".into(),
            "expected a mapping link name -> list of {center: [x, y, z], radius}".into(),
        ));
    };
    let mut out = Vec::new();
    for (link, list) in links {
        let Some(link) = link.as_str() else {
            return Err(err(
                format!("collision_spheres.{link:?}"),
                "expected a link name".into(),
            ));
        };
        let Value::Sequence(list) = list else {
            return Err(err(
                format!("collision_spheres.{link}"),
                "expected a list of {center: [x, y, z], radius}".into(),
            ));
        };
        for (i, item) in list.iter().enumerate() {
            let element = format!("collision_spheres.{link}[{i}]");
            let Value::Mapping(item) = item else {
                return Err(err(element, "expected {center: [x, y, z], radius}".into()));
            };
            for key in item.keys() {
                if !matches!(key.as_str(), Some("center") | Some("radius")) {
                    return Err(err(
                        element,
                        format!("unknown key {key:?} (expected center and radius)"),
                    ));
                }
            }
            let center = match item.get("center") {
                Some(Value::Sequence(c)) if c.len() == 3 => {
                    let mut v = [0.0; 3];
                    for (o, x) in v.iter_mut().zip(c) {
                        *o = x.as_f64().ok_or_else(|| {
                            err(
                                element.clone(),
                                format!("center: expected numbers, found {x:?}"),
                            )
                        })?;
                    }
                    v
                }
                _ => return Err(err(element, "center: expected [x, y, z]".into())),
            };
            if !center.iter().all(|v| v.is_finite()) {
                return Err(err(
                    element,
                    format!("center: expected finite numbers, found {center:?}"),
                ));
            }
            let radius = item
                .get("radius")
                .and_then(Value::as_f64)
                .ok_or_else(|| err(element.clone(), "radius: expected a number".into()))?;
            if !(radius > 0.0 && radius.is_finite()) {
                return Err(err(
                    element,
                    format!("radius: expected a finite number > 0, found {radius}"),
                ));
            }
            out.push(SphereSpec {
                link: link.to_string(),
                center,
                radius,
            });
        }
    }
    Ok(out)
}

/// Reads a spheres file.
pub fn load_spheres(path: &std::path::Path) -> Result<Vec<SphereSpec>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_spheres(&text, &path.display().to_string())
}

/// Writes spheres in the same layout (links in the order they first appear).
pub fn spheres_to_yaml(spheres: &[SphereSpec], header: &str) -> String {
    let mut out = String::new();
    for line in header.lines() {
        out.push_str(&format!("# {line}\n"));
    }
    out.push_str("collision_spheres:\n");
    let mut links: Vec<&str> = Vec::new();
    for s in spheres {
        if !links.contains(&s.link.as_str()) {
            links.push(&s.link);
        }
    }
    for link in links {
        out.push_str(&format!("  {link}:\n"));
        for s in spheres.iter().filter(|s| s.link == link) {
            out.push_str(&format!(
                "    - {{center: [{:.4}, {:.4}, {:.4}], radius: {:.4}}}\n",
                s.center[0], s.center[1], s.center[2], s.radius
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_order() {
        let spheres = vec![
            SphereSpec {
                link: "b".into(),
                center: [0.1, 0.0, 0.0],
                radius: 0.05,
            },
            SphereSpec {
                link: "a".into(),
                center: [0.0, 0.2, -0.1],
                radius: 0.03,
            },
        ];
        let text = spheres_to_yaml(&spheres, "test");
        assert_eq!(parse_spheres(&text, "s.yaml").unwrap(), spheres);
    }

    #[test]
    fn bad_values_are_named() {
        let e = parse_spheres(
            "collision_spheres:\n  l1:\n    - {center: [0, 0], radius: 0.1}\n",
            "s.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("s.yaml") && e.contains("collision_spheres.l1[0]"),
            "{e}"
        );
        let e = parse_spheres(
            "collision_spheres:\n  l1:\n    - {center: [0, 0, .nan], radius: 0.1}\n",
            "s.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("finite"), "{e}");
        let e = parse_spheres(
            "collision_spheres:\n  l1:\n    - {center: [0, 0, 0], radius: -1}\n",
            "s.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("radius"), "{e}");
        let e = parse_spheres("spheres: {}\n", "s.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown key"), "{e}");
    }
}
