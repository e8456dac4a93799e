//! Tests of the simulated controller and arm (fast; the closed loop on three scenes is in
//! `closed_loop_tests`).

use super::*;
use crate::robot::{CircleObstacle, PlanarArm, RobotDescription};

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn settings() -> JtcSettings {
    JtcSettings::recommended(names(&["shoulder", "elbow"]))
}

fn point(t: f64, p: [f64; 2], v: [f64; 2]) -> TrajectoryPoint {
    TrajectoryPoint {
        positions: p.to_vec(),
        velocities: v.to_vec(),
        time_from_start_secs: t,
        ..Default::default()
    }
}

fn msg(points: Vec<TrajectoryPoint>) -> JointTrajectory {
    JointTrajectory {
        stamp_secs: 0.0,
        joint_names: names(&["shoulder", "elbow"]),
        points,
    }
}

fn good() -> JointTrajectory {
    msg(vec![
        point(0.02, [0.1, 0.2], [0.5, 0.5]),
        point(0.5, [0.3, 0.4], [0.0, 0.0]),
    ])
}

fn rule_of(m: &JointTrajectory, s: &JtcSettings, now: f64) -> Option<Rule> {
    validate(m, s, now).err().map(|e| e.rule())
}

#[test]
fn a_valid_message_passes() {
    assert_eq!(validate(&good(), &settings(), 100.0), Ok(()));
    // The first point may be at 0; accelerations may be absent or complete.
    let mut m = good();
    m.points[0].time_from_start_secs = 0.0;
    m.points[1].accelerations = vec![0.0, 0.0];
    assert_eq!(validate(&m, &settings(), 0.0), Ok(()));
}

#[test]
fn rule_1_all_joints_unless_partial_goals_are_allowed() {
    let mut m = good();
    m.joint_names.pop();
    for p in &mut m.points {
        p.positions.pop();
        p.velocities.pop();
    }
    let err = validate(&m, &settings(), 0.0).unwrap_err();
    assert_eq!(
        err,
        Rejection::JointCount {
            expected: 2,
            found: 1
        }
    );
    assert_eq!(err.rule().number(), Some(1));
    assert!(err.to_string().starts_with("JTC rule 1"), "{err}");
    let mut partial = settings();
    partial.allow_partial_joints_goal = true;
    assert_eq!(validate(&m, &partial, 0.0), Ok(()));
}

#[test]
fn rule_2_joint_names_must_not_be_empty() {
    let mut partial = settings();
    partial.allow_partial_joints_goal = true;
    let mut m = good();
    m.joint_names.clear();
    assert_eq!(rule_of(&m, &partial, 0.0), Some(Rule::EmptyJointNames));
    // Without partial goals rule 1 comes first.
    assert_eq!(rule_of(&m, &settings(), 0.0), Some(Rule::JointCount));
}

#[test]
fn rule_3_points_must_not_be_empty() {
    let mut m = good();
    m.points.clear();
    // Also an unknown joint: rule 3 is checked before rule 4.
    m.joint_names[1] = "wrist".into();
    assert_eq!(rule_of(&m, &settings(), 0.0), Some(Rule::EmptyPoints));
}

#[test]
fn rule_4_names_must_be_controller_joints_in_any_order() {
    let mut m = good();
    m.joint_names[1] = "wrist".into();
    let err = validate(&m, &settings(), 0.0).unwrap_err();
    assert_eq!(err.rule(), Rule::UnknownJoint);
    assert!(err.to_string().contains("`wrist`"), "{err}");
    let mut m = good();
    m.joint_names.reverse();
    assert_eq!(validate(&m, &settings(), 0.0), Ok(()));
}

