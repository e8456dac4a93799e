//! The demo report on a small synthetic trace.

use std::collections::BTreeMap;

use super::*;
use crate::robot::{CircleObstacle, RobotDescription};

fn sample(t_s: f64, calls: u64, latency_ms: f64, label: &str, requested: &str) -> PlanningSample {
    PlanningSample {
        t_s,
        calls,
        latency_ms: Some(latency_ms),
        chosen_mode_label: Some(label.to_string()),
        requested_mode: Some(requested.to_string()),
        level: 0,
        message: "ok".into(),
    }
}

/// Ten seconds: the arm moves from `q0` to `q1` (goal g1, reached) and on toward `q2` (goal
/// g2, not reached), an obstacle that moves once, a mode request, seven planning statuses.
fn trace() -> DemoTrace {
    let robot = RobotDescription::planar_2link();
    let arm = PlanarArm::new(robot.clone()).unwrap();
    let (q0, q1, q2) = ([-0.2, 0.8], [1.2, 0.9], [1.9, -0.6]);
    let mut series = JointSeries {
        names: robot.joint_names(),
        ..JointSeries::default()
    };
    for i in 0..=100 {
        let t = f64::from(i) * 0.1;
        let (a, b, u) = if t < 4.0 {
            (q0, q1, t / 4.0)
        } else {
            (q1, q2, ((t - 5.0) / 4.0).clamp(0.0, 1.0))
        };
        series.t_s.push(t);
        series
            .positions_rad
            .push(vec![a[0] + u * (b[0] - a[0]), a[1] + u * (b[1] - a[1])]);
    }
    let circle = |x: f64, y: f64| CircleObstacle {
        center_m: [x, y],
        radius_m: 0.08,
    };
    let planning = vec![
        sample(0.5, 1, 300.0, "left_elbow_down", "any"),
        sample(0.6, 1, 300.0, "left_elbow_down", "any"), // the same call again
        sample(1.0, 2, 320.0, "none", "any"),
        sample(1.5, 4, 900.0, "left_elbow_down", "any"),
        sample(5.2, 5, 280.0, "right_elbow_up", "right_elbow_up"),
        sample(6.0, 6, 310.0, "right_elbow_up", "right_elbow_up"),
        sample(7.0, 7, 350.0, "left_elbow_up", "any"),
    ];
    let mut topics = BTreeMap::new();
    topics.insert(
        "/joint_states".to_string(),
        RecordedTopic {
            msgtype: "sensor_msgs/msg/JointState".into(),
            messages: 1000,
        },
    );
    topics.insert(
        "/goal".to_string(),
        RecordedTopic {
            msgtype: "geometry_msgs/msg/PoseStamped".into(),
            messages: 2,
        },
    );
    DemoTrace {
        format_version: TRACE_FORMAT_VERSION,
        model: "synthetic".into(),
        mode_names: vec![
            "left_elbow_up".into(),
            "left_elbow_down".into(),
            "right_elbow_up".into(),
            "right_elbow_down".into(),
        ],
        robot,
        duration_s: 10.0,
        goals: vec![
            GoalEvent {
                name: "g1".into(),
                t_s: 0.2,
                goal_m: arm.end_effector(&q1),
                mode: "any".into(),
                reached_t_s: Some(4.1),
                timeout_s: 8.0,
            },
            GoalEvent {
                name: "g2".into(),
                t_s: 5.0,
                goal_m: arm.end_effector(&q2),
                mode: "right_elbow_up".into(),
                reached_t_s: None,
                timeout_s: 5.0,
            },
        ],
        obstacles: vec![
            ObstacleEvent {
                t_s: 0.1,
                circles: vec![circle(0.45, 0.45)],
            },
            ObstacleEvent {
                t_s: 4.5,
                circles: vec![circle(0.2, 0.6), circle(-0.5, -0.3)],
            },
        ],
        mode_requests: vec![
            ModeRequestEvent {
                t_s: 5.0,
                mode: "right_elbow_up".into(),
            },
            ModeRequestEvent {
                t_s: 6.5,
                mode: "any".into(),
            },
        ],
        joint_states: series,
        planning,
        node: Some(NodeTotals {
            outcomes: 7,
            failed_calls: 1,
            no_valid_candidate: 1,
            late_plans: 0,
            latency_ms_p50: Some(310.0),
            latency_ms_max: Some(900.0),
            control_rate_hz: Some(50.0),
        }),
        sim: Some(SimTotals {
            collisions: 0,
            trajectories_accepted: 500,
            trajectories_rejected: 0,
            min_clearance_m: Some(0.031),
            max_tracking_error_rad: Some(0.002),
        }),
        recording: Some(RecordingInfo {
            path: "recording".into(),
            storage: "mcap".into(),
            topics,
        }),
        node_parameters: [("replan_rate_hz".to_string(), "0.2".to_string())].into(),
        notes: vec!["a note".into()],
    }
}

