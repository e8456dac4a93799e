//! The robot: a planar serial arm described in YAML, its kinematics, joint limits and collision
//! geometry (links as capsules, obstacles as circles).

mod description;

pub use description::{JointDescription, RobotDescription};
