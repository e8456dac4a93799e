//! The Rust controller against the common fixture `tests/fixtures/jtc_cases.json`, written by the
//! Python port of the same controller (`tools/mujoco_sim/jtc.py`, generator
//! `tools/gen_jtc_fixture.py`) that the MuJoCo simulator runs: every message gets the same
//! verdict (accepted, or rejected by the same rule) and every update the same command, desired
//! state and remaining time within the fixture's tolerance (1e-9). The two languages cannot share
//! the code, so they share this record of what it does (docs/SIM.md, "MuJoCo").

use serde_json::Value;

use super::{JointTrajectory, JtcSettings, TrajectoryController, TrajectoryPoint};

fn number(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().expect("a finite number"),
        Value::String(s) => match s.as_str() {
            "NaN" => f64::NAN,
            "inf" => f64::INFINITY,
            "-inf" => f64::NEG_INFINITY,
            other => panic!("not a number: {other}"),
        },
        other => panic!("not a number: {other}"),
    }
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array()
        .map(|a| a.iter().map(number).collect())
        .unwrap_or_default()
}

fn point(v: &Value) -> TrajectoryPoint {
    TrajectoryPoint {
        positions: numbers(&v["positions"]),
        velocities: numbers(&v["velocities"]),
        accelerations: numbers(&v["accelerations"]),
        effort: numbers(&v["effort"]),
        time_from_start_secs: if v["time_from_start_secs"].is_null() {
            0.0
        } else {
            number(&v["time_from_start_secs"])
        },
    }
}

fn message(v: &Value) -> JointTrajectory {
    JointTrajectory {
        stamp_secs: number(&v["stamp_secs"]),
        joint_names: v["joint_names"]
            .as_array()
            .expect("joint_names")
            .iter()
            .map(|n| n.as_str().expect("a name").to_string())
            .collect(),
        points: v["points"]
            .as_array()
            .expect("points")
            .iter()
            .map(point)
            .collect(),
    }
}

fn assert_close(what: &str, found: &[f64], expected: &[f64], tolerance: f64) {
    assert_eq!(
        found.len(),
        expected.len(),
        "{what}: {found:?} vs {expected:?}"
    );
    for (f, e) in found.iter().zip(expected) {
        assert!(
            (f - e).abs() <= tolerance,
            "{what}: {found:?} vs {expected:?} (Python port)"
        );
    }
}

#[test]
fn the_rust_controller_reproduces_the_python_ports_fixture() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jtc_cases.json");
    let text = std::fs::read_to_string(&path).expect("read the fixture");
    let fixture: Value = serde_json::from_str(&text).expect("parse the fixture");
    let tolerance = number(&fixture["tolerance"]);
    let cases = fixture["cases"].as_array().expect("cases");
    assert!(cases.len() >= 10, "{} cases", cases.len());
    let (mut receives, mut rejections, mut updates) = (0, 0, 0);
    for case in cases {
        let name = case["name"].as_str().expect("a case name");
        let s = &case["settings"];
        let flag = |key: &str| s[key].as_bool().expect("a bool setting");
        let settings = JtcSettings {
            joints: s["joints"]
                .as_array()
                .expect("joints")
                .iter()
                .map(|n| n.as_str().expect("a joint").to_string())
                .collect(),
            allow_partial_joints_goal: flag("allow_partial_joints_goal"),
            allow_nonzero_velocity_at_trajectory_end: flag(
                "allow_nonzero_velocity_at_trajectory_end",
            ),
            interpolate_from_desired_state: flag("interpolate_from_desired_state"),
            effort_command_interface: flag("effort_command_interface"),
        };
        let mut jtc = TrajectoryController::new(
            settings,
            numbers(&case["initial_positions"]),
            number(&case["update_period_secs"]),
        )
        .expect("a controller");
        for (i, event) in case["events"]
            .as_array()
            .expect("events")
            .iter()
            .enumerate()
        {
            let expect = &event["expect"];
            if let Some(receive) = event.get("receive") {
                receives += 1;
                let at = number(&receive["at"]);
                let verdict = jtc.receive(&message(&receive["msg"]), at);
                let found = verdict.err().map(|r| r.rule().name().to_string());
                let expected = expect["rule"].as_str().map(str::to_string);
                rejections += usize::from(expected.is_some());
                assert_eq!(found, expected, "{name}, event {i}: verdict");
            } else {
                updates += 1;
                let update = &event["update"];
                let at = number(&update["at"]);
                let measured = point(&update["measured"]);
                let command = jtc.update(at, &measured).clone();
                let what = |field: &str| format!("{name}, event {i} at {at} s: {field}");
                let c = &expect["commanded"];
                assert_close(
                    &what("commanded positions"),
                    &command.positions,
                    &numbers(&c["positions"]),
                    tolerance,
                );
                assert_close(
                    &what("commanded velocities"),
                    &command.velocities,
                    &numbers(&c["velocities"]),
                    tolerance,
                );
                assert_close(
                    &what("commanded accelerations"),
                    &command.accelerations,
                    &numbers(&c["accelerations"]),
                    tolerance,
                );
                let d = &expect["desired"];
                let desired = jtc.desired();
                assert_close(
                    &what("desired positions"),
                    &desired.positions,
                    &numbers(&d["positions"]),
                    tolerance,
                );
                assert_close(
                    &what("desired velocities"),
                    &desired.velocities,
                    &numbers(&d["velocities"]),
                    tolerance,
                );
                assert_close(
                    &what("remaining time"),
                    &[jtc.remaining_secs(at)],
                    &[number(&expect["remaining_secs"])],
                    tolerance,
                );
            }
        }
    }
    assert!(
        receives > 100 && rejections > 30 && updates > 800,
        "{receives} {rejections} {updates}"
    );
}
