//! The ROS 2 side of the crate. Only the submodules behind feature `ros` use r2r; [`params`]
//! (the node's parameters, typed and validated) is plain Rust so that parameter files and launch
//! files are checked by the core tests on machines without ROS.

mod param_value;
pub mod params;

#[cfg(feature = "ros")]
mod node;

#[cfg(feature = "ros")]
pub use node::{create_node, NODE_NAME};
