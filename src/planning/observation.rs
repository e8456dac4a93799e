//! What the planner sees: the robot's joint positions (by name), the goal point, circular
//! obstacles, the requested mode and time stamps, validated against the robot and the model's
//! mode names on construction.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::robot::{CircleObstacle, IkError, PlanarArm};

/// Which mode the caller wants.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum ModeRequest {
    /// Any mode: sample without a label, select with hysteresis.
    #[default]
    Any,
    /// A mode name the model knows (e.g. `left`).
    Named(String),
}

impl ModeRequest {
    /// `any` (any case) or an empty string mean [`ModeRequest::Any`]; anything else is a name
    /// (trimmed).
    pub fn parse(text: &str) -> Self {
        let text = text.trim();
        if text.is_empty() || text.eq_ignore_ascii_case("any") {
            ModeRequest::Any
        } else {
            ModeRequest::Named(text.to_string())
        }
    }

    /// The requested name, if any.
    pub fn name(&self) -> Option<&str> {
        match self {
            ModeRequest::Any => None,
            ModeRequest::Named(name) => Some(name),
        }
    }
}

impl From<String> for ModeRequest {
    fn from(text: String) -> Self {
        ModeRequest::parse(&text)
    }
}

impl From<ModeRequest> for String {
    fn from(request: ModeRequest) -> Self {
        match request {
            ModeRequest::Any => "any".to_string(),
            ModeRequest::Named(name) => name,
        }
    }
}

/// When each input was measured (seconds on the planner's clock, e.g. ROS time).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObservationStamps {
    pub joint_state_secs: f64,
    pub goal_secs: f64,
    /// `None` for static obstacles (e.g. from a YAML file).
    pub obstacles_secs: Option<f64>,
}

/// The state the executor currently commands (from the previous plan at time `stamp_secs`):
/// a new plan starts exactly here so the robot never jumps. Robot joint order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandedState {
    pub positions_rad: Vec<f64>,
    pub velocities_rad_s: Vec<f64>,
    pub stamp_secs: f64,
}

/// The raw inputs, before validation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ObservationInput {
    /// Measured joint positions by name, radians (any order; every robot joint exactly once).
    pub joints: Vec<(String, f64)>,
    /// End-effector goal `(x, y)` in the base (planning) frame, metres.
    pub goal_m: [f64; 2],
    pub obstacles: Vec<CircleObstacle>,
    pub mode: ModeRequest,
    pub stamps: ObservationStamps,
    /// The currently commanded state, when a plan is executing.
    pub commanded: Option<CommandedState>,
}

/// Whether a configuration was measured or commanded (in error messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StateKind {
    Measured,
    Commanded,
}

impl fmt::Display for StateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StateKind::Measured => "measured",
            StateKind::Commanded => "commanded",
        })
    }
}

/// Why an observation was refused. Each variant names the bad input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ObservationError {
    #[error("{field} is not finite (found {value})")]
    NonFinite { field: String, value: f64 },
    #[error("unknown joint `{name}` (robot joints: {known:?})")]
    UnknownJoint { name: String, known: Vec<String> },
    #[error("joint `{name}` is missing from the joint positions")]
    MissingJoint { name: String },
    #[error("joint `{name}` appears more than once in the joint positions")]
    DuplicateJoint { name: String },
    #[error(
        "{kind} position of joint `{joint}` is {value_rad} rad, outside its limits \
         [{lower_rad}, {upper_rad}]"
    )]
    JointOutsideLimits {
        kind: StateKind,
        joint: String,
        value_rad: f64,
        lower_rad: f64,
        upper_rad: f64,
    },
    #[error("commanded state has {found} {what}, expected one per joint ({expected})")]
    CommandedShape {
        what: &'static str,
        expected: usize,
        found: usize,
    },
    #[error(
        "commanded velocity of joint `{joint}` is {value_rad_s} rad/s, beyond its limit \
         {limit_rad_s} rad/s"
    )]
    CommandedVelocityOutOfLimits {
        joint: String,
        value_rad_s: f64,
        limit_rad_s: f64,
    },
    #[error("obstacles[{index}]: {reason}")]
    InvalidObstacle { index: usize, reason: String },
    #[error(
        "goal {goal_m:?} is {distance_m:.4} m from the base, outside the reachable workspace \
         ({min_reach_m:.4} .. {max_reach_m:.4} m)"
    )]
    GoalOutOfReach {
        goal_m: [f64; 2],
        distance_m: f64,
        min_reach_m: f64,
        max_reach_m: f64,
    },
    #[error(
        "goal {goal_m:?} is within reach, but no elbow branch reaches it inside the joint limits"
    )]
    GoalOutsideJointLimits { goal_m: [f64; 2] },
    #[error(
        "goal {goal_m:?} lies inside obstacles[{obstacle}] (centre {center_m:?}, radius \
         {radius_m} m, plus link radius {link_radius_m} m)"
    )]
    GoalInsideObstacle {
        goal_m: [f64; 2],
        obstacle: usize,
        center_m: [f64; 2],
        radius_m: f64,
        link_radius_m: f64,
    },
    #[error(
        "{kind} start configuration collides: link {link} with obstacles[{obstacle}] \
         (clearance {clearance_m:.4} m)"
    )]
    StartInCollision {
        kind: StateKind,
        link: usize,
        obstacle: usize,
        clearance_m: f64,
    },
    #[error("unknown mode `{name}` (the model knows {known:?}, or `any`)")]
    UnknownMode { name: String, known: Vec<String> },
    #[error(
        "observation was validated for joints {found:?}, the planner's robot has {expected:?}"
    )]
    RobotMismatch {
        expected: Vec<String>,
        found: Vec<String>,
    },
}

