//! Tests of the node's safety rules (docs/NODE.md, "Safety rules") with the harness of
//! `core_tests.rs`: a simulated robot, the geometric source and a simulated planning latency.

use super::tests::{check_rules, Harness};
use super::*;
use crate::ros::executor::tests::controller_state;
use crate::ros::inputs::{marker, ObstacleRules};

fn sphere(id: i32, x: f64, y: f64, diameter: f64) -> MarkerIn {
    MarkerIn {
        ns: "o".into(),
        id,
        kind: marker::SPHERE,
        action: marker::ADD,
        frame_id: "base_link".into(),
        position_m: [x, y, 0.0],
        scale_m: [diameter, diameter, diameter],
        lifetime_secs: 0.0,
    }
}

fn with_rules(h: &mut Harness, rules: ObstacleRules) {
    h.core.inputs = h.core.inputs.clone().with_obstacle_rules(rules);
}

/// A perception stream faster than planning (every tick, an obstacle far from the motion
/// moving by more than the tolerance each time, plus the same goal re-sent) does not starve
/// planning: the plan in motion stays valid, so it is kept and the robot arrives.
#[test]
fn events_never_discard_a_plan_that_is_still_valid() {
    let mut h = Harness::new(vec![0.0, 0.5], 0.15);
    with_rules(
        &mut h,
        ObstacleRules {
            timeout_secs: 0.0,
            change_tolerance_m: 0.001,
        },
    );
    h.run(0.1);
    h.goal(0.2, 0.6);
    for k in 0..350 {
        // Far behind the arm, jittering 5 mm back and forth (beyond the tolerance).
        let x = -0.8 + 0.005 * (k % 2) as f64;
        h.core.on_obstacles(&[sphere(0, x, -0.6, 0.1)], h.now);
        h.goal(0.2, 0.6);
        h.run(0.02);
    }
    assert!(
        h.core.goal_reached,
        "error {} m, {:?}, {:?} {:?}",
        h.end_effector_error([0.2, 0.6]),
        h.core.executor().motion(h.now),
        h.core.problems,
        h.core.stats
    );
    assert!(h.end_effector_error([0.2, 0.6]) < 0.02);
    for (_, points) in &h.commands {
        check_rules(points);
    }
    // An obstacle change within the tolerance is no event at all.
    let outcomes = h.core.stats.outcomes;
    h.core.on_obstacles(&[sphere(0, -0.7955, -0.6, 0.1)], h.now);
    h.run(0.5);
    assert_eq!(h.core.stats.outcomes, outcomes);
}

/// An unsupported marker holds the robot (no plan around a subset) and names the marker; a
/// marker's lifetime removes it; a stale set is an input error.
#[test]
fn unsupported_markers_lifetimes_and_stale_sets() {
    let mut h = Harness::new(vec![0.0, 0.5], 0.05);
    with_rules(
        &mut h,
        ObstacleRules {
            timeout_secs: 1.0,
            change_tolerance_m: 0.001,
        },
    );
    h.core.on_obstacles(&[], h.now);
    h.run(0.1);
    let mut cube = sphere(3, 0.6, 0.0, 0.1);
    cube.kind = marker::CUBE;
    h.core.on_obstacles(&[cube], h.now);
    h.goal(0.2, 0.6);
    h.run(0.5);
    assert_eq!(h.core.stats.outcomes, 0, "no planning with an invalid set");
    assert_eq!(h.core.executor().motion(h.now), Motion::Holding);
    let text = h.problem(keys::OBSTACLES).expect("reported");
    assert!(text.contains("`o`/3 is a CUBE"), "{text}");

    // A sphere on the way with a lifetime of 0.3 s: once it expired the node plans through.
    let mut blocker = sphere(1, 0.35, 0.55, 0.3);
    blocker.lifetime_secs = 0.3;
    h.core.on_obstacles(&[blocker], h.now);
    assert!(h.problem(keys::OBSTACLES).is_none());
    assert_eq!(h.core.inputs().obstacles().len(), 1);
    h.run(0.4);
    assert!(h.core.inputs().obstacles().is_empty(), "expired");
    // The stream stops: after obstacle_timeout_secs the set is stale and the robot stops.
    h.run(0.8);
    assert!(h.problem(keys::OBSTACLES_STALE).is_some());
    assert_ne!(h.core.executor().motion(h.now), Motion::Following);
    let outcomes = h.core.stats.outcomes;
    h.run(0.5);
    assert_eq!(h.core.stats.outcomes, outcomes, "no planning while stale");
    for _ in 0..30 {
        h.core.on_obstacles(&[], h.now);
        h.run(0.1);
    }
    assert!(h.problem(keys::OBSTACLES_STALE).is_none());
    assert!(h.core.stats.outcomes > outcomes, "resumes");
}

