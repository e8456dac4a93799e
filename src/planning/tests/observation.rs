//! Every bad observation yields its own typed error, whose message names the problem; random
//! garbage never panics.

use proptest::prelude::*;

use super::arm;
use crate::planning::{
    CommandedState, ModeRequest, Observation, ObservationError, ObservationInput, StateKind,
};
use crate::robot::{CircleObstacle, PlanarArm, RobotDescription};

fn good() -> ObservationInput {
    ObservationInput {
        joints: vec![("shoulder".into(), 0.3), ("elbow".into(), 0.5)],
        goal_m: [0.2, 0.6],
        obstacles: vec![CircleObstacle {
            center_m: [-0.5, -0.4],
            radius_m: 0.08,
        }],
        mode: ModeRequest::Any,
        ..Default::default()
    }
}

fn modes() -> Vec<String> {
    vec!["left".into(), "right".into()]
}

/// Validates `input` on the reference arm; returns the error and its message.
fn refuse(input: ObservationInput) -> (ObservationError, String) {
    let err = Observation::new(input, &arm(), &modes()).unwrap_err();
    let message = err.to_string();
    (err, message)
}

#[test]
fn a_good_observation_is_accepted_in_robot_order() {
    let mut input = good();
    input.joints.reverse();
    input.mode = ModeRequest::parse("right");
    let observation = Observation::new(input, &arm(), &modes()).unwrap();
    assert_eq!(observation.joint_positions_rad(), &[0.3, 0.5]);
    assert_eq!(observation.mode_index(), Some(1));
    assert_eq!(observation.start_positions_rad(), &[0.3, 0.5]);
    assert_eq!(observation.start_velocities_rad_s(), None);
    assert_eq!(ModeRequest::parse(" ANY "), ModeRequest::Any);
}

#[test]
fn joint_errors() {
    let mut input = good();
    input.joints[1].1 = f64::NAN;
    let (err, message) = refuse(input);
    assert!(matches!(err, ObservationError::NonFinite { .. }));
    assert!(message.contains("`elbow`"), "{message}");

    let mut input = good();
    input.joints.push(("wrist".into(), 0.0));
    let (err, message) = refuse(input);
    assert!(matches!(err, ObservationError::UnknownJoint { ref name, .. } if name == "wrist"));
    assert!(message.contains("wrist"), "{message}");

    let mut input = good();
    input.joints.pop();
    let (err, message) = refuse(input);
    assert_eq!(
        err,
        ObservationError::MissingJoint {
            name: "elbow".into()
        }
    );
    assert!(
        message.contains("elbow") && message.contains("missing"),
        "{message}"
    );

    let mut input = good();
    input.joints.push(("shoulder".into(), 0.1));
    let (err, message) = refuse(input);
    assert_eq!(
        err,
        ObservationError::DuplicateJoint {
            name: "shoulder".into()
        }
    );
    assert!(message.contains("more than once"), "{message}");

    let mut input = good();
    input.joints[1].1 = 3.0;
    let (err, message) = refuse(input);
    assert!(matches!(
        err,
        ObservationError::JointOutsideLimits { kind: StateKind::Measured, ref joint, .. } if joint == "elbow"
    ));
    assert!(message.contains("limits"), "{message}");
}

#[test]
fn commanded_state_errors() {
    let commanded = |positions: Vec<f64>, velocities: Vec<f64>| {
        let mut input = good();
        input.commanded = Some(CommandedState {
            positions_rad: positions,
            velocities_rad_s: velocities,
            stamp_secs: 1.0,
        });
        input
    };
    let (err, _) = refuse(commanded(vec![0.3], vec![0.0, 0.0]));
    assert!(matches!(
        err,
        ObservationError::CommandedShape {
            what: "positions",
            ..
        }
    ));
    let (err, message) = refuse(commanded(vec![0.3, 0.5], vec![0.0, f64::INFINITY]));
    assert!(matches!(err, ObservationError::NonFinite { .. }));
    assert!(message.contains("commanded velocity"), "{message}");
    let (err, message) = refuse(commanded(vec![0.3, 0.5], vec![2.0, 0.0]));
    assert!(matches!(
        err,
        ObservationError::CommandedVelocityOutOfLimits { .. }
    ));
    assert!(message.contains("shoulder"), "{message}");
    let (err, _) = refuse(commanded(vec![0.3, -2.9], vec![0.0, 0.0]));
    assert!(matches!(
        err,
        ObservationError::JointOutsideLimits {
            kind: StateKind::Commanded,
            ..
        }
    ));
    // A commanded configuration inside the obstacle.
    let mut input = commanded(vec![-2.4, 0.0], vec![0.0, 0.0]);
    input.obstacles[0].center_m = [-0.6, -0.55];
    let (err, message) = refuse(input);
    assert!(matches!(
        err,
        ObservationError::StartInCollision {
            kind: StateKind::Commanded,
            ..
        }
    ));
    assert!(message.contains("commanded start"), "{message}");
}

