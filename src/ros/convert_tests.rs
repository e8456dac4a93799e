//! Tests of the message conversions.

use super::*;
use crate::planning::{ModeRequest, ObservationInput, Planner, PlannerConfig};
use crate::robot::CircleObstacle;
use crate::ros::geometric_source::GeometricSource;
use crate::ros::problems::Level;
use r2r::geometry_msgs::msg::Pose;

#[test]
fn durations_split_into_seconds_and_nanoseconds() {
    let d = to_duration(1.5);
    assert_eq!((d.sec, d.nanosec), (1, 500_000_000));
    let d = to_duration(0.02);
    assert_eq!((d.sec, d.nanosec), (0, 20_000_000));
    let d = to_duration(0.999_999_999_9);
    assert_eq!(
        (d.sec, d.nanosec),
        (1, 0),
        "rounds to the nanosecond, carries"
    );
    let d = to_duration(-1.0);
    assert_eq!((d.sec, d.nanosec), (0, 0));
    let d = to_duration(f64::NAN);
    assert_eq!((d.sec, d.nanosec), (0, 0));
    assert_eq!(duration_secs(&to_duration(2.25)), 2.25);
    let t = to_time(1_000.25);
    assert_eq!((t.sec, t.nanosec), (1_000, 250_000_000));
}

