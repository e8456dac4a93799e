//! Tests of input merging and checking.

use super::*;

fn inputs() -> Inputs {
    Inputs::new(
        vec!["shoulder".into(), "elbow".into()],
        "base_link",
        0.5,
        vec![CircleObstacle {
            center_m: [-0.5, 0.0],
            radius_m: 0.05,
        }],
        vec!["left".into(), "right".into()],
    )
}

fn js(names: &[&str], positions: &[f64]) -> JointStateIn {
    JointStateIn {
        stamp_secs: 0.0,
        names: names.iter().map(|s| s.to_string()).collect(),
        positions: positions.to_vec(),
        velocities_len: 0,
        efforts_len: 0,
    }
}

#[test]
fn joint_states_merge_by_name_and_age() {
    let mut i = inputs();
    let mut p = Problems::new();
    assert!(i.measured(0.0, &mut p).is_none());
    assert_eq!(
        p.get(keys::JS_MISSING).unwrap().level,
        Level::Warn,
        "waiting"
    );
    i.on_joint_state(&js(&["elbow", "gripper"], &[0.5, 0.01]), 0.1, &mut p);
    assert!(i.measured(0.1, &mut p).is_none());
    let missing = p.get(keys::JS_MISSING).unwrap();
    assert_eq!(missing.level, Level::Error);
    assert!(missing.text.contains("shoulder"), "{}", missing.text);
    i.on_joint_state(&js(&["shoulder"], &[0.25]), 0.2, &mut p);
    let (q, oldest) = i.measured(0.3, &mut p).unwrap();
    assert_eq!(q, vec![0.25, 0.5]);
    assert_eq!(oldest, 0.1);
    assert!(!p.is_active(keys::JS_MISSING));
    assert_eq!(i.foreign_joints(), ["gripper"]);
    assert!(
        !p.is_active(keys::JS_FOREIGN),
        "other joints beside ours are normal"
    );
    // NaN is skipped: the joint keeps its value and ages until it is stale.
    i.on_joint_state(&js(&["shoulder", "elbow"], &[0.3, f64::NAN]), 0.4, &mut p);
    assert_eq!(i.measured(0.4, &mut p).unwrap().0, vec![0.3, 0.5]);
    assert_eq!(p.get(keys::JS_NON_FINITE).unwrap().level, Level::Warn);
    assert!(i.measured(0.65, &mut p).is_none());
    let stale = p.get(keys::JS_STALE).unwrap();
    assert!(
        stale.text.contains("elbow") && !stale.text.contains("shoulder"),
        "{}",
        stale.text
    );
    i.on_joint_state(&js(&["elbow", "shoulder"], &[0.6, 0.3]), 0.7, &mut p);
    assert_eq!(i.measured(0.7, &mut p).unwrap().0, vec![0.3, 0.6]);
    assert!(!p.is_active(keys::JS_STALE));
}

#[test]
fn malformed_and_foreign_joint_states_are_reported_and_dropped() {
    let mut i = inputs();
    let mut p = Problems::new();
    i.on_joint_state(&js(&["shoulder", "elbow"], &[0.1, 0.2, 0.3]), 0.0, &mut p);
    let problem = p.get(keys::JS_MALFORMED).unwrap();
    assert_eq!(problem.level, Level::Error);
    assert!(
        problem.text.contains("2 names but 3 positions"),
        "{}",
        problem.text
    );
    let mut bad_velocity = js(&["shoulder", "elbow"], &[0.1, 0.2]);
    bad_velocity.velocities_len = 1;
    i.on_joint_state(&bad_velocity, 0.1, &mut p);
    i.on_joint_state(&js(&["elbow", "elbow"], &[0.1, 0.2]), 0.2, &mut p);
    assert!(p.get(keys::JS_MALFORMED).unwrap().text.contains("twice"));
    assert!(i.measured(0.2, &mut p).is_none(), "nothing was merged");
    i.on_joint_state(&js(&["wrist"], &[0.1]), 0.3, &mut p);
    assert_eq!(p.get(keys::JS_FOREIGN).unwrap().level, Level::Warn);
    let mut empty_arrays = js(&["shoulder", "elbow"], &[0.1, 0.2]);
    empty_arrays.efforts_len = 0;
    empty_arrays.velocities_len = 2;
    i.on_joint_state(&empty_arrays, 0.4, &mut p);
    assert!(i.measured(0.4, &mut p).is_some());
    p.expire(0.4 + EVENT_EXPIRY_SECS + 0.01);
    assert!(!p.is_active(keys::JS_MALFORMED));
}

