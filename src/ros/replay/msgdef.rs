//! Message definitions for MCAP schemas (encoding `ros2msg`), as rosbag2's MCAP storage writes
//! them: the type's `.msg` text, then each type it uses (depth first, once each) after a line of
//! 80 `=` and `MSG: pkg/msg/Type`. The texts come from the `share/<pkg>/msg/<Type>.msg` files
//! of the ROS installation (the prefixes in `AMENT_PREFIX_PATH`); the type hash (`RIHS01_...`,
//! rosbag2's `type_description_hash`) from the `.json` type description next to them.

use std::path::PathBuf;

use crate::{Error, Result};

/// Field types that are not messages.
const PRIMITIVES: [&str; 17] = [
    "bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16", "int32",
    "uint32", "int64", "uint64", "string", "wstring", "time", "duration",
];

/// Schema encoding of the definitions built here.
pub const ROS2MSG: &str = "ros2msg";

/// One message type's schema.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageDefinition {
    /// `pkg/msg/Type`.
    pub type_name: String,
    /// The `ros2msg` text with every dependency.
    pub text: String,
    /// `RIHS01_<sha256>` when the installation has the type description.
    pub type_hash: Option<String>,
}

/// Finds `.msg` files under ROS prefixes.
#[derive(Debug, Clone)]
pub struct MsgLibrary {
    prefixes: Vec<PathBuf>,
}

/// `pkg/msg/Type` or `pkg/Type` -> (`pkg`, `Type`).
fn split_type(type_name: &str) -> Result<(&str, &str)> {
    let parts: Vec<&str> = type_name.split('/').collect();
    match parts.as_slice() {
        [pkg, "msg", name] | [pkg, name] if !pkg.is_empty() && !name.is_empty() => Ok((pkg, name)),
        _ => Err(Error::Invalid(format!(
            "message type `{type_name}`: expected `pkg/msg/Type`"
        ))),
    }
}

/// The message types a `.msg` text of package `package` uses, as `pkg/msg/Type`, in order of
/// appearance, each once.
pub fn dependencies(text: &str, package: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some(field_type) = line.split_whitespace().next() else {
            continue;
        };
        // `Type[]`, `Type[3]`, `Type[<=3]`, `string<=10`.
        let base = field_type
            .split('[')
            .next()
            .unwrap_or(field_type)
            .split("<=")
            .next()
            .unwrap_or(field_type);
        if PRIMITIVES.contains(&base) {
            continue;
        }
        let full = match base.split('/').collect::<Vec<_>>().as_slice() {
            [pkg, name] => format!("{pkg}/msg/{name}"),
            [pkg, "msg", name] => format!("{pkg}/msg/{name}"),
            ["Header"] => "std_msgs/msg/Header".to_string(),
            [name] => format!("{package}/msg/{name}"),
            _ => continue,
        };
        if !out.contains(&full) {
            out.push(full);
        }
    }
    out
}

impl MsgLibrary {
    pub fn new(prefixes: Vec<PathBuf>) -> Self {
        MsgLibrary { prefixes }
    }

    /// The prefixes of `AMENT_PREFIX_PATH` (the sourced ROS installation).
    pub fn from_env() -> Result<Self> {
        let value = std::env::var_os("AMENT_PREFIX_PATH").ok_or_else(|| {
            Error::Invalid(
                "AMENT_PREFIX_PATH is not set: source the ROS 2 environment \
                 (scripts/ros-env.sh) so that message definitions can be found"
                    .into(),
            )
        })?;
        Ok(MsgLibrary::new(std::env::split_paths(&value).collect()))
    }

    fn find(&self, package: &str, file: &str) -> Option<PathBuf> {
        self.prefixes
            .iter()
            .map(|p| p.join("share").join(package).join("msg").join(file))
            .find(|p| p.is_file())
    }

    fn msg_text(&self, type_name: &str) -> Result<String> {
        let (package, name) = split_type(type_name)?;
        let path = self.find(package, &format!("{name}.msg")).ok_or_else(|| {
            Error::Invalid(format!(
                "no definition of `{type_name}`: share/{package}/msg/{name}.msg is in none of {:?}",
                self.prefixes
            ))
        })?;
        std::fs::read_to_string(&path).map_err(|e| Error::io(path, e))
    }