#[test]
fn inputs_are_copied_from_the_messages() {
    let js = JointState {
        name: vec!["elbow".into(), "shoulder".into()],
        position: vec![0.1, 0.2],
        velocity: vec![0.0, 0.0],
        effort: vec![],
        ..Default::default()
    };
    let converted = joint_state_in(&js);
    assert_eq!(converted.names, ["elbow", "shoulder"]);
    assert_eq!(converted.positions, [0.1, 0.2]);
    assert_eq!((converted.velocities_len, converted.efforts_len), (2, 0));

    let mut goal = PoseStamped::default();
    goal.header.frame_id = "base_link".into();
    goal.pose.position.x = 0.3;
    goal.pose.position.y = -0.4;
    goal.pose.position.z = 0.1;
    let converted = goal_in(&goal);
    assert_eq!(converted.frame_id, "base_link");
    assert_eq!(converted.position_m, [0.3, -0.4, 0.1]);

    let mut m = Marker {
        ns: "obstacles".into(),
        id: 7,
        type_: marker::CYLINDER,
        action: marker::ADD,
        pose: Pose::default(),
        ..Default::default()
    };
    m.header.frame_id = "base_link".into();
    m.pose.position.x = 0.5;
    m.scale.x = 0.2;
    m.scale.y = 0.2;
    m.scale.z = 1.0;
    let converted = markers_in(&MarkerArray { markers: vec![m] });
    assert_eq!(converted.len(), 1);
    assert_eq!(converted[0].ns, "obstacles");
    assert_eq!(converted[0].id, 7);
    assert_eq!(converted[0].kind, marker::CYLINDER);
    assert_eq!(converted[0].position_m, [0.5, 0.0, 0.0]);
    assert_eq!(converted[0].scale_m, [0.2, 0.2, 1.0]);
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn trajectories_list_the_controller_joints_in_its_order() {
    let order = JointOrder::new(
        &names(&["elbow", "shoulder"]),
        &names(&["shoulder", "elbow"]),
    )
    .unwrap();
    let points = vec![
        CommandPoint {
            time_from_start_secs: 0.02,
            positions: vec![0.1, 0.2],
            velocities: vec![1.0, 2.0],
        },
        CommandPoint {
            time_from_start_secs: 1.25,
            positions: vec![0.3, 0.4],
            velocities: vec![0.0, 0.0],
        },
    ];
    let stamped = trajectory(&points, &order, Some(12.25));
    assert_eq!(
        (stamped.header.stamp.sec, stamped.header.stamp.nanosec),
        (12, 250_000_000)
    );
    let msg = trajectory(&points, &order, None);
    assert_eq!(msg.header.stamp.sec, 0);
    assert_eq!(msg.header.stamp.nanosec, 0);
    assert_eq!(msg.joint_names, ["elbow", "shoulder"]);
    assert_eq!(msg.points[0].positions, [0.2, 0.1]);
    assert_eq!(msg.points[0].velocities, [2.0, 1.0]);
    assert!(msg.points[0].accelerations.is_empty() && msg.points[0].effort.is_empty());
    assert_eq!(
        (
            msg.points[1].time_from_start.sec,
            msg.points[1].time_from_start.nanosec
        ),
        (1, 250_000_000)
    );
    assert!(JointOrder::new(&names(&["elbow", "wrist"]), &names(&["shoulder", "elbow"])).is_err());
    assert!(JointOrder::new(&names(&["elbow"]), &names(&["shoulder", "elbow"])).is_err());
}

#[test]
fn candidate_markers_show_every_candidate_by_mode_with_the_chosen_one_bold() {
    let source = GeometricSource::reference().unwrap();
    let arm = source.arm().clone();
    let config = PlannerConfig {
        num_samples: 16,
        ..PlannerConfig::default()
    };
    let mut planner = Planner::new(arm.clone(), Box::new(source), config).unwrap();
    let input = ObservationInput {
        joints: vec![("shoulder".into(), -0.3), ("elbow".into(), 0.6)],
        goal_m: [0.1, 0.4],
        obstacles: vec![CircleObstacle {
            center_m: [0.55, 0.45],
            radius_m: 0.08,
        }],
        mode: ModeRequest::Any,
        ..Default::default()
    };
    let observation = planner.observation(input).unwrap();
    let mut outcome = planner.plan(&observation).unwrap();
    let chosen = outcome.chosen.unwrap();
    assert!(outcome.candidates.iter().any(|c| !c.valid), "some rejected");
    // One candidate with a NaN: no marker for it.
    let mut broken = outcome.candidates[0].path.as_slice().to_vec();
    broken[3] = f64::NAN;
    outcome.candidates[0].path = crate::robot::JointPath::new(2, broken).unwrap();
    let array = candidate_markers(&outcome, &arm, "base_link");
    let markers = &array.markers;
    assert_eq!(markers[0].action, marker::DELETEALL);
    assert_eq!(markers[0].ns, CANDIDATES_NS);
    assert_eq!(markers.len(), 16, "DELETEALL + 15 finite candidates");
    let mut ids = std::collections::BTreeSet::new();
    for m in &markers[1..] {
        assert_eq!(m.type_, marker::LINE_STRIP);
        assert_eq!(m.header.frame_id, "base_link");
        assert!(ids.insert(m.id), "unique ids");
        assert_ne!(m.id, 0, "the NaN candidate is left out");
        let candidate = &outcome.candidates[m.id as usize];
        assert_eq!(m.points.len(), candidate.path.len());
        let first = arm.end_effector(candidate.path.first());
        assert!(
            (m.points[0].x - first[0]).abs() < 1e-12 && (m.points[0].y - first[1]).abs() < 1e-12
        );
        let numbers = m
            .points
            .iter()
            .flat_map(|p| [p.x, p.y, p.z])
            .chain([m.scale.x, m.pose.orientation.w])
            .chain([m.color.r, m.color.g, m.color.b, m.color.a].map(f64::from));
        assert!(numbers.into_iter().all(f64::is_finite));
        let expected_width = if m.id as usize == chosen {
            WIDTH_CHOSEN_M
        } else if candidate.valid {
            WIDTH_VALID_M
        } else {
            WIDTH_REJECTED_M
        };
        assert_eq!(m.scale.x, expected_width);
        if !candidate.valid {
            assert_eq!([m.color.r, m.color.g, m.color.b], REJECTED_RGB);
        }
    }
    assert!(ids.contains(&(chosen as i32)));
}

#[test]
fn diagnostics_carry_levels_names_and_values() {
    let reports = vec![
        StatusReport {
            name: "dp: inputs".into(),
            level: Level::Error,
            message: "joint_states.stale: ...".into(),
            values: vec![("goal_m".into(), "(0.1, 0.2)".into())],
        },
        StatusReport {
            name: "dp: planning".into(),
            level: Level::Warn,
            message: "late".into(),
            values: vec![],
        },
    ];
    let msg = diagnostics(&reports, "/dp", 12.5);
    assert_eq!(
        (msg.header.stamp.sec, msg.header.stamp.nanosec),
        (12, 500_000_000)
    );
    assert_eq!(msg.status.len(), 2);
    assert_eq!(msg.status[0].level, 2);
    assert_eq!(msg.status[1].level, 1);
    assert_eq!(msg.status[0].hardware_id, "/dp");
    assert_eq!(msg.status[0].values[0].key, "goal_m");
    assert_eq!(msg.status[0].values[0].value, "(0.1, 0.2)");
}
