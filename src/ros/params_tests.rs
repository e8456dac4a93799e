//! Tests of parameter validation (no ROS needed).

use super::*;

fn s(v: &str) -> ParamValue {
    ParamValue::String(v.into())
}

fn minimal() -> ParamMap {
    let mut map = ParamMap::new();
    map.insert("model_path".into(), s("models/planar_arm"));
    map.insert(
        "joints".into(),
        ParamValue::StringArray(vec!["shoulder".into(), "elbow".into()]),
    );
    map
}

fn with(key: &str, value: ParamValue) -> ParamMap {
    let mut map = minimal();
    map.insert(key.into(), value);
    map
}

fn error(map: &ParamMap) -> String {
    NodeParams::from_map(map).unwrap_err().to_string()
}

#[test]
fn required_keys_and_defaults() {
    let p = NodeParams::from_map(&minimal()).unwrap();
    assert_eq!(p.model_path, PathBuf::from("models/planar_arm"));
    assert_eq!(p.joints, vec!["shoulder", "elbow"]);
    assert_eq!(p.device, DeviceSpec::Auto);
    assert_eq!(p.base_frame, "base_link");
    assert_eq!(p.control_rate_hz, 50.0);
    assert_eq!(p.replan_rate_hz, 2.0);
    assert_eq!(p.num_samples, 32);
    assert_eq!(p.sampler, SamplerKind::Ddim);
    assert_eq!(p.inference_steps, 10);
    assert_eq!(p.guidance_scale, 2.0);
    assert_eq!(p.selection, SelectionPolicy::Mass);
    assert_eq!(p.state_timeout_secs, 0.5);
    assert_eq!(p.goal_tolerance_m, 0.02);
    assert_eq!(p.seed, 0);
    assert_eq!(p.hallucination_threshold, 0.0);
    assert!(p.static_obstacles.is_empty());
    assert_eq!(p.min_clearance_m, 0.005);
    assert_eq!(p.obstacle_timeout_secs, 0.0, "0 = never");
    assert_eq!(p.change_tolerance_m, 0.001);
    assert_eq!(p.tracking_tolerance_rad, 0.1);
    assert_eq!(p.tracking_timeout_secs, 0.5);
    assert_eq!(p.diagnostics_rate_hz, 2.0);
    assert!(!p.use_sim_time);
    assert!((p.control_period_secs() - 0.02).abs() < 1e-12);
}