/// A validated observation. Positions are in the robot's joint order.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    joint_names: Vec<String>,
    joint_positions_rad: Vec<f64>,
    goal_m: [f64; 2],
    obstacles: Vec<CircleObstacle>,
    mode: ModeRequest,
    mode_index: Option<usize>,
    mode_names: Vec<String>,
    stamps: ObservationStamps,
    commanded: Option<CommandedState>,
}

fn finite(field: impl FnOnce() -> String, value: f64) -> Result<(), ObservationError> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(ObservationError::NonFinite {
            field: field(),
            value,
        })
    }
}

impl Observation {
    /// Validates `input` against the robot and the model's mode names (in label order). Checks,
    /// in order: joint names and values, joint limits, the commanded state, stamps, obstacles,
    /// the goal (finite, reachable, inside the limits for a 2-link arm, not inside an obstacle
    /// inflated by the link radius), the start configuration(s) against the obstacles, the mode.
    pub fn new(
        input: ObservationInput,
        arm: &PlanarArm,
        mode_names: &[String],
    ) -> Result<Self, ObservationError> {
        let names = arm.joint_names();
        let joints = &arm.description().joints;
        let mut positions: Vec<Option<f64>> = vec![None; names.len()];
        for (name, value) in &input.joints {
            let Some(index) = names.iter().position(|n| n == name) else {
                return Err(ObservationError::UnknownJoint {
                    name: name.clone(),
                    known: names.clone(),
                });
            };
            if positions[index].is_some() {
                return Err(ObservationError::DuplicateJoint { name: name.clone() });
            }
            finite(|| format!("position of joint `{name}`"), *value)?;
            positions[index] = Some(*value);
        }
        let mut joint_positions_rad = Vec::with_capacity(names.len());
        for (name, position) in names.iter().zip(&positions) {
            match position {
                Some(value) => joint_positions_rad.push(*value),
                None => return Err(ObservationError::MissingJoint { name: name.clone() }),
            }
        }
        check_limits(arm, &joint_positions_rad, StateKind::Measured)?;

        if let Some(commanded) = &input.commanded {
            for (what, values) in [
                ("positions", &commanded.positions_rad),
                ("velocities", &commanded.velocities_rad_s),
            ] {
                if values.len() != names.len() {
                    return Err(ObservationError::CommandedShape {
                        what,
                        expected: names.len(),
                        found: values.len(),
                    });
                }
            }
            for (i, name) in names.iter().enumerate() {
                finite(
                    || format!("commanded position of joint `{name}`"),
                    commanded.positions_rad[i],
                )?;
                finite(
                    || format!("commanded velocity of joint `{name}`"),
                    commanded.velocities_rad_s[i],
                )?;
                let limit_rad_s = joints[i].max_velocity_rad_s;
                if commanded.velocities_rad_s[i].abs() > limit_rad_s {
                    return Err(ObservationError::CommandedVelocityOutOfLimits {
                        joint: name.clone(),
                        value_rad_s: commanded.velocities_rad_s[i],
                        limit_rad_s,
                    });
                }
            }
            finite(|| "commanded.stamp_secs".to_string(), commanded.stamp_secs)?;
            check_limits(arm, &commanded.positions_rad, StateKind::Commanded)?;
        }

        finite(
            || "stamps.joint_state_secs".to_string(),
            input.stamps.joint_state_secs,
        )?;
        finite(|| "stamps.goal_secs".to_string(), input.stamps.goal_secs)?;
        if let Some(stamp) = input.stamps.obstacles_secs {
            finite(|| "stamps.obstacles_secs".to_string(), stamp)?;
        }

        for (index, obstacle) in input.obstacles.iter().enumerate() {
            if let Err(err) = obstacle.validate(&format!("obstacles[{index}]")) {
                return Err(ObservationError::InvalidObstacle {
                    index,
                    reason: err.to_string(),
                });
            }
        }

        let goal_m = input.goal_m;
        finite(|| "goal_m[0] (x)".to_string(), goal_m[0])?;
        finite(|| "goal_m[1] (y)".to_string(), goal_m[1])?;
        check_goal(arm, goal_m)?;
        for (obstacle, circle) in input.obstacles.iter().enumerate() {
            let distance = (goal_m[0] - circle.center_m[0]).hypot(goal_m[1] - circle.center_m[1]);
            if distance < circle.radius_m + arm.link_radius_m() {
                return Err(ObservationError::GoalInsideObstacle {
                    goal_m,
                    obstacle,
                    center_m: circle.center_m,
                    radius_m: circle.radius_m,
                    link_radius_m: arm.link_radius_m(),
                });
            }
        }

        check_collision(
            arm,
            &joint_positions_rad,
            &input.obstacles,
            StateKind::Measured,
        )?;
        if let Some(commanded) = &input.commanded {
            check_collision(
                arm,
                &commanded.positions_rad,
                &input.obstacles,
                StateKind::Commanded,
            )?;
        }

        let mode_index = match &input.mode {
            ModeRequest::Any => None,
            ModeRequest::Named(name) => match mode_names.iter().position(|m| m == name) {
                Some(index) => Some(index),
                None => {
                    return Err(ObservationError::UnknownMode {
                        name: name.clone(),
                        known: mode_names.to_vec(),
                    })
                }
            },
        };

        Ok(Observation {
            joint_names: names,
            joint_positions_rad,
            goal_m,
            obstacles: input.obstacles,
            mode: input.mode,
            mode_index,
            mode_names: mode_names.to_vec(),
            stamps: input.stamps,
            commanded: input.commanded,
        })
    }

