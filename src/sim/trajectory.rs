//! `trajectory_msgs/JointTrajectory` on plain Rust types, as the simulated controller sees it.
//!
//! Times are seconds (`f64`) instead of `builtin_interfaces` integers; a stamp of exactly `0.0`
//! is ROS's zero time ("start at the controller's next update"). An empty vector is an absent
//! field, as in the message.

use crate::ros::executor::CommandPoint;

/// One `trajectory_msgs/JointTrajectoryPoint`. Also the controller's state type (its
/// "point before the trajectory", its last command): radians, rad/s, rad/s².
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrajectoryPoint {
    pub positions: Vec<f64>,
    pub velocities: Vec<f64>,
    pub accelerations: Vec<f64>,
    pub effort: Vec<f64>,
    /// Seconds after the trajectory's start.
    pub time_from_start_secs: f64,
}

impl TrajectoryPoint {
    /// A state with positions and velocities (no accelerations), at time 0.
    pub fn state(positions: Vec<f64>, velocities: Vec<f64>) -> Self {
        TrajectoryPoint {
            positions,
            velocities,
            ..Default::default()
        }
    }

    /// At rest at `positions`: zero velocities and accelerations.
    pub fn at_rest(positions: Vec<f64>) -> Self {
        let n = positions.len();
        TrajectoryPoint {
            positions,
            velocities: vec![0.0; n],
            accelerations: vec![0.0; n],
            ..Default::default()
        }
    }
}

/// One `trajectory_msgs/JointTrajectory`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JointTrajectory {
    /// `header.stamp` in seconds on the controller's clock; `0.0` = start at the next update.
    pub stamp_secs: f64,
    pub joint_names: Vec<String>,
    pub points: Vec<TrajectoryPoint>,
}

impl JointTrajectory {
    /// The message the node publishes for `points` (stamp 0; positions and velocities in the
    /// order of `joint_names`), as `ros::convert::trajectory` builds it.
    pub fn from_command_points(joint_names: &[String], points: &[CommandPoint]) -> Self {
        JointTrajectory {
            stamp_secs: 0.0,
            joint_names: joint_names.to_vec(),
            points: points
                .iter()
                .map(|p| TrajectoryPoint {
                    positions: p.positions.clone(),
                    velocities: p.velocities.clone(),
                    accelerations: Vec::new(),
                    effort: Vec::new(),
                    time_from_start_secs: p.time_from_start_secs,
                })
                .collect(),
        }
    }
}