    /// The type hash from `share/<pkg>/msg/<Type>.json`, if that file exists.
    pub fn type_hash(&self, type_name: &str) -> Result<Option<String>> {
        let (package, name) = split_type(type_name)?;
        let Some(path) = self.find(package, &format!("{name}.json")) else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        let full = format!("{package}/msg/{name}");
        Ok(json["type_hashes"].as_array().and_then(|hashes| {
            hashes
                .iter()
                .find(|h| h["type_name"] == full.as_str())
                .and_then(|h| h["hash_string"].as_str())
                .map(str::to_string)
        }))
    }

    /// The schema of `type_name` (`pkg/msg/Type`).
    pub fn definition(&self, type_name: &str) -> Result<MessageDefinition> {
        let (package, name) = split_type(type_name)?;
        let full = format!("{package}/msg/{name}");
        let root = self.msg_text(&full)?;
        let mut text = root.trim_end().to_string();
        text.push('\n');
        let mut seen = vec![full.clone()];
        let mut stack: Vec<String> = dependencies(&root, package).into_iter().rev().collect();
        while let Some(dep) = stack.pop() {
            if seen.contains(&dep) {
                continue;
            }
            let dep_text = self.msg_text(&dep)?;
            text.push_str(&"=".repeat(80));
            text.push_str(&format!("\nMSG: {dep}\n"));
            text.push_str(dep_text.trim_end());
            text.push('\n');
            let (dep_package, _) = split_type(&dep)?;
            stack.extend(dependencies(&dep_text, dep_package).into_iter().rev());
            seen.push(dep);
        }
        Ok(MessageDefinition {
            type_name: full.clone(),
            text,
            type_hash: self.type_hash(&full)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_resolve_packages_arrays_and_skip_comments_and_constants() {
        let text = "# comment std_msgs/Bad\nint32 ADD=0\nstd_msgs/Header header\n\
                    JointTrajectoryPoint[] points\nstring<=8 name\n\
                    geometry_msgs/Point[<=3] p  # trailing\nbuiltin_interfaces/Duration d\n\
                    std_msgs/Header again\n";
        assert_eq!(
            dependencies(text, "trajectory_msgs"),
            [
                "std_msgs/msg/Header",
                "trajectory_msgs/msg/JointTrajectoryPoint",
                "geometry_msgs/msg/Point",
                "builtin_interfaces/msg/Duration",
            ]
        );
    }

    #[test]
    fn definitions_list_each_dependency_once_depth_first() {
        let dir = tempfile::tempdir().unwrap();
        let write = |pkg: &str, name: &str, text: &str| {
            let d = dir.path().join("share").join(pkg).join("msg");
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(format!("{name}.msg")), text).unwrap();
        };
        write("a", "Top", "# top\nB first\nc/C second\nB[] again\n");
        write("a", "B", "c/C inner\n");
        write("c", "C", "int32 x\n");
        std::fs::write(
            dir.path().join("share/a/msg/Top.json"),
            r#"{"type_hashes": [{"type_name": "a/msg/Top", "hash_string": "RIHS01_ab"}]}"#,
        )
        .unwrap();
        let library = MsgLibrary::new(vec![PathBuf::from("/nonexistent"), dir.path().into()]);
        let def = library.definition("a/Top").unwrap();
        let bar = "=".repeat(80);
        assert_eq!(
            def.text,
            format!(
                "# top\nB first\nc/C second\nB[] again\n{bar}\nMSG: a/msg/B\nc/C inner\n\
                 {bar}\nMSG: c/msg/C\nint32 x\n"
            )
        );
        assert_eq!(def.type_name, "a/msg/Top");
        assert_eq!(def.type_hash.as_deref(), Some("RIHS01_ab"));
        assert_eq!(library.definition("a/msg/B").unwrap().type_hash, None);
        let err = library.definition("a/msg/Missing").unwrap_err().to_string();
        assert!(err.contains("share/a/msg/Missing.msg"), "{err}");
        assert!(library.definition("nonsense").is_err());
    }
}
