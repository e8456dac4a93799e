//! The planner's last check of a timed plan is fail-closed: anything it cannot verify, and any
//! limit or clearance it breaks, rejects the plan.

use super::{arm, blocked_source};
use crate::planning::{Plan, PlanPoint, Planner, PlannerConfig, RejectReason};
use crate::robot::CircleObstacle;

fn planner(min_clearance_m: f64) -> Planner {
    let config = PlannerConfig {
        min_clearance_m,
        ..PlannerConfig::default()
    };
    Planner::new(
        arm(),
        Box::new(blocked_source(16, (1, 1, 1), (0.0, 0.0, 0.0))),
        config,
    )
    .unwrap()
}

fn plan(points: &[(f64, [f64; 2], [f64; 2])]) -> Plan {
    Plan {
        joint_names: arm().joint_names(),
        start_stamp_secs: 0.0,
        points: points
            .iter()
            .map(|&(t, p, v)| PlanPoint {
                time_from_start_secs: t,
                positions: p.to_vec(),
                velocities: v.to_vec(),
            })
            .collect(),
    }
}

fn failed(reason: Option<RejectReason>) -> String {
    match reason {
        Some(RejectReason::VerificationFailed { error }) => error,
        other => panic!("expected a verification failure, found {other:?}"),
    }
}

#[test]
fn what_cannot_be_verified_is_rejected() {
    let p = planner(0.0);
    let ok = plan(&[(0.0, [0.0, 0.5], [0.0, 0.0]), (2.0, [0.2, 0.5], [0.0, 0.0])]);
    assert_eq!(p.verify(&ok, &[]), None);
    let empty = plan(&[]);
    assert!(failed(p.verify(&empty, &[])).contains("no points"));
    let moving_at_end = plan(&[(0.0, [0.0, 0.5], [0.0, 0.0]), (2.0, [0.2, 0.5], [0.1, 0.0])]);
    assert!(failed(p.verify(&moving_at_end, &[])).contains("velocity"));
    let mut foreign = ok.clone();
    foreign.joint_names = vec!["a".into(), "b".into()];
    assert!(failed(p.verify(&foreign, &[])).contains("joints"));
    // Each end within the limits, but the cubic between them far too fast.
    let vmax = arm().max_velocities_rad_s()[0];
    let fast = plan(&[
        (0.0, [0.0, 0.5], [0.0, 0.0]),
        (0.1, [vmax, 0.5], [0.0, 0.0]),
    ]);
    let text = failed(p.verify(&fast, &[]));
    assert!(
        text.contains("joint 0") && text.contains("limits"),
        "{text}"
    );
}

#[test]
fn a_timed_plan_closer_than_the_minimum_clearance_is_rejected() {
    let a = arm();
    // Stretched out at 0.5 rad; an obstacle on that ray 2 mm beyond the tip's capsule.
    let tip = a.end_effector(&[0.5, 0.0]);
    let norm = tip[0].hypot(tip[1]);
    let d = norm + a.link_radius_m() + 0.002 + 0.05;
    let near = [CircleObstacle {
        center_m: [tip[0] / norm * d, tip[1] / norm * d],
        radius_m: 0.05,
    }];
    let sweep = plan(&[(0.0, [0.0, 0.0], [0.0, 0.0]), (3.0, [1.0, 0.0], [0.0, 0.0])]);
    assert_eq!(planner(0.0).verify(&sweep, &near), None, "2 mm is free");
    assert!(matches!(
        planner(0.005).verify(&sweep, &near),
        Some(RejectReason::Clearance {
            time_secs: Some(t),
            obstacle: 0,
            ..
        }) if t > 0.0 && t < 3.0
    ));
    assert_eq!(planner(0.001).verify(&sweep, &near), None);
}