#[test]
fn goal_obstacle_stamp_and_mode_errors() {
    let mut input = good();
    input.goal_m[0] = f64::NAN;
    let (err, message) = refuse(input);
    assert!(matches!(err, ObservationError::NonFinite { .. }));
    assert!(message.contains("goal_m[0]"), "{message}");

    let mut input = good();
    input.goal_m = [1.0, 0.5];
    let (err, message) = refuse(input);
    assert!(
        matches!(err, ObservationError::GoalOutOfReach { max_reach_m, .. } if (max_reach_m - 0.9).abs() < 1e-12)
    );
    assert!(
        message.contains("outside the reachable workspace"),
        "{message}"
    );
    let mut input = good();
    input.goal_m = [0.05, 0.0];
    assert!(matches!(
        refuse(input).0,
        ObservationError::GoalOutOfReach { .. }
    ));

    let mut limited = RobotDescription::planar_2link();
    limited.joints[0].lower_rad = -0.5;
    limited.joints[0].upper_rad = 0.5;
    let limited = PlanarArm::new(limited).unwrap();
    let mut input = good();
    input.joints[0].1 = 0.0;
    input.goal_m = [-0.5, 0.3];
    let err = Observation::new(input, &limited, &[]).unwrap_err();
    assert!(
        matches!(err, ObservationError::GoalOutsideJointLimits { .. }),
        "{err}"
    );

    let mut input = good();
    input.obstacles[0] = CircleObstacle {
        center_m: [0.2, 0.65],
        radius_m: 0.05,
    };
    let (err, message) = refuse(input);
    assert!(matches!(
        err,
        ObservationError::GoalInsideObstacle { obstacle: 0, .. }
    ));
    assert!(message.contains("inside obstacles[0]"), "{message}");

    let mut input = good();
    input.obstacles.push(CircleObstacle {
        center_m: [0.0, 0.0],
        radius_m: -1.0,
    });
    let (err, message) = refuse(input);
    assert!(matches!(
        err,
        ObservationError::InvalidObstacle { index: 1, .. }
    ));
    assert!(
        message.contains("obstacles[1]") && message.contains("radius_m"),
        "{message}"
    );

    let mut input = good();
    input.obstacles[0] = CircleObstacle {
        center_m: [0.3, 0.1],
        radius_m: 0.05,
    };
    let (err, message) = refuse(input);
    assert!(matches!(
        err,
        ObservationError::StartInCollision {
            kind: StateKind::Measured,
            obstacle: 0,
            ..
        }
    ));
    assert!(message.contains("measured start"), "{message}");

    let mut input = good();
    input.stamps.goal_secs = f64::NAN;
    let (err, message) = refuse(input);
    assert!(matches!(err, ObservationError::NonFinite { .. }));
    assert!(message.contains("stamps.goal_secs"), "{message}");

    let mut input = good();
    input.mode = ModeRequest::Named("middle".into());
    let (err, message) = refuse(input);
    assert!(matches!(err, ObservationError::UnknownMode { ref name, .. } if name == "middle"));
    assert!(
        message.contains("middle") && message.contains("left"),
        "{message}"
    );
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        -4.0f64..4.0,
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn garbage_never_panics(
        joints in proptest::collection::vec(
            (prop_oneof![Just("shoulder"), Just("elbow"), Just("wrist"), Just("")], value()), 0..4),
        goal in (value(), value()),
        obstacles in proptest::collection::vec((value(), value(), value()), 0..3),
        mode in prop_oneof![Just("any"), Just("left"), Just("nope")],
        commanded in proptest::option::of((proptest::collection::vec(value(), 0..3),
                                           proptest::collection::vec(value(), 0..3))),
    ) {
        let input = ObservationInput {
            joints: joints.into_iter().map(|(n, v)| (n.to_string(), v)).collect(),
            goal_m: [goal.0, goal.1],
            obstacles: obstacles
                .into_iter()
                .map(|(x, y, r)| CircleObstacle { center_m: [x, y], radius_m: r })
                .collect(),
            mode: ModeRequest::parse(mode),
            commanded: commanded.map(|(p, v)| CommandedState {
                positions_rad: p,
                velocities_rad_s: v,
                stamp_secs: 0.0,
            }),
            ..Default::default()
        };
        if let Err(err) = Observation::new(input, &arm(), &modes()) {
            prop_assert!(!err.to_string().is_empty());
        }
    }
}