#[test]
fn rule_5_the_last_velocity_must_be_zero_unless_allowed() {
    let mut m = good();
    m.points[1].velocities = vec![0.0, 0.1];
    let err = validate(&m, &settings(), 0.0).unwrap_err();
    assert_eq!(
        err,
        Rejection::NonzeroEndVelocity {
            joint: "elbow".into(),
            velocity_rad_s: 0.1
        }
    );
    // |v| <= f32 epsilon counts as zero; absent velocities pass.
    m.points[1].velocities = vec![0.0, 0.5 * F32_EPSILON];
    assert_eq!(validate(&m, &settings(), 0.0), Ok(()));
    m.points[1].velocities = vec![0.0, 0.1];
    let mut allowed = settings();
    allowed.allow_nonzero_velocity_at_trajectory_end = true;
    assert_eq!(validate(&m, &allowed, 0.0), Ok(()));
    for p in &mut m.points {
        p.velocities.clear();
    }
    assert_eq!(validate(&m, &settings(), 0.0), Ok(()));
}

#[test]
fn rule_6_a_stamped_trajectory_must_not_end_in_the_past() {
    let mut m = good();
    m.stamp_secs = 10.0;
    assert_eq!(validate(&m, &settings(), 10.4), Ok(()));
    assert_eq!(validate(&m, &settings(), 10.5), Ok(()));
    assert_eq!(rule_of(&m, &settings(), 10.6), Some(Rule::EndsInPast));
    // A zero stamp means "now": never in the past.
    m.stamp_secs = 0.0;
    assert_eq!(validate(&m, &settings(), 1e6), Ok(()));
}

#[test]
fn rule_7_times_must_increase_strictly() {
    let mut m = good();
    m.points[1].time_from_start_secs = 0.02;
    let err = validate(&m, &settings(), 0.0).unwrap_err();
    assert_eq!(
        err,
        Rejection::TimeNotIncreasing {
            index: 1,
            secs: 0.02,
            previous_secs: 0.02
        }
    );
    m.points[1].time_from_start_secs = f64::NAN;
    assert_eq!(rule_of(&m, &settings(), 0.0), Some(Rule::TimeNotIncreasing));
}

#[test]
fn rule_8_positions_are_mandatory_and_fields_sized() {
    let mut m = good();
    m.points[0].positions.clear();
    let err = validate(&m, &settings(), 0.0).unwrap_err();
    assert_eq!(
        err,
        Rejection::FieldSize {
            index: 0,
            field: "positions",
            expected: 2,
            found: 0
        }
    );
    let mut m = good();
    m.points[1].velocities = vec![0.0];
    assert_eq!(rule_of(&m, &settings(), 0.0), Some(Rule::FieldSize));
    let mut m = good();
    m.points[0].accelerations = vec![0.0, 0.0, 0.0];
    assert_eq!(rule_of(&m, &settings(), 0.0), Some(Rule::FieldSize));
}

#[test]
fn rule_9_no_efforts_without_an_effort_interface() {
    let mut m = good();
    m.points[0].effort = vec![1.0, 1.0];
    let err = validate(&m, &settings(), 0.0).unwrap_err();
    assert_eq!(err, Rejection::Effort { index: 0 });
    assert_eq!(err.rule().number(), Some(9));
    let mut effort = settings();
    effort.effort_command_interface = true;
    assert_eq!(validate(&m, &effort, 0.0), Ok(()));
}

#[test]
fn the_simulator_also_rejects_duplicates_and_non_finite_values() {
    let mut m = good();
    m.joint_names = names(&["elbow", "elbow"]);
    let err = validate(&m, &settings(), 0.0).unwrap_err();
    assert_eq!(err.rule(), Rule::DuplicateJoint);
    assert_eq!(err.rule().number(), None);
    assert!(err.to_string().starts_with("sim check"), "{err}");
    let mut m = good();
    m.points[0].positions[1] = f64::INFINITY;
    assert_eq!(
        validate(&m, &settings(), 0.0),
        Err(Rejection::NonFinite {
            index: 0,
            field: "position"
        })
    );
}

