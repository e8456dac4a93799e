//! JointTrajectoryController's (Jazzy) checks of an incoming trajectory, rules 1-9 of
//! `validate_trajectory_msg` (see `shared/reference/ros-conventions.md` §1), in the
//! controller's order, plus two checks the controller does not make (marked "sim"): a joint
//! named twice and non-finite values, which the real controller would pass on to the hardware.
//! The controller only logs a bad topic message and drops it; here each rejection is a typed
//! [`Rejection`] that names its rule.
//!
//! Implemented for the controller's defaults `allow_integration_in_goal_trajectories: false`
//! (positions mandatory) and a position command interface; `allow_partial_joints_goal` and
//! `allow_nonzero_velocity_at_trajectory_end` are settings.

use std::collections::BTreeSet;

use super::trajectory::{JointTrajectory, TrajectoryPoint};
use crate::{Error, Result};

/// `std::numeric_limits<float>::epsilon()`: the largest |velocity| rule 5 accepts as zero.
pub const F32_EPSILON: f64 = f32::EPSILON as f64;

/// The controller parameters that validation and execution depend on (JTC's names).
#[derive(Debug, Clone, PartialEq)]
pub struct JtcSettings {
    /// The controller's joints (`joints`), in its order.
    pub joints: Vec<String>,
    /// Default false: every message must name all joints.
    pub allow_partial_joints_goal: bool,
    /// Default false: the last point's velocities must be zero (or absent).
    pub allow_nonzero_velocity_at_trajectory_end: bool,
    /// true: a new trajectory starts from the last commanded state; false: from the measured
    /// one. JTC's default is false; the node needs true (docs/NODE.md).
    pub interpolate_from_desired_state: bool,
    /// Whether the controller has an `effort` command interface (rule 9).
    pub effort_command_interface: bool,
}

impl JtcSettings {
    /// The settings docs/NODE.md asks for: JTC's defaults with
    /// `interpolate_from_desired_state: true`, position command interface.
    pub fn recommended(joints: Vec<String>) -> Self {
        JtcSettings {
            joints,
            allow_partial_joints_goal: false,
            allow_nonzero_velocity_at_trajectory_end: false,
            interpolate_from_desired_state: true,
            effort_command_interface: false,
        }
    }

    /// Checks the joint list (non-empty, no empty or repeated names).
    pub fn validate(&self) -> Result<()> {
        if self.joints.is_empty() {
            return Err(Error::config("joints", "is empty"));
        }
        let mut seen = BTreeSet::new();
        for name in &self.joints {
            if name.trim().is_empty() {
                return Err(Error::config("joints", "contains an empty name"));
            }
            if !seen.insert(name.as_str()) {
                return Err(Error::config("joints", format!("names `{name}` twice")));
            }
        }
        Ok(())
    }
}

/// The check a rejected trajectory failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    /// 1: `allow_partial_joints_goal: false` and not every controller joint named.
    JointCount,
    /// 2: no joint names.
    EmptyJointNames,
    /// 3: no points.
    EmptyPoints,
    /// 4: a name that is not a controller joint.
    UnknownJoint,
    /// 5: non-zero velocity at the last point.
    NonzeroEndVelocity,
    /// 6: a non-zero stamp and the trajectory ends before now.
    EndsInPast,
    /// 7: `time_from_start` not strictly increasing.
    TimeNotIncreasing,
    /// 8: a field of the wrong size (positions mandatory).
    FieldSize,
    /// 9: efforts without an effort command interface.
    Effort,
    /// sim: a joint named twice (JTC does not check; its behaviour is undefined).
    DuplicateJoint,
    /// sim: a NaN or infinite value or time (JTC would command it).
    NonFinite,
}

impl Rule {
    /// JTC's rule number (ros-conventions §1), `None` for the simulator's own checks.
    pub fn number(self) -> Option<u8> {
        Some(match self {
            Rule::JointCount => 1,
            Rule::EmptyJointNames => 2,
            Rule::EmptyPoints => 3,
            Rule::UnknownJoint => 4,
            Rule::NonzeroEndVelocity => 5,
            Rule::EndsInPast => 6,
            Rule::TimeNotIncreasing => 7,
            Rule::FieldSize => 8,
            Rule::Effort => 9,
            Rule::DuplicateJoint | Rule::NonFinite => return None,
        })
    }

