//! The shipped parameter file and the parameter documentation agree with the code that
//! validates the node's parameters (no ROS needed).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use diffusion_planner::ros::params::{
    load_params_file, parse_params_yaml, NodeParams, ParamMap, ParamValue, PARAMETER_KEYS,
};

const NODE: &str = "diffusion_planner";

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// (key, type, unit, default, meaning) for each row of the table in docs/PARAMETERS.md.
fn documented_rows() -> Vec<[String; 5]> {
    let text =
        std::fs::read_to_string(repo("docs/PARAMETERS.md")).expect("read docs/PARAMETERS.md");
    text.lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<String> = l
                .trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_string())
                .collect();
            assert_eq!(cells.len(), 5, "table row with 5 cells: {l}");
            [0, 1, 2, 3, 4].map(|i| cells[i].clone())
        })
        .collect()
}

fn unquote(cell: &str) -> &str {
    cell.trim_matches('`')
}

#[test]
fn the_shipped_config_is_valid_and_sets_every_key() {
    let map = load_params_file(&repo("config/planar_arm.yaml"), NODE, "").unwrap();
    let keys: BTreeSet<&str> = map.keys().map(String::as_str).collect();
    let accepted: BTreeSet<&str> = PARAMETER_KEYS.iter().copied().collect();
    assert_eq!(
        keys, accepted,
        "config/planar_arm.yaml sets every key, no other"
    );
    let params = NodeParams::from_map(&map).unwrap();
    assert_eq!(params.joints, vec!["shoulder", "elbow"]);
    assert_eq!(params.model_path, PathBuf::from("models/planar_arm"));
}

#[test]
fn the_shipped_config_sets_the_documented_defaults() {
    // Apart from the required keys, the reference config is the defaults, written out.
    let map = load_params_file(&repo("config/planar_arm.yaml"), NODE, "").unwrap();
    let required: ParamMap = map
        .iter()
        .filter(|(k, _)| matches!(k.as_str(), "model_path" | "joints"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(
        NodeParams::from_map(&map).unwrap(),
        NodeParams::from_map(&required).unwrap()
    );
}

#[test]
fn the_documentation_lists_every_key_in_order() {
    let documented: Vec<String> = documented_rows()
        .iter()
        .map(|r| unquote(&r[0]).to_string())
        .collect();
    assert_eq!(documented, PARAMETER_KEYS);
}

#[test]
fn the_documented_defaults_and_types_are_the_codes() {
    let rows = documented_rows();
    let mut base = ParamMap::new();
    base.insert("model_path".into(), ParamValue::String("m".into()));
    base.insert(
        "joints".into(),
        ParamValue::StringArray(vec!["a".into(), "b".into()]),
    );
    let code_defaults = NodeParams::from_map(&base).unwrap();
    let mut documented = base.clone();
    for [key, ty, _unit, default, _meaning] in &rows {
        let key = unquote(key);
        match default.as_str() {
            "required" => {
                let mut without = base.clone();
                without.remove(key);
                let err = NodeParams::from_map(&without).unwrap_err().to_string();
                assert!(err.contains(&format!("`{key}`: is required")), "{err}");
            }
            "none" => assert!(!base.contains_key(key)),
            value => {
                // The documented default, typed as a parameter file would type it.
                let yaml = format!("n:\n  ros__parameters:\n    {key}: {}\n", unquote(value));
                let parsed = parse_params_yaml(&yaml, "n", "").unwrap();
                let type_name = parsed[key].type_name();
                assert_eq!(type_name, ty.as_str(), "documented type of `{key}`");
                documented.extend(parsed);
            }
        }
    }
    assert_eq!(NodeParams::from_map(&documented).unwrap(), code_defaults);
}