#[test]
fn messages_are_sorted_to_controller_order_and_partial_goals_filled() {
    let mut m = good();
    m.joint_names.reverse();
    let sorted = to_controller_order(&m, &settings(), &[9.0, 9.0]);
    assert_eq!(sorted.joint_names, names(&["shoulder", "elbow"]));
    assert_eq!(sorted.points[0].positions, vec![0.2, 0.1]);
    let mut partial = settings();
    partial.allow_partial_joints_goal = true;
    let m = JointTrajectory {
        stamp_secs: 0.0,
        joint_names: names(&["elbow"]),
        points: vec![TrajectoryPoint {
            positions: vec![0.7],
            velocities: vec![0.0],
            time_from_start_secs: 0.1,
            ..Default::default()
        }],
    };
    assert_eq!(validate(&m, &partial, 0.0), Ok(()));
    let filled = to_controller_order(&m, &partial, &[0.25, -1.0]);
    assert_eq!(filled.points[0].positions, vec![0.25, 0.7]);
    assert_eq!(filled.points[0].velocities, vec![0.0, 0.0]);
    assert!(filled.points[0].accelerations.is_empty());
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn splines_meet_their_endpoints() {
    let a = TrajectoryPoint {
        positions: vec![0.2],
        velocities: vec![0.5],
        accelerations: vec![-1.0],
        ..Default::default()
    };
    let b = TrajectoryPoint {
        positions: vec![1.0],
        velocities: vec![-0.3],
        accelerations: vec![2.0],
        ..Default::default()
    };
    let (ta, tb) = (1.0, 1.8);
    // Quintic: position, velocity and acceleration at both ends.
    assert_eq!(spline_kind(&a, &b), SplineKind::Quintic);
    let s = interpolate(ta, &a, tb, &b, ta);
    assert!(close(s.positions[0], 0.2, 1e-12) && close(s.velocities[0], 0.5, 1e-12));
    assert!(close(s.accelerations[0], -1.0, 1e-12));
    let e = interpolate(ta, &a, tb, &b, tb);
    assert!(close(e.positions[0], 1.0, 1e-9), "{e:?}");
    assert!(close(e.velocities[0], -0.3, 1e-9) && close(e.accelerations[0], 2.0, 1e-8));
    // Cubic: positions and velocities (no accelerations on one side).
    let mut b_pv = b.clone();
    b_pv.accelerations.clear();
    assert_eq!(spline_kind(&a, &b_pv), SplineKind::Cubic);
    let e = interpolate(ta, &a, tb, &b_pv, tb);
    assert!(close(e.positions[0], 1.0, 1e-12) && close(e.velocities[0], -0.3, 1e-12));
    let m = interpolate(ta, &a, tb, &b_pv, 1.4);
    let hermite = crate::planning::hermite(0.2, 0.5, 1.0, -0.3, 0.8, 0.4);
    assert!(close(m.positions[0], hermite.0, 1e-12) && close(m.velocities[0], hermite.1, 1e-12));
    // Linear: positions only, constant velocity.
    let mut b_p = b_pv;
    b_p.velocities.clear();
    assert_eq!(spline_kind(&a, &b_p), SplineKind::Linear);
    let m = interpolate(ta, &a, tb, &b_p, 1.2);
    assert!(close(m.positions[0], 0.4, 1e-12) && close(m.velocities[0], 1.0, 1e-12));
    // Outside the segment: clamped to the end, linear.
    let after = interpolate(ta, &a, tb, &b, 5.0);
    assert!(close(after.positions[0], 1.0, 1e-12) && close(after.velocities[0], 1.0, 1e-12));
}

fn controller() -> TrajectoryController {
    TrajectoryController::new(settings(), vec![0.0, 0.0], 0.01).unwrap()
}

fn measured(p: [f64; 2]) -> TrajectoryPoint {
    TrajectoryPoint::state(p.to_vec(), vec![0.0, 0.0])
}

#[test]
fn holds_until_a_message_and_starts_a_zero_stamp_at_the_next_update() {
    let mut c = controller();
    let hermite = crate::planning::hermite;
    assert_eq!(
        c.update(1.0, &measured([0.0, 0.0])).positions,
        vec![0.0, 0.0]
    );
    c.receive(
        &msg(vec![
            point(0.1, [0.4, -0.2], [0.0, 0.0]),
            point(0.2, [0.5, -0.3], [0.0, 0.0]),
        ]),
        1.004,
    )
    .unwrap();
    // Pending, not active yet: the hold is active.
    assert!(!c.has_trajectory());
    // Adopted at the update at 1.01, which starts it: the first point is due at 1.11. The
    // point before is the last command (at rest) at its time 1.0; the command is the sample
    // one period ahead, at 1.02, on the cubic from (1.0, rest) to (1.11, first point).
    let p = c.update(1.01, &measured([0.0, 0.0])).positions.clone();
    let expected = hermite(0.0, 0.0, 0.4, 0.0, 0.11, 0.02).0;
    assert!(close(p[0], expected, 1e-12), "{p:?} vs {expected}");
    assert!(close(
        c.desired().positions[0],
        hermite(0.0, 0.0, 0.4, 0.0, 0.11, 0.01).0,
        1e-12
    ));
    assert!(close(c.remaining_secs(1.01), 0.2, 1e-12));
    let p = c.update(1.055, &measured([0.0, 0.0])).positions.clone();
    let expected = hermite(0.0, 0.0, -0.2, 0.0, 0.11, 0.065).0;
    assert!(close(p[1], expected, 1e-12), "{p:?} vs {expected}");
    // At 1.10 the command is the first point (due at 1.11).
    let p = c.update(1.10, &measured([0.0, 0.0])).positions.clone();
    assert!(close(p[0], 0.4, 1e-12) && close(p[1], -0.2, 1e-12), "{p:?}");
    // After the end: the last point, held.
    let held = c.update(4.0, &measured([0.0, 0.0])).clone();
    assert_eq!(held.positions, vec![0.5, -0.3]);
    assert_eq!(held.velocities, vec![0.0, 0.0]);
    assert_eq!(c.remaining_secs(4.0), 0.0);
    assert_eq!(c.stats().adopted, 1);
}

#[test]
fn a_stamp_in_the_past_samples_mid_trajectory() {
    let mut c = controller();
    c.update(1.99, &measured([0.0, 0.0]));
    let mut m = msg(vec![
        TrajectoryPoint {
            positions: vec![1.0, 1.0],
            time_from_start_secs: 0.5,
            ..Default::default()
        },
        TrajectoryPoint {
            positions: vec![2.0, 3.0],
            time_from_start_secs: 1.5,
            ..Default::default()
        },
    ]);
    m.stamp_secs = 1.0;
    c.receive(&m, 2.0).unwrap();
    // The command at 2.0 is the sample at 2.01, 1.01 s into the trajectory: linear (no
    // velocities) between its points, whatever the state before.
    let p = c.update(2.0, &measured([0.0, 0.0])).positions.clone();
    assert!(
        close(p[0], 1.51, 1e-12) && close(p[1], 2.02, 1e-12),
        "{p:?}"
    );
}

/// A smooth curve for the replacement test: q(t) = (0.3 sin t, 0.2 t), velocities analytic.
fn curve(t: f64) -> ([f64; 2], [f64; 2]) {
    ([0.3 * t.sin(), 0.2 * t], [0.3 * t.cos(), 0.2])
}

/// The message a node publishing at `t_pub` sends: the curve every `period` from one period
/// ahead for half a second (last point at rest would break the curve; the test only uses the
/// first part before the next message replaces it).
fn continuing(t_pub: f64, period: f64) -> JointTrajectory {
    let mut points = Vec::new();
    for k in 1..=25 {
        let (p, v) = curve(t_pub + k as f64 * period);
        points.push(point(k as f64 * period, p, v));
    }
    let last = points.len() - 1;
    points[last].velocities = vec![0.0, 0.0];
    msg(points)
}

/// Runs a controller at 100 Hz with a new message every 20 ms (published just before an
/// update), the arm lagging (`measured` stays at the initial state); returns the commands.
fn replacement_commands(interpolate_from_desired_state: bool) -> Vec<[f64; 2]> {
    let mut s = settings();
    s.interpolate_from_desired_state = interpolate_from_desired_state;
    let (p0, _) = curve(0.0);
    let mut c = TrajectoryController::new(s, p0.to_vec(), 0.01).unwrap();
    let mut commands = Vec::new();
    for k in 0..100 {
        let now = k as f64 * 0.01;
        if k % 2 == 0 {
            c.receive(&continuing(now - 0.001, 0.02), now - 0.001)
                .unwrap();
        }
        let cmd = c.update(now, &measured(p0)).positions.clone();
        commands.push([cmd[0], cmd[1]]);
    }
    commands
}

#[test]
fn replacement_from_the_desired_state_continues_the_curve_without_a_jump() {
    let commands = replacement_commands(true);
    for (k, pair) in commands.windows(2).enumerate() {
        let step = (pair[1][0] - pair[0][0]).hypot(pair[1][1] - pair[0][1]);
        // The curve moves at most 0.36 rad/s, 3.6 mrad per update; a replacement stretches
        // or compresses one update's step by about a third.
        assert!(step < 0.006, "update {k}: command jumped by {step} rad");
    }
    for (k, command) in commands.iter().enumerate() {
        // The command is the setpoint for the end of the update period.
        let (expected, _) = curve(k as f64 * 0.01 + 0.01);
        let error = (command[0] - expected[0]).hypot(command[1] - expected[1]);
        assert!(error < 0.01, "update {k}: {error} rad from the curve");
    }
    // From the measured state (JTC's default) the lagging arm pulls every new message back to
    // where the arm is: the command jumps.
    let pulled_back = replacement_commands(false);
    let largest = pulled_back
        .windows(2)
        .map(|pair| (pair[1][0] - pair[0][0]).hypot(pair[1][1] - pair[0][1]))
        .fold(0.0, f64::max);
    assert!(
        largest > 0.05,
        "expected jumps back, largest step {largest}"
    );
}

fn limits() -> Vec<JointLimits> {
    vec![
        JointLimits {
            lower_rad: -3.0,
            upper_rad: 3.0,
            max_velocity_rad_s: 1.5,
            max_acceleration_rad_s2: 3.0,
        };
        2
    ]
}

#[test]
fn joints_track_a_feasible_command_exactly() {
    let mut joints = SimulatedJoints::new(limits(), vec![0.0, 0.0]).unwrap();
    let dt = 0.01;
    for k in 1..200 {
        let t = k as f64 * dt;
        // 1 rad/s² ramp then constant 1 rad/s: within the limits.
        let p = if t < 1.0 { 0.5 * t * t } else { t - 0.5 };
        joints.command(&[p, -p]);
        let step = joints.step(dt);
        assert!(!step.saturated, "step {k}");
        assert!(step.tracking_error_rad < 1e-12, "step {k}: {step:?}");
        assert_eq!(joints.positions(), &[p, -p]);
    }
}

#[test]
fn joints_saturate_at_their_limits_and_do_not_overshoot_a_step() {
    let mut joints = SimulatedJoints::new(limits(), vec![0.0, 0.0]).unwrap();
    let dt = 0.01;
    joints.command(&[2.0, 0.0]);
    let mut previous_v = 0.0;
    let mut saw_saturation = false;
    let mut max_position: f64 = 0.0;
    for _ in 0..400 {
        let step = joints.step(dt);
        saw_saturation |= step.saturated;
        let v = joints.velocities()[0];
        assert!(v.abs() <= 1.5 + 1e-12, "velocity {v}");
        assert!((v - previous_v).abs() <= 3.0 * dt + 1e-12, "acceleration");
        previous_v = v;
        max_position = max_position.max(joints.positions()[0]);
        joints.command(&[2.0, 0.0]);
    }
    assert!(saw_saturation);
    assert!(
        close(joints.positions()[0], 2.0, 1e-6),
        "{:?}",
        joints.positions()
    );
    assert!(max_position <= 2.0 + 0.02, "overshoot to {max_position}");
    // The position limit holds.
    joints.command(&[5.0, 0.0]);
    for _ in 0..300 {
        joints.step(dt);
        joints.command(&[5.0, 0.0]);
    }
    assert_eq!(joints.positions()[0], 3.0);
    assert!(SimulatedJoints::new(limits(), vec![3.5, 0.0]).is_err());
}

fn arm() -> PlanarArm {
    PlanarArm::new(RobotDescription::planar_2link()).unwrap()
}

#[test]
fn collisions_count_episodes_and_the_minimum_clearance() {
    let arm = arm();
    // An obstacle on the x axis at 0.7 m: the stretched arm at q = 0 passes through it.
    let obstacles = [CircleObstacle {
        center_m: [0.7, 0.0],
        radius_m: 0.05,
    }];
    let mut monitor = CollisionMonitor::default();
    let mut previous: Option<Vec<f64>> = None;
    let mut sweep = |monitor: &mut CollisionMonitor, from: f64, to: f64| {
        for k in 0..=20 {
            let q = vec![from + (to - from) * k as f64 / 20.0, 0.0];
            monitor.update(&arm, previous.as_deref(), &q, &obstacles);
            previous = Some(q);
        }
    };
    sweep(&mut monitor, 1.0, -1.0);
    assert_eq!(monitor.episodes, 1);
    assert!(monitor.colliding_updates > 1);
    assert!(monitor.min_clearance_m.unwrap() < 0.0);
    sweep(&mut monitor, -1.0, 1.0);
    assert_eq!(monitor.episodes, 2);
    assert!(!monitor.in_collision);
    // A jump across the obstacle between two updates is still a collision (swept).
    let mut jump = CollisionMonitor::default();
    jump.update(&arm, None, &[0.5, 0.0], &obstacles);
    jump.update(&arm, Some(&[0.5, 0.0]), &[-0.5, 0.0], &obstacles);
    assert_eq!(jump.episodes, 1);
    assert!(jump.min_clearance_m.unwrap() > 0.0);
}

#[test]
fn the_simulation_reaches_a_goal_and_counts_rejections() {
    let arm = arm();
    let mut sim = Simulation::new(arm.clone(), settings(), vec![0.0, 0.5], 0.01, 0.02).unwrap();
    let target = [0.6, 0.9];
    let goal = arm.end_effector(&target);
    sim.set_goal(goal, 0.0);
    sim.set_obstacles(vec![CircleObstacle {
        center_m: [-0.6, -0.6],
        radius_m: 0.05,
    }]);
    sim.update(0.0);
    let bad = msg(vec![
        point(0.5, [0.6, 0.9], [0.0, 0.0]),
        point(0.5, [0.6, 0.9], [0.0, 0.0]),
    ]);
    assert_eq!(
        sim.receive_trajectory(&bad, 0.0).unwrap_err().rule(),
        Rule::TimeNotIncreasing
    );
    // A feasible move: 0.6 rad and 0.4 rad in 1.2 s from rest to rest (a cubic: peak
    // 0.75 rad/s, 2.5 rad/s² at the ends).
    sim.receive_trajectory(&msg(vec![point(1.2, target, [0.0, 0.0])]), 0.0)
        .unwrap();
    let mut t = 0.0;
    while t < 2.0 {
        t += 0.01;
        sim.update(t);
    }
    let report = sim.report();
    assert!(report.goal_reached, "{report:?}");
    let time = report.time_to_goal_secs.unwrap();
    assert!((1.2..1.3).contains(&time), "{time}");
    assert_eq!(report.collisions, 0);
    assert_eq!(report.trajectories_rejected, 1);
    assert_eq!(report.rejected_by_rule.get("time_not_increasing"), Some(&1));
    assert!(report.last_rejection.unwrap().contains("rule 7"));
    assert_eq!(report.saturated_updates, 0);
    assert!(report.max_tracking_error_rad < 1e-9);
    let status = sim.report().status("sim: arm");
    assert_eq!(status.level, crate::ros::problems::Level::Warn);
    assert!(status
        .values
        .iter()
        .any(|(k, v)| k == "goals_reached" && v == "1"));
}

#[test]
fn controller_joints_may_be_in_another_order_than_the_robot() {
    let arm = arm();
    let s = JtcSettings::recommended(names(&["elbow", "shoulder"]));
    let mut sim = Simulation::new(arm.clone(), s, vec![0.5, 0.1], 0.01, 0.02).unwrap();
    let sample = sim.update(0.0);
    assert_eq!(sample.names, names(&["elbow", "shoulder"]));
    assert_eq!(sim.robot_positions(), vec![0.1, 0.5]);
    let wrong = JtcSettings::recommended(names(&["elbow", "wrist"]));
    let err = Simulation::new(arm, wrong, vec![0.0, 0.0], 0.01, 0.02)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`joints`") && err.contains("shoulder"),
        "{err}"
    );
}
