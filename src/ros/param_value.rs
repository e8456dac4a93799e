//! ROS 2 parameter values without ROS: the value types of `rcl_interfaces/msg/ParameterValue`,
//! and a reader for ROS 2 parameter files (`<node>: ros__parameters: {...}`) that types values
//! as `rcl_yaml_param_parser` does (`50` is an integer, `50.0` a double, lists are homogeneous).
//! The node gets the same map from r2r (`Node::params`); tests and tools get it from a file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde_yaml::Value;

use crate::{Error, Result};

/// A parameter value, typed as ROS 2 types it.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// Declared without a value.
    NotSet,
    Bool(bool),
    Integer(i64),
    Double(f64),
    String(String),
    ByteArray(Vec<u8>),
    BoolArray(Vec<bool>),
    IntegerArray(Vec<i64>),
    DoubleArray(Vec<f64>),
    StringArray(Vec<String>),
}

/// Parameters by name (dotted for nested YAML maps), sorted so that messages are stable.
pub type ParamMap = BTreeMap<String, ParamValue>;

impl ParamValue {
    /// The ROS 2 name of the value's type, as error messages show it.
    pub fn type_name(&self) -> &'static str {
        match self {
            ParamValue::NotSet => "not set",
            ParamValue::Bool(_) => "bool",
            ParamValue::Integer(_) => "integer",
            ParamValue::Double(_) => "double",
            ParamValue::String(_) => "string",
            ParamValue::ByteArray(_) => "byte array",
            ParamValue::BoolArray(_) => "bool array",
            ParamValue::IntegerArray(_) => "integer array",
            ParamValue::DoubleArray(_) => "double array",
            ParamValue::StringArray(_) => "string array",
        }
    }
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T]) -> fmt::Result {
            write!(f, "[")?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    write!(f, ", ")?;
                }
                write!(f, "{item}")?;
            }
            write!(f, "]")
        }
        match self {
            ParamValue::NotSet => write!(f, "(not set)"),
            ParamValue::Bool(v) => write!(f, "{v}"),
            ParamValue::Integer(v) => write!(f, "{v}"),
            ParamValue::Double(v) => write!(f, "{v:?}"),
            ParamValue::String(v) => write!(f, "{v:?}"),
            ParamValue::ByteArray(v) => list(f, v),
            ParamValue::BoolArray(v) => list(f, v),
            ParamValue::IntegerArray(v) => list(f, v),
            ParamValue::DoubleArray(v) => {
                let shown: Vec<String> = v.iter().map(|x| format!("{x:?}")).collect();
                list(f, &shown)
            }
            ParamValue::StringArray(v) => {
                let shown: Vec<String> = v.iter().map(|x| format!("{x:?}")).collect();
                list(f, &shown)
            }
        }
    }
}

/// Reads the parameters for the node `node_name` (in namespace `namespace`, "" or "/" for the
/// root) from a ROS 2 parameter file, as `--ros-args --params-file` would give them to the node:
/// the sections `/**`, `**`, the fully qualified name and the bare name, later sections
/// overriding earlier ones.
pub fn load_params_file(path: &Path, node_name: &str, namespace: &str) -> Result<ParamMap> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_params_yaml(&text, node_name, namespace).map_err(|e| match e {
        Error::Yaml { source, .. } => Error::Yaml {
            path: path.to_path_buf(),
            source,
        },
        Error::Config { key, reason } => Error::Config {
            key,
            reason: format!("{reason} (in {})", path.display()),
        },
        other => other,
    })
}

/// [`load_params_file`] on text already read.
pub fn parse_params_yaml(text: &str, node_name: &str, namespace: &str) -> Result<ParamMap> {
    let doc: Value = serde_yaml::from_str(text).map_err(|source| Error::Yaml {
        path: "<parameters>".into(),
        source,
    })?;
    let Value::Mapping(sections) = doc else {
        return Err(Error::config(
            "<file>",
            "a parameter file is a map of node names to `ros__parameters`",
        ));
    };
    let namespace = namespace.trim_end_matches('/');
    let qualified = format!("{namespace}/{node_name}");
    let mut map = ParamMap::new();
    for (section, body) in &sections {
        let Some(section) = section.as_str() else {
            return Err(Error::config(
                format!("{section:?}"),
                "node names in a parameter file are strings",
            ));
        };
        if !matches!(section, "/**" | "**") && section != qualified && section != node_name {
            continue;
        }
        let params = body
            .get("ros__parameters")
            .ok_or_else(|| Error::config(section, "expected a `ros__parameters` map"))?;
        flatten("", params, &mut map)?;
    }
    Ok(map)
}

fn flatten(prefix: &str, value: &Value, out: &mut ParamMap) -> Result<()> {
    let Value::Mapping(entries) = value else {
        return Err(Error::config(
            if prefix.is_empty() {
                "ros__parameters"
            } else {
                prefix
            },
            "expected a map of parameter names to values",
        ));
    };
    for (name, value) in entries {
        let Some(name) = name.as_str() else {
            return Err(Error::config(
                format!("{prefix}{name:?}"),
                "parameter names are strings",
            ));
        };
        let key = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        };
        if let Value::Mapping(_) = value {
            flatten(&key, value, out)?;
        } else {
            let typed = typed_value(&key, value)?;
            out.insert(key, typed);
        }
    }
    Ok(())
}