    /// Joint names the observation was validated for (robot order).
    pub fn joint_names(&self) -> &[String] {
        &self.joint_names
    }

    /// Measured joint positions, robot order, radians.
    pub fn joint_positions_rad(&self) -> &[f64] {
        &self.joint_positions_rad
    }

    /// Where a new plan starts: the commanded positions when a plan is executing, else the
    /// measured ones. Radians.
    pub fn start_positions_rad(&self) -> &[f64] {
        match &self.commanded {
            Some(commanded) => &commanded.positions_rad,
            None => &self.joint_positions_rad,
        }
    }

    /// The velocity a new plan starts with: the commanded one, else `None` (at rest). rad/s.
    pub fn start_velocities_rad_s(&self) -> Option<&[f64]> {
        self.commanded
            .as_ref()
            .map(|c| c.velocities_rad_s.as_slice())
    }

    /// The stamp of the start state: the commanded state's stamp, else the joint state's.
    pub fn start_stamp_secs(&self) -> f64 {
        match &self.commanded {
            Some(commanded) => commanded.stamp_secs,
            None => self.stamps.joint_state_secs,
        }
    }

    /// End-effector goal in the base frame, metres.
    pub fn goal_m(&self) -> [f64; 2] {
        self.goal_m
    }

    pub fn obstacles(&self) -> &[CircleObstacle] {
        &self.obstacles
    }

    pub fn mode(&self) -> &ModeRequest {
        &self.mode
    }

    /// The requested mode's label index in the model's mode names, `None` for `any`.
    pub fn mode_index(&self) -> Option<usize> {
        self.mode_index
    }

    /// The mode names the observation was validated against.
    pub fn mode_names(&self) -> &[String] {
        &self.mode_names
    }

    pub fn stamps(&self) -> &ObservationStamps {
        &self.stamps
    }

    pub fn commanded(&self) -> Option<&CommandedState> {
        self.commanded.as_ref()
    }
}

fn check_limits(arm: &PlanarArm, q_rad: &[f64], kind: StateKind) -> Result<(), ObservationError> {
    match arm.limit_violation(q_rad) {
        None => Ok(()),
        Some((i, value_rad)) => {
            let joint = &arm.description().joints[i];
            Err(ObservationError::JointOutsideLimits {
                kind,
                joint: joint.name.clone(),
                value_rad,
                lower_rad: joint.lower_rad,
                upper_rad: joint.upper_rad,
            })
        }
    }
}

fn check_goal(arm: &PlanarArm, goal_m: [f64; 2]) -> Result<(), ObservationError> {
    let base = arm.base_m();
    let distance_m = (goal_m[0] - base[0]).hypot(goal_m[1] - base[1]);
    let (min_reach_m, max_reach_m) = (arm.min_reach_m(), arm.max_reach_m());
    let out_of_reach = ObservationError::GoalOutOfReach {
        goal_m,
        distance_m,
        min_reach_m,
        max_reach_m,
    };
    if distance_m > max_reach_m || distance_m < min_reach_m {
        return Err(out_of_reach);
    }
    if arm.dof() == 2 {
        match arm.ik_all(goal_m) {
            Ok(_) => {}
            Err(IkError::OutsideJointLimits { .. }) => {
                return Err(ObservationError::GoalOutsideJointLimits { goal_m })
            }
            Err(_) => return Err(out_of_reach),
        }
    }
    Ok(())
}

fn check_collision(
    arm: &PlanarArm,
    q_rad: &[f64],
    obstacles: &[CircleObstacle],
    kind: StateKind,
) -> Result<(), ObservationError> {
    match arm.collision(q_rad, obstacles) {
        None => Ok(()),
        Some(contact) => Err(ObservationError::StartInCollision {
            kind,
            link: contact.link,
            obstacle: contact.obstacle,
            clearance_m: contact.clearance_m,
        }),
    }
}
