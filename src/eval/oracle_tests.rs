//! The oracle against hand-computed geometry, and where it must disagree with the planner's
//! filter (`robot::collision`, used here only to show the disagreement).

use super::*;
use crate::planning::PlanPoint;
use crate::robot::PlanarArm;

fn robot() -> RobotDescription {
    RobotDescription::planar_2link()
}

fn polar(radius: f64, angle: f64) -> [f64; 2] {
    [radius * angle.cos(), radius * angle.sin()]
}

#[test]
fn clearance_of_hand_placed_obstacles() {
    let oracle = Oracle::new(&robot());
    // Straight arm along +x reaches 0.9 m; capsule radius 0.03.
    let ahead = CircleObstacle {
        center_m: [1.0, 0.0],
        radius_m: 0.05,
    };
    let c = oracle.clearance(&[0.0, 0.0], &[ahead]);
    assert!((c - 0.02).abs() < 1e-12, "{c}");
    // Beside the upper arm at 0.3 m, 0.2 m off the line.
    let beside = CircleObstacle {
        center_m: [0.3, 0.2],
        radius_m: 0.1,
    };
    let c = oracle.clearance(&[0.0, 0.0], &[beside]);
    assert!((c - 0.07).abs() < 1e-12, "{c}");
    assert_eq!(oracle.clearance(&[0.0, 0.0], &[]), f64::INFINITY);
    assert!(oracle.clearance(&[f64::NAN, 0.0], &[ahead]).is_nan());
    let p = oracle.end_effector(&[std::f64::consts::FRAC_PI_2, -std::f64::consts::FRAC_PI_2]);
    assert!(
        (p[0] - 0.4).abs() < 1e-12 && (p[1] - 0.5).abs() < 1e-12,
        "{p:?}"
    );
}

#[test]
fn thin_obstacle_between_two_waypoints_and_the_waypoint_only_view() {
    let oracle = Oracle::new(&robot());
    let arm = PlanarArm::new(robot()).unwrap();
    // A 1 mm obstacle on the arc the end effector sweeps at 0.5 rad, between waypoints 0 and 1.
    let thin = CircleObstacle {
        center_m: polar(0.9, 0.5),
        radius_m: 0.001,
    };
    let path = JointPath::from_waypoints(&[vec![0.0, 0.0], vec![1.0, 0.0]]).unwrap();
    let verdict = oracle.path(&path, &[0.0, 0.0], polar(0.9, 1.0), &[thin]);
    assert!(verdict.collides && !verdict.valid(), "{verdict:?}");
    // Both waypoints are clear: a check at the waypoints (the planner's min_clearance score)
    // sees nothing.
    assert!(oracle.clearance(&[0.0, 0.0], &[thin]) > 0.3);
    assert!(oracle.clearance(&[1.0, 0.0], &[thin]) > 0.3);
    assert!(arm.clearance(&[0.0, 0.0], &[thin]).unwrap().clearance_m > 0.3);
    assert!(arm.clearance(&[1.0, 0.0], &[thin]).unwrap().clearance_m > 0.3);
}

#[test]
fn grazing_contact_exact_where_the_filter_is_conservative() {
    let oracle = Oracle::new(&robot());
    let arm = PlanarArm::new(robot()).unwrap();
    let path = JointPath::from_waypoints(&[vec![0.0, 0.0], vec![1.0, 0.0]]).unwrap();
    // Centre 0.95 m out at 0.5 rad: the arm's tip passes 5 cm from it at 0.5 rad (mid-segment),
    // so the clearance there is 0.05 - radius - 0.03.
    let at = |radius_m| CircleObstacle {
        center_m: polar(0.95, 0.5),
        radius_m,
    };
    // 0.5 µm of clearance: free for the oracle, a collision for the filter (1 µm tolerance).
    let near = at(0.02 - 5e-7);
    let verdict = oracle.path(&path, &[0.0, 0.0], polar(0.9, 1.0), &[near]);
    assert!(!verdict.collides, "{verdict:?}");
    assert!(
        (verdict.min_clearance_m - 5e-7).abs() < 2e-9,
        "{}",
        verdict.min_clearance_m
    );
    assert!(arm.path_collision(&path, &[near]).is_some());
    // Touching (clearance 0 at one instant): a collision for both.
    let touching = at(0.02);
    assert!(
        oracle
            .path(&path, &[0.0, 0.0], polar(0.9, 1.0), &[touching])
            .collides
    );
    assert!(arm.path_collision(&path, &[touching]).is_some());
    // 1 mm of clearance: free for both, and the minimum found within the oracle's tolerance.
    let clear = at(0.019);
    let v = oracle.path(&path, &[0.0, 0.0], polar(0.9, 1.0), &[clear]);
    assert!(
        !v.collides
            && v.min_clearance_m >= 0.001 - 1e-9
            && v.min_clearance_m - 0.001 <= CLEARANCE_TOLERANCE_M,
        "{v:?}"
    );
    assert!(arm.path_collision(&path, &[clear]).is_none());
}