fn exits(codes: &[&str]) -> Vec<ProcessExit> {
    codes.iter().map(|c| c.parse().unwrap()).collect()
}

#[test]
fn summary_counts_goals_distinct_calls_and_mode_switches() {
    let s = DemoSummary::compute(&trace(), &exits(&["node=0", "sim=0", "scenario=0"]));
    assert!(s.passed, "{:?}", s.problems);
    assert_eq!((s.goals_reached, s.goals_sent), (1, 2));
    assert_eq!(s.collisions, Some(0));
    assert_eq!(s.rejected_trajectories, Some(0));
    // Calls 1, 2 (none), 4, 5, 6, 7: the repeat of call 1 and the `none` do not count.
    assert_eq!(
        s.mode_sequence,
        ["left_elbow_down", "right_elbow_up", "left_elbow_up"]
    );
    assert_eq!(s.mode_switches, 2);
    assert_eq!(s.latency_samples, 6);
    // Nearest rank of [280, 300, 310, 320, 350, 900]: p50 = 3rd, p99 = 6th.
    assert_eq!(s.latency_ms_p50, Some(310.0));
    assert_eq!(s.latency_ms_p99, Some(900.0));
    assert_eq!(s.planning_calls, Some(8));
    assert_eq!(s.recorded_messages, Some(1002));
    assert_eq!(s.mode_requests, 2);
    let text = s.text();
    assert!(text.contains("PASSED") && text.contains("1 / 2"), "{text}");
}

#[test]
fn collisions_crashes_silence_and_no_goal_fail_the_run() {
    let mut t = trace();
    t.sim.as_mut().unwrap().collisions = 2;
    let s = DemoSummary::compute(&t, &exits(&["node=early:139", "sim=0", "scenario=1"]));
    assert!(!s.passed);
    let problems = s.problems.join("\n");
    assert!(problems.contains("2 collisions"), "{problems}");
    assert!(problems.contains("node ended before"), "{problems}");
    assert!(
        problems.contains("scenario exited with status 1"),
        "{problems}"
    );
    assert!(s.text().contains("FAILED"));

    let mut t = trace();
    t.sim = None;
    for g in &mut t.goals {
        g.reached_t_s = None;
    }
    let s = DemoSummary::compute(&t, &[]);
    assert!(!s.passed);
    let problems = s.problems.join("\n");
    assert!(problems.contains("never reported"), "{problems}");
    assert!(problems.contains("no goal reached"), "{problems}");
    assert_eq!(s.collisions, None);
}

#[test]
fn process_exits_parse_and_name_bad_input() {
    let p: ProcessExit = "node=early:134".parse().unwrap();
    assert_eq!(
        p,
        ProcessExit {
            name: "node".into(),
            code: 134,
            early: true
        }
    );
    assert!(!p.ok());
    assert!("sim=0".parse::<ProcessExit>().unwrap().ok());
    for bad in ["node", "=0", "node=x", "node=early:"] {
        let err = bad.parse::<ProcessExit>().unwrap_err().to_string();
        assert!(err.contains(bad) && err.contains("NAME=CODE"), "{err}");
    }
}