/// An obstacle appears just ahead of the moving arm: the stop brakes within the limits and,
/// since that path still reaches the obstacle, the node says so.
#[test]
fn a_braking_path_that_would_collide_is_reported() {
    let mut h = Harness::new(vec![0.0, 0.5], 0.05);
    h.run(0.1);
    h.goal(-0.3, 0.6);
    h.run(0.6);
    assert_eq!(h.core.executor().motion(h.now), Motion::Following);
    let (q_soon, _) = h.core.executor().state_at(h.now + 0.06).unwrap();
    let ahead = h.core.arm.end_effector(&q_soon);
    h.core
        .on_obstacles(&[sphere(0, ahead[0], ahead[1], 0.03)], h.now);
    assert_eq!(h.core.executor().motion(h.now), Motion::Stopping);
    let text = h.problem(plan_keys::BRAKING_COLLISION).expect("reported");
    assert!(text.contains("braking path"), "{text}");
    // A far obstacle: a stop (bad goal) that reports nothing.
    let mut far = Harness::new(vec![0.0, 0.5], 0.05);
    far.run(0.1);
    far.goal(-0.3, 0.6);
    far.run(0.6);
    far.core.on_goal(
        &GoalIn {
            frame_id: "map".into(),
            position_m: [0.0, 0.0, 0.0],
        },
        far.now,
    );
    assert_eq!(far.core.executor().motion(far.now), Motion::Stopping);
    assert!(far.problem(plan_keys::BRAKING_COLLISION).is_none());
}

/// Goals (x, y in metres) and how long to follow each (seconds): motions at the limits, goal
/// changes in flight and in the middle of a replan.
const HARD_GOALS: [(f64, f64, f64); 5] = [
    (0.2, 0.6, 1.2),
    (-0.3, 0.6, 0.9),
    (0.5, 0.3, 0.7),
    (0.1, 0.7, 3.0),
    (-0.4, 0.4, 2.0),
];

/// The core (0.15 s planning latency) sent through `goals` one after the other.
fn driven_through(goals: &[(f64, f64, f64)]) -> Harness {
    let mut h = Harness::new(vec![0.0, 0.5], 0.15);
    h.run(0.1);
    for &(x, y, secs) in goals {
        h.goal(x, y);
        h.run(secs);
    }
    h
}

/// Every published message, as the controller splines it (cubic Hermite through positions and
/// velocities between consecutive points), stays within the velocity and acceleration limits:
/// motions, replans stitched in flight, goal changes and stops.
#[test]
fn what_the_controller_executes_stays_within_the_limits() {
    let mut h = driven_through(&HARD_GOALS[..4]);
    h.goal(-0.4, 0.4);
    h.run(0.5);
    h.core.on_goal(
        &GoalIn {
            frame_id: "map".into(),
            position_m: [0.0, 0.0, 0.0],
        },
        h.now,
    );
    h.run(1.5);
    let (vmax, amax) = (
        h.core.arm.max_velocities_rad_s(),
        h.core.arm.max_accelerations_rad_s2(),
    );
    let mut worst: f64 = 0.0;
    for (at, points) in &h.commands {
        for pair in points.windows(2) {
            let h = pair[1].time_from_start_secs - pair[0].time_from_start_secs;
            for j in 0..2 {
                let (v, a) = crate::planning::segment_extrema(
                    pair[0].positions[j],
                    pair[0].velocities[j],
                    pair[1].positions[j],
                    pair[1].velocities[j],
                    h,
                );
                assert!(v <= vmax[j] * (1.0 + 1e-6), "at {at}: joint {j} {v} rad/s");
                worst = worst.max(a / amax[j]);
            }
        }
    }
    assert!(worst <= 1.0 + 1e-6, "{worst:.3} x the acceleration limit");
    assert!(worst > 0.5, "the test moves the arm hard: {worst}");
}

/// How far above the acceleration limit the controller's first segment of a message may go
/// (see the test below).
const FIRST_SEGMENT_BOUND: f64 = 2.0;

