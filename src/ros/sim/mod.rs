//! The simulated arm as a ROS 2 node (`diffusion_planner_sim`): the plain simulation of
//! [`crate::sim`] behind the topics ros2_control and Gazebo would offer (`joint_states`, the
//! JointTrajectoryController topic, `/clock`), plus obstacles, goals and `/diagnostics`.
//! [`params`] is plain Rust (tested without ROS); `app` uses r2r (feature `ros`).
//! User documentation: docs/SIM.md.

pub mod params;

#[cfg(feature = "ros")]
pub mod app;

pub use params::{load_robot, SimParams, SIM_NODE_NAME, SIM_PARAMETER_KEYS};