#[test]
fn the_trace_round_trips_and_bad_traces_name_the_key() {
    let t = trace();
    let json = serde_json::to_string(&t).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.json");
    std::fs::write(&path, &json).unwrap();
    // (serde_json parses floats to within an ulp: compare what both sides read.)
    let loaded = serde_json::to_value(DemoTrace::load(&path).unwrap()).unwrap();
    assert_eq!(
        loaded,
        serde_json::from_str::<serde_json::Value>(&json).unwrap()
    );

    let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
    value["colour"] = serde_json::json!("red");
    std::fs::write(&path, value.to_string()).unwrap();
    let err = DemoTrace::load(&path).unwrap_err().to_string();
    assert!(err.contains("colour"), "{err}");

    let mut bad = trace();
    bad.joint_states.positions_rad[3] = vec![0.1];
    let err = bad.validate().unwrap_err().to_string();
    assert!(err.contains("joint_states.positions_rad[3]"), "{err}");
    let mut bad = trace();
    bad.format_version = 99;
    assert!(bad
        .validate()
        .unwrap_err()
        .to_string()
        .contains("format_version"));
    let mut bad = trace();
    bad.obstacles[1].circles[0].radius_m = 0.0;
    let err = bad.validate().unwrap_err().to_string();
    assert!(err.contains("obstacles[1].circles[0].radius_m"), "{err}");
}

#[test]
fn obstacles_in_force_follow_the_events() {
    let t = trace();
    assert!(t.obstacles_at(0.0).is_empty());
    assert_eq!(t.obstacles_at(1.0).len(), 1);
    assert_eq!(t.obstacles_at(9.0).len(), 2);
}

/// A PNG's width and height from its header.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
    let be = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    (be(16), be(20))
}

#[test]
fn the_report_writes_summary_plots_and_page() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let trace_path = dir.path().join("trace.json");
    std::fs::write(&trace_path, serde_json::to_string(&trace()).unwrap()).unwrap();
    let args = DemoReportArgs {
        trace: trace_path,
        out: out.clone(),
        processes: exits(&["node=0", "sim=0"]),
    };
    let summary = run(&args).unwrap();
    assert!(summary.passed);
    let written: DemoSummary =
        serde_json::from_str(&std::fs::read_to_string(out.join(SUMMARY_JSON)).unwrap()).unwrap();
    assert_eq!(written, summary);
    assert_eq!(png_size(&out.join(WORKSPACE_PNG)), (900, 980));
    assert_eq!(png_size(&out.join(JOINTS_PNG)), (1100, 520));
    // Four modes and `none`.
    assert_eq!(png_size(&out.join(MODES_PNG)), (1100, 160 + 50 * 5));
    for png in [WORKSPACE_PNG, JOINTS_PNG, MODES_PNG] {
        assert!(
            std::fs::metadata(out.join(png)).unwrap().len() > 5_000,
            "{png}"
        );
    }
    let page = std::fs::read_to_string(out.join(REPORT_MD)).unwrap();
    for needle in [
        "# Demo run: passed",
        "| goals reached | 1 / 2 |",
        "| g1 | ",
        "| g2 | ",
        "no (waited 5 s)",
        "](workspace.png)",
        "](joints.png)",
        "](modes.png)",
        "`/joint_states`",
        "left_elbow_down → right_elbow_up → left_elbow_up",
        "- a note",
        "`replan_rate_hz: 0.2`",
    ] {
        assert!(page.contains(needle), "`{needle}` missing in:\n{page}");
    }
}

#[test]
fn the_plots_differ_with_the_data() {
    // The workspace plot shows the path: another path, other pixels.
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.png");
    let b = dir.path().join("b.png");
    let t = trace();
    let arm = PlanarArm::new(t.robot.clone()).unwrap();
    figures::draw_workspace(&a, &t, &arm).unwrap();
    let mut moved = t.clone();
    for q in &mut moved.joint_states.positions_rad {
        q[0] -= 1.0;
    }
    figures::draw_workspace(&b, &moved, &arm).unwrap();
    assert_ne!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
}

#[test]
fn time_colours_run_from_dark_to_light() {
    let start = figures::time_colour(0.0);
    let end = figures::time_colour(1.0);
    assert_eq!((start.0, start.1, start.2), (68, 1, 84));
    assert_eq!((end.0, end.1, end.2), (253, 231, 37));
    let nan = figures::time_colour(f64::NAN);
    assert_eq!((nan.0, nan.1, nan.2), (68, 1, 84));
}

#[test]
fn mode_rows_add_unknown_labels_before_none() {
    let mut t = trace();
    t.planning[2].chosen_mode_label = Some("elbow_up".into());
    let rows = figures::mode_rows(&t);
    assert_eq!(rows.last().map(String::as_str), Some("none"));
    assert_eq!(rows[4], "elbow_up");
    assert_eq!(rows.len(), 6);
}
