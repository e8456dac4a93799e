//! The robot: a planar serial arm described in YAML, its kinematics, joint limits and collision
//! geometry (links as capsules, obstacles as circles).
//!
//! - [`RobotDescription`]: the YAML description (joints with limits, link lengths and radius).
//! - [`PlanarArm`]: forward kinematics of every link, analytic 2-link IK with both
//!   [`ElbowBranch`]es, joint-limit checks, static and swept collision checks.
//! - [`JointPath`]: a joint-space path (waypoints × joints, radians).

mod collision;
mod description;
mod kinematics;
mod path;

pub use collision::{
    nearest_obstacle_to_segment, point_segment_distance, CircleObstacle, Contact, PathContact,
    SweptContact, SWEPT_TOLERANCE_M,
};
pub use description::{JointDescription, RobotDescription};
pub use kinematics::{wrap_angle, ElbowBranch, IkError, IkSolution, PlanarArm};
pub use path::{distance, JointPath};