/// One cubic segment `q0(τ) = w τ (1 − τ/h)²` (out and back to 0), elbow fixed at 0.
fn bowing_plan(w: f64, h: f64) -> Plan {
    Plan {
        joint_names: vec!["shoulder".into(), "elbow".into()],
        start_stamp_secs: 0.0,
        points: vec![
            PlanPoint {
                time_from_start_secs: 0.0,
                positions: vec![0.0, 0.0],
                velocities: vec![w, 0.0],
            },
            PlanPoint {
                time_from_start_secs: h,
                positions: vec![0.0, 0.0],
                velocities: vec![0.0, 0.0],
            },
        ],
    }
}

#[test]
fn timed_curve_between_the_planners_5ms_samples() {
    let oracle = Oracle::new(&robot());
    let arm = PlanarArm::new(robot()).unwrap();
    // Peak 4wh/27 at τ = h/3 = 12.5 ms, midway between the 5 ms samples at 10 and 15 ms.
    let (w, h) = (1.5, 0.0375);
    let plan = bowing_plan(w, h);
    let peak = 4.0 * w * h / 27.0;
    // A small obstacle ahead of the straight arm that the arm touches only at the peak: centre
    // 0.6 m out, its clearance at angle θ is 0.6 sin(angle − θ) − 0.01 − 0.03.
    let angle = peak + ((0.04 - 1e-7) / 0.6f64).asin();
    let obstacle = CircleObstacle {
        center_m: polar(0.6, angle),
        radius_m: 0.01,
    };
    let verdict = oracle.plan(&plan, [0.9, 0.0], &[obstacle]);
    assert!(verdict.collides, "{verdict:?}");
    // The planner's re-check: 5 ms samples, swept straight chords between them: all clear.
    let samples = plan.resample(0.005).unwrap();
    let chords_hit = samples.points.windows(2).any(|p| {
        arm.swept_collision(&p[0].positions, &p[1].positions, &[obstacle])
            .is_some()
    });
    assert!(!chords_hit);
    // Derivatives: jerk 6w/h², largest acceleration 4w/h at τ = 0, velocity w at τ = 0.
    assert!((verdict.max_jerk_rad_s3 - 6.0 * w / (h * h)).abs() < 1e-6 * verdict.max_jerk_rad_s3);
    assert!((verdict.max_acceleration_ratio - 4.0 * w / h / 3.0).abs() < 1e-9);
    assert!((verdict.max_velocity_ratio - 1.0).abs() < 1e-12);
    assert!(!verdict.within_limits() && !verdict.success());
    // Out and back: length 2 × peak, duration h, at the start's end effector.
    assert!(
        (verdict.path_length_rad - 2.0 * peak).abs() < 1e-6,
        "{verdict:?}"
    );
    assert_eq!(verdict.duration_secs, h);
    assert!(verdict.goal_error_m < 1e-12);
}

#[test]
fn slow_plan_within_limits_and_goal_tolerance() {
    let oracle = Oracle::new(&robot());
    // w = 1, h = 2 s: peak acceleration 2 rad/s² (limit 3), velocity 1 rad/s (limit 1.5).
    let plan = bowing_plan(1.0, 2.0);
    let verdict = oracle.plan(&plan, [0.9, 0.0], &[]);
    assert!(verdict.within_limits() && verdict.success(), "{verdict:?}");
    assert!((verdict.max_acceleration_ratio - 2.0 / 3.0).abs() < 1e-9);
    // 1.5 cm off: the node's 2 cm tolerance passes, the oracle's 1 cm does not.
    let off = oracle.plan(&plan, [0.9, 0.015], &[]);
    assert!(!off.success() && (off.goal_error_m - 0.015).abs() < 1e-12);
    // A plan out of the elbow's limits.
    let mut beyond = bowing_plan(1.0, 2.0);
    for p in &mut beyond.points {
        p.positions[1] = 2.9;
    }
    assert!(oracle.plan(&beyond, [0.0, 0.0], &[]).out_of_position_limits);
}

#[test]
fn raw_path_start_and_goal() {
    let oracle = Oracle::new(&robot());
    let path = JointPath::from_waypoints(&[vec![0.03, 0.0], vec![1.0, 0.0]]).unwrap();
    let goal = oracle.end_effector(&[1.0, 0.0]);
    let v = oracle.path(&path, &[0.0, 0.0], goal, &[]);
    // 0.03 rad from the start: not executable as sampled.
    assert!(
        (v.start_error_rad - 0.03).abs() < 1e-12 && !v.valid(),
        "{v:?}"
    );
    let v = oracle.path(&path, &[0.02, 0.0], goal, &[]);
    assert!(v.valid(), "{v:?}");
    let nan = JointPath::from_waypoints(&[vec![0.0, 0.0], vec![f64::NAN, 0.0]]).unwrap();
    let v = oracle.path(&nan, &[0.0, 0.0], goal, &[]);
    assert!(v.non_finite && !v.valid());
}