#[test]
fn goals_must_be_in_the_base_frame_and_finite() {
    let mut i = inputs();
    let mut p = Problems::new();
    let goal = |frame: &str, x: f64| GoalIn {
        frame_id: frame.into(),
        position_m: [x, 0.5, 0.3],
    };
    assert_eq!(
        i.on_goal(&goal("base_link", 0.4), 1.0, &mut p),
        Change::Replan
    );
    assert_eq!(i.goal(), Some(([0.4, 0.5], 1.0)));
    assert_eq!(
        i.on_goal(&goal("/base_link", 0.3), 1.5, &mut p),
        Change::Replan
    );
    assert_eq!(i.on_goal(&goal("map", 0.4), 2.0, &mut p), Change::Stop);
    assert_eq!(i.goal(), None, "a rejected goal replaces the old one");
    let text = &p.get(keys::GOAL).unwrap().text;
    assert!(
        text.contains("`map`") && text.contains("`base_link`"),
        "{text}"
    );
    assert_eq!(i.on_goal(&goal("", 0.4), 2.1, &mut p), Change::Stop);
    assert_eq!(
        i.on_goal(&goal("base_link", f64::NAN), 2.2, &mut p),
        Change::Stop
    );
    assert!(p.get(keys::GOAL).unwrap().text.contains("not finite"));
    i.on_goal(&goal("base_link", 0.4), 3.0, &mut p);
    assert!(!p.is_active(keys::GOAL));
}

fn m(ns: &str, id: i32, kind: i32, action: i32, x: f64, diameter: f64) -> MarkerIn {
    MarkerIn {
        ns: ns.into(),
        id,
        kind,
        action,
        frame_id: "base_link".into(),
        position_m: [x, 0.2, 0.0],
        scale_m: [diameter, diameter, 1.0],
        lifetime_secs: 0.0,
    }
}

#[test]
fn obstacles_follow_marker_semantics() {
    let mut i = inputs();
    let mut p = Problems::new();
    assert_eq!(
        i.obstacles().len(),
        1,
        "static obstacles from the parameters"
    );
    let add = [
        m("a", 0, marker::SPHERE, marker::ADD, 0.5, 0.2),
        m("a", 1, marker::CYLINDER, marker::ADD, 0.6, 0.1),
        m("b", 0, marker::SPHERE, marker::ADD, 0.7, 0.1),
    ];
    assert_eq!(i.on_obstacles(&add, 1.0, &mut p), Change::Replan);
    let all = i.obstacles();
    assert_eq!(all.len(), 4);
    assert_eq!(all[1].center_m, [0.5, 0.2]);
    assert!(
        (all[1].radius_m - 0.1).abs() < 1e-12,
        "radius = diameter / 2"
    );
    assert_eq!(i.on_obstacles(&add, 1.1, &mut p), Change::None, "unchanged");
    let delete = [m("a", 1, 0, marker::DELETE, 0.0, 0.0)];
    assert_eq!(i.on_obstacles(&delete, 1.2, &mut p), Change::Replan);
    assert_eq!(i.obstacles().len(), 3);
    let clear_b = [m("b", 0, 0, marker::DELETEALL, 0.0, 0.0)];
    i.on_obstacles(&clear_b, 1.3, &mut p);
    assert_eq!(i.obstacles().len(), 2);
    let clear_all = [
        m("", 0, 0, marker::DELETEALL, 0.0, 0.0),
        m("c", 0, marker::SPHERE, marker::ADD, 0.1, 0.1),
    ];
    i.on_obstacles(&clear_all, 1.4, &mut p);
    assert_eq!(i.obstacles().len(), 2);
    assert_eq!(i.obstacles()[1].center_m, [0.1, 0.2]);
    assert_eq!(i.obstacles_secs(), Some(1.4));
}