/// What the controller executes between receiving a message and its first point, one period
/// ahead: the cubic from its commanded state then (on the previous message's spline) to that
/// point. A change takes effect at a tick, where the controller is when the next message comes,
/// so this segment lies on the curve the controller already has, except where that curve has a
/// kink inside the period (the end of a motion, or a knot of the plan), which the one cubic
/// smooths over: a switch from +A to -A inside the period gives 1.5 x. This bounds the
/// overshoot at [`FIRST_SEGMENT_BOUND`] (braking from the stop request's time gave 17 x) and
/// prints the count (2026-12-04: 10 of 270 moving messages above the limit, worst 1.56 x).
/// Publishing the trajectory's own points inside the first period removed them (0 of 270), but
/// made the first segment as short as 2 ms, and the abuse test then failed: a late unstamped
/// message left the controller 12 mrad to catch up in it. Not kept; plans whose knots lie on
/// the control-period grid are the planned fix.
#[test]
fn the_controllers_first_segment_of_each_message_stays_within_twice_the_limits() {
    let h = driven_through(&HARD_GOALS);
    let amax = h.core.arm.max_accelerations_rad_s2();
    let mut state = (h.commands[0].1[0].positions.clone(), vec![0.0; 2]);
    let (mut worst, mut above, mut moving) = (0.0_f64, 0, 0);
    let mut worst_at = 0.0;
    for pair in h.commands.windows(2) {
        let ((at0, sent), (at1, next)) = (&pair[0], &pair[1]);
        state = controller_state(&state, sent, at1 - at0);
        let first = &next[0];
        let mut ratio: f64 = 0.0;
        for (j, limit) in amax.iter().enumerate() {
            let (_, a) = crate::planning::segment_extrema(
                state.0[j],
                state.1[j],
                first.positions[j],
                first.velocities[j],
                first.time_from_start_secs,
            );
            ratio = ratio.max(a / limit);
        }
        moving += usize::from(next.len() > 1);
        above += usize::from(ratio > 1.0 + 1e-6);
        if ratio > worst {
            (worst, worst_at) = (ratio, *at1);
        }
    }
    eprintln!(
        "first segments: {above} of {moving} moving messages above the acceleration limit, \
         worst {worst:.3} x at {worst_at:.3} s"
    );
    assert!(moving > 100, "{moving}");
    assert!(worst > 0.5, "the test moves the arm hard: {worst}");
    assert!(
        worst <= FIRST_SEGMENT_BOUND,
        "{above} of {moving} first segments above the acceleration limit, worst {worst:.3} x at \
         {worst_at:.3} s"
    );
}

/// At rest at the goal the node adopts no plan (a receding-horizon result asked for before the
/// goal was reached arrives later) unless the goal, the obstacles or the request change.
#[test]
fn at_rest_at_the_goal_no_new_plan_is_adopted() {
    for latency in [0.1, 0.2, 0.3, 0.4, 0.45] {
        let mut h = Harness::new(vec![0.0, 0.5], latency);
        h.run(0.1);
        h.goal(0.2, 0.6);
        while !h.core.goal_reached && h.now < 8.0 {
            h.run(0.02);
        }
        assert!(h.core.goal_reached, "latency {latency}");
        let rest = h.q.clone();
        let published = h.commands.len();
        h.run(2.0);
        for (at, points) in &h.commands[published..] {
            for p in points {
                let moved = p
                    .positions
                    .iter()
                    .zip(&rest)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max);
                assert!(moved < 1e-9, "latency {latency}: moved {moved} rad at {at}");
            }
        }
    }
}

#[test]
fn a_clock_jumping_back_brakes_reports_and_plans_again() {
    // The node's own time goes on across the jump (clock.rs); the core brakes, says why, and
    // plans again, then reaches the goal without a jump of the command (`run` checks).
    let mut h = Harness::new(vec![0.0, 0.5], 0.05);
    h.run(0.1);
    h.goal(-0.3, 0.6);
    h.run(0.6);
    assert_eq!(h.core.executor().motion(h.now), Motion::Following);
    h.core.clock_jumped_back(20.0, h.now);
    assert_eq!(h.core.executor().motion(h.now), Motion::Stopping);
    let text = h.problem(plan_keys::CLOCK_JUMP).expect("reported");
    assert!(text.contains("jumped back by 20.000 s"), "{text}");
    h.run(5.0);
    assert!(h.core.goal_reached, "the goal is reached after the jump");
    let at = h.core.arm.end_effector(&h.q);
    assert!((at[0] + 0.3).hypot(at[1] - 0.6) < 0.01, "{at:?}");
}
