//! The robot: a planar serial arm described in YAML, its kinematics, joint limits and collision
//! geometry (links as capsules, obstacles as circles).
//!
//! - [`RobotDescription`]: the YAML description (joints with limits, link lengths and radius).
//! - [`PlanarArm`]: forward kinematics of every link, analytic 2-link IK with both
//!   [`ElbowBranch`]es, joint-limit checks, static and swept collision checks.
//! - [`JointPath`]: a joint-space path (waypoints × joints, radians).
//!
//! The robot-agnostic layer (any serial arm from its URDF; the planner moves onto it next):
//! - [`Robot`]: a URDF chain between a base and a tip link ([`urdf`]), merged joint limits
//!   (URDF + MoveIt `joint_limits.yaml`, [`joint_limits`]), collision spheres per link
//!   (cuRobo layout, [`spheres`]) and the self-collision pairs (SRDF, [`srdf`]); batched forward
//!   kinematics and Jacobians ([`Frame`]), numeric IK ([`IkSolver`]).
//! - [`World`]: sphere, box and cylinder obstacles with closed-form signed distances.
//! - [`Checker`]: robot-world and self-collision checks of configurations, swept segments and
//!   batches of trajectories, the nearest obstacle and a CHOMP-style cost gradient.

mod checker;
mod collision;
mod description;
mod fk;
mod frame;
mod ik;
pub mod joint_limits;
mod kinematics;
mod model;
mod path;
pub mod propose;
pub mod spheres;
pub mod srdf;
pub mod urdf;
mod world;

pub use collision::{
    nearest_obstacle_to_segment, point_segment_distance, CircleObstacle, Contact, PathContact,
    SweptContact, SWEPT_TOLERANCE_M,
};
pub use description::{JointDescription, RobotDescription};
pub use kinematics::{wrap_angle, ElbowBranch, IkError, IkSolution, PlanarArm};
pub use path::{distance, JointPath};

pub use checker::{Checker, Clearance, ConfigCheck, TrajectoryCheck};
pub use fk::wrap_pi;
pub use frame::Frame;
pub use ik::{IkBranch, IkOptions, IkResult, IkSolver, IkTarget};
pub use joint_limits::JointLimits;
pub use model::{CollisionSphere, JointKind, Robot, RobotFiles, RobotJoint, RobotLink, UrdfSource};
pub use world::{MarkerKind, Obstacle, Shape, World};