    /// `snake_case` name, e.g. for diagnostics.
    pub fn name(self) -> &'static str {
        match self {
            Rule::JointCount => "joint_count",
            Rule::EmptyJointNames => "empty_joint_names",
            Rule::EmptyPoints => "empty_points",
            Rule::UnknownJoint => "unknown_joint",
            Rule::NonzeroEndVelocity => "nonzero_end_velocity",
            Rule::EndsInPast => "ends_in_past",
            Rule::TimeNotIncreasing => "time_not_increasing",
            Rule::FieldSize => "field_size",
            Rule::Effort => "effort",
            Rule::DuplicateJoint => "duplicate_joint",
            Rule::NonFinite => "non_finite",
        }
    }
}

/// Why a trajectory was rejected; the message starts with the rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    #[error(
        "JTC rule 1 (allow_partial_joints_goal: false): {found} joint names, the controller \
         has {expected} joints"
    )]
    JointCount { expected: usize, found: usize },
    #[error("JTC rule 2: empty joint_names")]
    EmptyJointNames,
    #[error("JTC rule 3: empty trajectory (no points)")]
    EmptyPoints,
    #[error("JTC rule 4: `{name}` is not a controller joint (joints: {joints:?})")]
    UnknownJoint { name: String, joints: Vec<String> },
    #[error(
        "JTC rule 5 (allow_nonzero_velocity_at_trajectory_end: false): the last point's \
         velocity of `{joint}` is {velocity_rad_s}, not 0"
    )]
    NonzeroEndVelocity { joint: String, velocity_rad_s: f64 },
    #[error(
        "JTC rule 6: stamp {stamp_secs} s + last time_from_start {last_secs} s ends before now \
         ({now_secs} s)"
    )]
    EndsInPast {
        stamp_secs: f64,
        last_secs: f64,
        now_secs: f64,
    },
    #[error(
        "JTC rule 7: point {index} time_from_start {secs} s is not after the previous point's \
         ({previous_secs} s)"
    )]
    TimeNotIncreasing {
        index: usize,
        secs: f64,
        previous_secs: f64,
    },
    #[error(
        "JTC rule 8: point {index} has {found} {field} for {expected} joint names (positions: \
         one per joint; velocities, accelerations: none or one per joint)"
    )]
    FieldSize {
        index: usize,
        field: &'static str,
        expected: usize,
        found: usize,
    },
    #[error("JTC rule 9: point {index} has efforts, but the controller commands no effort")]
    Effort { index: usize },
    #[error("sim check (JTC does not check): joint `{name}` is named twice")]
    DuplicateJoint { name: String },
    #[error("sim check (JTC does not check): point {index} has a non-finite {field}")]
    NonFinite { index: usize, field: &'static str },
}

impl Rejection {
    /// The rule this rejection is about.
    pub fn rule(&self) -> Rule {
        match self {
            Rejection::JointCount { .. } => Rule::JointCount,
            Rejection::EmptyJointNames => Rule::EmptyJointNames,
            Rejection::EmptyPoints => Rule::EmptyPoints,
            Rejection::UnknownJoint { .. } => Rule::UnknownJoint,
            Rejection::NonzeroEndVelocity { .. } => Rule::NonzeroEndVelocity,
            Rejection::EndsInPast { .. } => Rule::EndsInPast,
            Rejection::TimeNotIncreasing { .. } => Rule::TimeNotIncreasing,
            Rejection::FieldSize { .. } => Rule::FieldSize,
            Rejection::Effort { .. } => Rule::Effort,
            Rejection::DuplicateJoint { .. } => Rule::DuplicateJoint,
            Rejection::NonFinite { .. } => Rule::NonFinite,
        }
    }
}