#[test]
fn every_key_is_read() {
    let mut map = minimal();
    for (key, value) in [
        ("device", s("cuda:1")),
        ("base_frame", s("world")),
        ("control_rate_hz", ParamValue::Double(100.0)),
        ("replan_rate_hz", ParamValue::Double(5.0)),
        ("num_samples", ParamValue::Integer(64)),
        ("sampler", s("ddpm")),
        ("inference_steps", ParamValue::Integer(50)),
        ("guidance_scale", ParamValue::Double(1.5)),
        ("selection", s("cost")),
        ("state_timeout_secs", ParamValue::Double(0.25)),
        ("goal_tolerance_m", ParamValue::Double(0.01)),
        ("seed", ParamValue::Integer(7)),
        ("hallucination_threshold", ParamValue::Double(0.1)),
        ("clearance_margin_m", ParamValue::Double(0.02)),
        ("min_clearance_m", ParamValue::Double(0.003)),
        ("obstacle_timeout_secs", ParamValue::Double(2.0)),
        ("change_tolerance_m", ParamValue::Double(0.002)),
        ("tracking_tolerance_rad", ParamValue::Double(0.05)),
        ("tracking_timeout_secs", ParamValue::Double(0.3)),
        (
            "static_obstacles",
            ParamValue::DoubleArray(vec![0.5, 0.0, 0.1, -0.5, 0.2, 0.05]),
        ),
        ("diagnostics_rate_hz", ParamValue::Double(1.0)),
        ("stamp_trajectories", ParamValue::Bool(false)),
        ("use_sim_time", ParamValue::Bool(true)),
    ] {
        map.insert(key.into(), value);
    }
    assert_eq!(map.len(), PARAMETER_KEYS.len());
    let p = NodeParams::from_map(&map).unwrap();
    assert_eq!(p.device, DeviceSpec::Cuda(1));
    assert_eq!(p.base_frame, "world");
    assert!(!p.stamp_trajectories);
    assert_eq!(p.clearance_margin_m, 0.02);
    assert_eq!(p.min_clearance_m, 0.003);
    assert_eq!(p.obstacle_timeout_secs, 2.0);
    assert_eq!(p.change_tolerance_m, 0.002);
    assert_eq!(p.tracking_tolerance_rad, 0.05);
    assert_eq!(p.tracking_timeout_secs, 0.3);
    assert_eq!(p.control_rate_hz, 100.0);
    assert_eq!(p.replan_rate_hz, 5.0);
    assert_eq!(p.num_samples, 64);
    assert_eq!(p.sampler, SamplerKind::Ddpm);
    assert_eq!(p.inference_steps, 50);
    assert_eq!(p.guidance_scale, 1.5);
    assert_eq!(p.selection, SelectionPolicy::Cost);
    assert_eq!(p.state_timeout_secs, 0.25);
    assert_eq!(p.goal_tolerance_m, 0.01);
    assert_eq!(p.seed, 7);
    assert_eq!(p.hallucination_threshold, 0.1);
    assert_eq!(
        p.static_obstacles,
        vec![
            StaticObstacle {
                x_m: 0.5,
                y_m: 0.0,
                radius_m: 0.1
            },
            StaticObstacle {
                x_m: -0.5,
                y_m: 0.2,
                radius_m: 0.05
            }
        ]
    );
    assert_eq!(p.diagnostics_rate_hz, 1.0);
    assert!(p.use_sim_time);
}

#[test]
fn missing_required_keys_are_named() {
    let err = error(&ParamMap::new());
    assert!(err.contains("2 invalid parameters"), "{err}");
    assert!(err.contains("`model_path`: is required"), "{err}");
    assert!(err.contains("`joints`: is required"), "{err}");
}

#[test]
fn values_without_type_are_errors_except_for_an_empty_obstacle_list() {
    let err = error(&with("model_path", ParamValue::NotSet));
    assert_eq!(
        err,
        "invalid configuration `model_path`: has no value (an empty list has no type in ROS 2)"
    );
    let err = error(&with("base_frame", ParamValue::NotSet));
    assert!(err.contains("`base_frame`: has no value"), "{err}");
    let p = NodeParams::from_map(&with("static_obstacles", ParamValue::NotSet)).unwrap();
    assert!(p.static_obstacles.is_empty());
}

#[test]
fn wrong_types_name_key_expected_and_found() {
    let err = error(&with("control_rate_hz", ParamValue::Integer(50)));
    assert!(
        err.contains("`control_rate_hz`: expected a double, found integer 50 (write 50.0)"),
        "{err}"
    );
    let err = error(&with("num_samples", ParamValue::Double(32.0)));
    assert!(
        err.contains("`num_samples`: expected an integer, found double 32.0"),
        "{err}"
    );
    let err = error(&with("joints", s("shoulder")));
    assert!(err.contains("`joints`: expected a string array"), "{err}");
    let err = error(&with("use_sim_time", s("true")));
    assert!(err.contains("`use_sim_time`: expected a bool"), "{err}");
    let err = error(&with(
        "static_obstacles",
        ParamValue::IntegerArray(vec![1, 0, 1]),
    ));
    assert!(
        err.contains("`static_obstacles`: expected a double array"),
        "{err}"
    );
}

#[test]
fn unknown_keys_are_errors() {
    let err = error(&with("contol_rate_hz", ParamValue::Double(50.0)));
    assert!(err.contains("`contol_rate_hz`: unknown parameter"), "{err}");
    assert!(
        err.contains("control_rate_hz"),
        "lists the accepted keys: {err}"
    );
}