#[test]
fn a_bad_obstacles_message_is_rejected_whole() {
    let mut i = inputs();
    let mut p = Problems::new();
    i.on_obstacles(
        &[m("a", 0, marker::SPHERE, marker::ADD, 0.5, 0.2)],
        0.0,
        &mut p,
    );
    let mut other_frame = m("a", 1, marker::SPHERE, marker::ADD, 0.5, 0.2);
    other_frame.frame_id = "map".into();
    let bad = [
        m("a", 2, marker::SPHERE, marker::ADD, 0.9, 0.2),
        other_frame,
    ];
    assert_eq!(i.on_obstacles(&bad, 1.0, &mut p), Change::Stop);
    assert!(!i.obstacles_ok());
    assert_eq!(i.obstacles().len(), 2, "nothing of the bad message applied");
    assert!(p.get(keys::OBSTACLES).unwrap().text.contains("`map`"));
    for bad in [
        m("a", 3, marker::SPHERE, marker::ADD, f64::NAN, 0.2),
        m("a", 3, marker::SPHERE, marker::ADD, 0.5, 0.0),
        m("a", 3, marker::SPHERE, marker::ADD, 0.5, f64::INFINITY),
        m("a", 3, marker::SPHERE, 7, 0.5, 0.2),
    ] {
        assert_eq!(
            i.on_obstacles(std::slice::from_ref(&bad), 2.0, &mut p),
            Change::Stop,
            "{bad:?}"
        );
    }
    // A marker the node cannot represent invalidates the set (never a plan around a subset).
    let cube = [
        m("a", 4, marker::SPHERE, marker::ADD, 0.9, 0.2),
        m("b", 1, marker::CUBE, marker::ADD, 0.7, 0.1),
    ];
    assert_eq!(i.on_obstacles(&cube, 2.5, &mut p), Change::Stop);
    assert!(!i.obstacles_ok());
    let text = &p.get(keys::OBSTACLES).unwrap().text;
    assert!(text.contains("`b`/1 is a CUBE (1)"), "{text}");
    let good = [m("a", 0, marker::SPHERE, marker::ADD, 0.5, 0.2)];
    assert_eq!(
        i.on_obstacles(&good, 3.0, &mut p),
        Change::Replan,
        "valid again"
    );
    assert!(i.obstacles_ok());
    assert!(!p.is_active(keys::OBSTACLES));
}

#[test]
fn mode_requests_must_name_a_model_mode() {
    let mut i = inputs();
    let mut p = Problems::new();
    assert_eq!(i.on_mode("left", 0.0, &mut p), Change::Replan);
    assert_eq!(i.on_mode("left", 0.1, &mut p), Change::None);
    assert_eq!(i.on_mode("up", 0.2, &mut p), Change::None);
    assert_eq!(i.mode(), &ModeRequest::Named("left".into()));
    let text = &p.get(keys::MODE).unwrap().text;
    assert!(
        text.contains("`up`") && text.contains("keeping `left`"),
        "{text}"
    );
    assert_eq!(
        i.on_mode("  ", 0.25, &mut p),
        Change::None,
        "empty is no `any`"
    );
    assert_eq!(i.mode(), &ModeRequest::Named("left".into()));
    assert!(p
        .get(keys::MODE)
        .unwrap()
        .text
        .contains("empty mode request"));
    assert_eq!(i.on_mode(" ANY ", 0.3, &mut p), Change::Replan);
    assert_eq!(i.mode(), &ModeRequest::Any);
    assert!(!p.is_active(keys::MODE));
}

#[test]
fn stale_obstacles_are_an_input_error_and_resent_goals_no_event() {
    let mut i = inputs().with_obstacle_rules(ObstacleRules {
        timeout_secs: 1.0,
        change_tolerance_m: 0.001,
    });
    let mut p = Problems::new();
    assert_eq!(i.update_obstacles(0.0, &mut p), Change::None);
    assert!(i.obstacles_ok());
    assert_eq!(i.update_obstacles(1.5, &mut p), Change::Stop, "none came");
    assert!(!i.obstacles_ok());
    assert!(p
        .get(keys::OBSTACLES_STALE)
        .unwrap()
        .text
        .contains("no obstacles message yet"));
    let add = [m("a", 0, marker::SPHERE, marker::ADD, 0.5, 0.2)];
    i.on_obstacles(&add, 1.6, &mut p);
    assert_eq!(i.update_obstacles(1.7, &mut p), Change::None);
    assert!(i.obstacles_ok() && !p.is_active(keys::OBSTACLES_STALE));
    assert_eq!(i.update_obstacles(2.7, &mut p), Change::Stop);
    assert!(p
        .get(keys::OBSTACLES_STALE)
        .unwrap()
        .text
        .contains("no valid obstacles message for"));
    // An unchanged set keeps the stream alive.
    assert_eq!(i.on_obstacles(&add, 2.8, &mut p), Change::None);
    assert_eq!(i.update_obstacles(2.9, &mut p), Change::None);
    assert!(i.obstacles_ok());

    let goal = |frame: &str, x: f64| GoalIn {
        frame_id: frame.into(),
        position_m: [x, 0.5, 0.3],
    };
    assert_eq!(
        i.on_goal(&goal("base_link", 0.4), 3.0, &mut p),
        Change::Replan
    );
    assert_eq!(
        i.on_goal(&goal("base_link", 0.4), 3.1, &mut p),
        Change::None
    );
    assert_eq!(
        i.on_goal(&goal("base_link", 0.4005), 3.2, &mut p),
        Change::None
    );
    assert_eq!(
        i.on_goal(&goal("base_link", 0.402), 3.3, &mut p),
        Change::Replan
    );
}
