//! The simulated arm, free of ROS types: what a JointTrajectoryController on ros2_control
//! hardware does with the node's trajectories, on plain Rust types, so that the ROS simulator
//! (`diffusion_planner_sim`, `src/ros/sim/`) and the closed-loop evaluation without DDS
//! (`dplan closed-loop`, [`closed_loop`]) share it. User documentation: `docs/SIM.md`.
//!
//! - [`trajectory`]: `trajectory_msgs/JointTrajectory` as plain structs.
//! - [`validate`]: JTC's (Jazzy) message checks, rules 1-9, each rejection a typed
//!   [`Rejection`] naming its rule; reordering to the controller's joint order.
//! - [`spline`]: JTC's interpolation (linear, cubic, quintic).
//! - [`jtc`]: the controller: replacement of the running trajectory, the point before a new
//!   trajectory (`interpolate_from_desired_state`), stamps, holding the last point.
//! - [`arm`]: position-commanded joints tracking within velocity, acceleration and position
//!   limits, with the tracking error.
//! - [`collisions`]: collision episodes and minimum clearance against circular obstacles.
//! - [`simulation`]: all of it at the controller manager's update rate, plus goal tracking.
//! - [`closed_loop`]: the node's core, the planner and the simulation in simulated time over
//!   random scenes.

pub mod arm;
pub mod closed_loop;
pub mod collisions;
pub mod jtc;
pub mod simulation;
pub mod spline;
pub mod trajectory;
pub mod validate;

#[cfg(test)]
mod tests;

// The controller against the fixture of its Python port (tools/mujoco_sim/jtc.py).
#[cfg(test)]
mod jtc_fixture_tests;

pub use arm::{JointLimits, SimulatedJoints, StepReport};
pub use closed_loop::{run_closed_loop, ClosedLoopArgs, ClosedLoopReport, SceneResult};
pub use collisions::CollisionMonitor;
pub use jtc::{ReceiveStats, TrajectoryController};
pub use simulation::{JointSample, SimReport, Simulation, REST_VELOCITY_RAD_S};
pub use spline::{interpolate, spline_kind, SplineKind};
pub use trajectory::{JointTrajectory, TrajectoryPoint};
pub use validate::{to_controller_order, validate, JtcSettings, Rejection, Rule, F32_EPSILON};