fn typed_value(key: &str, value: &Value) -> Result<ParamValue> {
    Ok(match value {
        Value::Bool(b) => ParamValue::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => ParamValue::Integer(i),
            None => ParamValue::Double(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => ParamValue::String(s.clone()),
        Value::Sequence(items) => typed_sequence(key, items)?,
        Value::Null => {
            return Err(Error::config(
                key,
                "has no value (a parameter file cannot leave a value empty; omit the key)",
            ))
        }
        Value::Tagged(_) | Value::Mapping(_) => {
            return Err(Error::config(key, "unsupported value (tagged or nested)"))
        }
    })
}

fn typed_sequence(key: &str, items: &[Value]) -> Result<ParamValue> {
    let scalars = items
        .iter()
        .map(|v| typed_value(key, v))
        .collect::<Result<Vec<_>>>()?;
    // rcl gives an empty list no type: the parameter is declared without a value.
    let Some(first) = scalars.first() else {
        return Ok(ParamValue::NotSet);
    };
    let mixed = || {
        Error::config(
            key,
            format!(
                "list mixes types (first item is {}); ROS 2 lists hold one type: write doubles \
                 as 1.0, not 1",
                first.type_name()
            ),
        )
    };
    macro_rules! collect {
        ($variant:ident, $array:ident) => {
            ParamValue::$array(
                scalars
                    .iter()
                    .map(|v| match v {
                        ParamValue::$variant(x) => Ok(x.clone()),
                        _ => Err(mixed()),
                    })
                    .collect::<Result<Vec<_>>>()?,
            )
        };
    }
    Ok(match first {
        ParamValue::Bool(_) => collect!(Bool, BoolArray),
        ParamValue::Integer(_) => collect!(Integer, IntegerArray),
        ParamValue::Double(_) => collect!(Double, DoubleArray),
        ParamValue::String(_) => collect!(String, StringArray),
        _ => return Err(Error::config(key, "lists of lists are not parameters")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
/**:
  ros__parameters:
    use_sim_time: true
    rate_hz: 10.0
other_node:
  ros__parameters:
    rate_hz: 1.0
diffusion_planner:
  ros__parameters:
    rate_hz: 50.0
    count: 32
    name: base_link
    joints: [shoulder, elbow]
    limits: [1.0, 2.5]
    ids: [1, 2]
    nested:
      gain: 0.5
"#;

    #[test]
    fn types_values_like_rcl_and_picks_the_sections_for_the_node() {
        let map = parse_params_yaml(FILE, "diffusion_planner", "").unwrap();
        assert_eq!(map["use_sim_time"], ParamValue::Bool(true));
        assert_eq!(
            map["rate_hz"],
            ParamValue::Double(50.0),
            "node section overrides /**"
        );
        assert_eq!(map["count"], ParamValue::Integer(32));
        assert_eq!(map["name"], ParamValue::String("base_link".into()));
        assert_eq!(
            map["joints"],
            ParamValue::StringArray(vec!["shoulder".into(), "elbow".into()])
        );
        assert_eq!(map["limits"], ParamValue::DoubleArray(vec![1.0, 2.5]));
        assert_eq!(map["ids"], ParamValue::IntegerArray(vec![1, 2]));
        assert_eq!(map["nested.gain"], ParamValue::Double(0.5));
        assert_eq!(map.len(), 8);
    }

    #[test]
    fn matches_the_fully_qualified_name_only_in_its_namespace() {
        let text = "/arm/planner:\n  ros__parameters:\n    a: 1\n";
        assert_eq!(parse_params_yaml(text, "planner", "/arm").unwrap().len(), 1);
        assert_eq!(
            parse_params_yaml(text, "planner", "/arm/").unwrap().len(),
            1
        );
        assert!(parse_params_yaml(text, "planner", "").unwrap().is_empty());
    }

    #[test]
    fn rejects_mixed_lists_and_empty_values_naming_the_key() {
        let mixed = "n:\n  ros__parameters:\n    obstacles: [1, 2.0]\n";
        let err = parse_params_yaml(mixed, "n", "").unwrap_err().to_string();
        assert!(err.contains("obstacles") && err.contains("1.0"), "{err}");
        let empty = "n:\n  ros__parameters:\n    obstacles: []\n";
        let map = parse_params_yaml(empty, "n", "").unwrap();
        assert_eq!(
            map["obstacles"],
            ParamValue::NotSet,
            "as rcl: an empty list has no type"
        );
        let null = "n:\n  ros__parameters:\n    seed:\n";
        let err = parse_params_yaml(null, "n", "").unwrap_err().to_string();
        assert!(err.contains("seed"), "{err}");
    }

    #[test]
    fn a_section_without_ros_parameters_is_an_error() {
        let err = parse_params_yaml("n:\n  rate: 1\n", "n", "")
            .unwrap_err()
            .to_string();
        assert!(err.contains("ros__parameters"), "{err}");
    }

    #[test]
    fn displays_values_as_written() {
        assert_eq!(ParamValue::Double(50.0).to_string(), "50.0");
        assert_eq!(
            ParamValue::StringArray(vec!["a".into()]).to_string(),
            "[\"a\"]"
        );
        assert_eq!(ParamValue::IntegerArray(vec![1, 2]).to_string(), "[1, 2]");
    }
}