#[test]
fn out_of_range_values_are_errors() {
    for (key, value, expected) in [
        ("num_samples", ParamValue::Integer(0), "expected 1 ..= 1024"),
        (
            "num_samples",
            ParamValue::Integer(1025),
            "expected 1 ..= 1024",
        ),
        (
            "inference_steps",
            ParamValue::Integer(-3),
            "expected 1 ..= 1000",
        ),
        ("control_rate_hz", ParamValue::Double(0.0), "expected > 0"),
        (
            "state_timeout_secs",
            ParamValue::Double(-0.5),
            "expected > 0",
        ),
        ("goal_tolerance_m", ParamValue::Double(f64::NAN), "finite"),
        (
            "hallucination_threshold",
            ParamValue::Double(f64::INFINITY),
            "finite",
        ),
        (
            "hallucination_threshold",
            ParamValue::Double(-0.1),
            "must be in [0,",
        ),
        (
            "replan_rate_hz",
            ParamValue::Double(60.0),
            "above control_rate_hz",
        ),
        (
            "diagnostics_rate_hz",
            ParamValue::Double(51.0),
            "above control_rate_hz",
        ),
        (
            "guidance_scale",
            ParamValue::Double(-1.0),
            "expected 0.0 ..= 100.0",
        ),
        ("seed", ParamValue::Integer(-1), "expected >= 0"),
        ("min_clearance_m", ParamValue::Double(-0.001), "[0, 1] m"),
        ("change_tolerance_m", ParamValue::Double(0.5), "[0, 0.1] m"),
        (
            "change_tolerance_m",
            ParamValue::Double(0.01),
            "above min_clearance_m",
        ),
        (
            "obstacle_timeout_secs",
            ParamValue::Double(f64::NAN),
            "finite",
        ),
        ("sampler", s("euler"), "expected `ddim` or `ddpm`"),
        ("selection", s("best"), "expected `mass` or `cost`"),
        ("device", s("gpu"), "`cpu`, `cuda:N` or `auto`"),
        ("base_frame", s(" "), "is empty"),
        ("model_path", s(""), "is empty"),
        ("joints", ParamValue::StringArray(vec![]), "is empty"),
        (
            "joints",
            ParamValue::StringArray(vec!["a".into(), "a".into()]),
            "names `a` twice",
        ),
        (
            "static_obstacles",
            ParamValue::DoubleArray(vec![0.5, 0.0]),
            "multiple of 3",
        ),
        (
            "static_obstacles",
            ParamValue::DoubleArray(vec![0.5, 0.0, 0.0]),
            "obstacle 0 has radius 0",
        ),
    ] {
        let err = error(&with(key, value.clone()));
        assert!(
            err.contains(&format!("`{key}`")) && err.contains(expected),
            "{key} = {value}: {err}"
        );
    }
}

#[test]
fn a_bad_rate_does_not_cause_a_misleading_cross_check() {
    let mut map = with("control_rate_hz", ParamValue::Integer(100));
    map.insert("replan_rate_hz".into(), ParamValue::Double(60.0));
    let err = error(&map);
    assert!(err.contains("`control_rate_hz`"), "{err}");
    assert!(!err.contains("above control_rate_hz"), "{err}");
}

#[test]
fn joints_must_match_the_model() {
    let p = NodeParams::from_map(&minimal()).unwrap();
    let model = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    p.check_joints(&model(&["elbow", "shoulder"])).unwrap();
    let err = p
        .check_joints(&model(&["shoulder", "wrist"]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`joints`"), "{err}");
    assert!(err.contains("missing [\"wrist\"]"), "{err}");
    assert!(err.contains("not in the model [\"elbow\"]"), "{err}");
    assert!(p.check_joints(&model(&["shoulder"])).is_err());
}

#[test]
fn enums_round_trip_through_their_names() {
    for kind in [SamplerKind::Ddim, SamplerKind::Ddpm] {
        assert_eq!(kind.to_string().parse::<SamplerKind>(), Ok(kind));
    }
    for policy in [SelectionPolicy::Mass, SelectionPolicy::Cost] {
        assert_eq!(policy.to_string().parse::<SelectionPolicy>(), Ok(policy));
    }
}