/// Checks `msg` as JTC's `validate_trajectory_msg` does at `now_secs` (controller clock), in
/// the same order, then the simulator's own checks.
pub fn validate(
    msg: &JointTrajectory,
    settings: &JtcSettings,
    now_secs: f64,
) -> std::result::Result<(), Rejection> {
    let dof = settings.joints.len();
    let n = msg.joint_names.len();
    if !settings.allow_partial_joints_goal && n != dof {
        return Err(Rejection::JointCount {
            expected: dof,
            found: n,
        });
    }
    if n == 0 {
        return Err(Rejection::EmptyJointNames);
    }
    let Some(last) = msg.points.last() else {
        return Err(Rejection::EmptyPoints);
    };
    if let Some(name) = msg
        .joint_names
        .iter()
        .find(|name| !settings.joints.contains(name))
    {
        return Err(Rejection::UnknownJoint {
            name: name.clone(),
            joints: settings.joints.clone(),
        });
    }
    if !settings.allow_nonzero_velocity_at_trajectory_end {
        if let Some((i, &v)) = last
            .velocities
            .iter()
            .enumerate()
            .find(|(_, v)| v.abs() > F32_EPSILON)
        {
            return Err(Rejection::NonzeroEndVelocity {
                joint: msg.joint_names.get(i).cloned().unwrap_or_default(),
                velocity_rad_s: v,
            });
        }
    }
    if msg.stamp_secs != 0.0 && msg.stamp_secs + last.time_from_start_secs < now_secs {
        return Err(Rejection::EndsInPast {
            stamp_secs: msg.stamp_secs,
            last_secs: last.time_from_start_secs,
            now_secs,
        });
    }
    for (index, point) in msg.points.iter().enumerate() {
        if index > 0 {
            let previous_secs = msg.points[index - 1].time_from_start_secs;
            // Written so that a NaN time fails, as an integer Duration cannot be NaN.
            if !(point.time_from_start_secs > previous_secs) {
                return Err(Rejection::TimeNotIncreasing {
                    index,
                    secs: point.time_from_start_secs,
                    previous_secs,
                });
            }
        }
        check_sizes(point, index, n)?;
        if !settings.effort_command_interface && !point.effort.is_empty() {
            return Err(Rejection::Effort { index });
        }
    }
    let mut seen = BTreeSet::new();
    if let Some(name) = msg.joint_names.iter().find(|n| !seen.insert(n.as_str())) {
        return Err(Rejection::DuplicateJoint { name: name.clone() });
    }
    for (index, point) in msg.points.iter().enumerate() {
        for (field, values) in [
            ("position", &point.positions),
            ("velocity", &point.velocities),
            ("acceleration", &point.accelerations),
            ("effort", &point.effort),
        ] {
            if values.iter().any(|v| !v.is_finite()) {
                return Err(Rejection::NonFinite { index, field });
            }
        }
        if !point.time_from_start_secs.is_finite() {
            return Err(Rejection::NonFinite {
                index,
                field: "time_from_start",
            });
        }
    }
    if !msg.stamp_secs.is_finite() {
        return Err(Rejection::NonFinite {
            index: 0,
            field: "header.stamp",
        });
    }
    Ok(())
}

/// Rule 8 with `allow_integration_in_goal_trajectories: false`.
fn check_sizes(
    point: &TrajectoryPoint,
    index: usize,
    n: usize,
) -> std::result::Result<(), Rejection> {
    for (field, len, may_be_empty) in [
        ("positions", point.positions.len(), false),
        ("velocities", point.velocities.len(), true),
        ("accelerations", point.accelerations.len(), true),
    ] {
        if len != n && !(may_be_empty && len == 0) {
            return Err(Rejection::FieldSize {
                index,
                field,
                expected: n,
                found: len,
            });
        }
    }
    Ok(())
}

/// The message in controller joint order with every controller joint (JTC's
/// `fill_partial_goal` then `sort_to_local_joint_order`): a joint the message does not name
/// holds `hold_positions` (the last command, controller order) with zero velocity and
/// acceleration, in the fields the message has. `msg` must have passed [`validate`].
pub fn to_controller_order(
    msg: &JointTrajectory,
    settings: &JtcSettings,
    hold_positions: &[f64],
) -> JointTrajectory {
    let index: Vec<Option<usize>> = settings
        .joints
        .iter()
        .map(|j| msg.joint_names.iter().position(|n| n == j))
        .collect();
    let pick = |values: &[f64], hold: &dyn Fn(usize) -> f64| -> Vec<f64> {
        if values.is_empty() {
            return Vec::new();
        }
        index
            .iter()
            .enumerate()
            .map(|(j, i)| match i {
                Some(i) => values.get(*i).copied().unwrap_or(f64::NAN),
                None => hold(j),
            })
            .collect()
    };
    let hold_position = |j: usize| hold_positions.get(j).copied().unwrap_or(f64::NAN);
    let zero = |_: usize| 0.0;
    JointTrajectory {
        stamp_secs: msg.stamp_secs,
        joint_names: settings.joints.clone(),
        points: msg
            .points
            .iter()
            .map(|p| TrajectoryPoint {
                positions: pick(&p.positions, &hold_position),
                velocities: pick(&p.velocities, &zero),
                accelerations: pick(&p.accelerations, &zero),
                effort: pick(&p.effort, &zero),
                time_from_start_secs: p.time_from_start_secs,
            })
            .collect(),
    }
}
