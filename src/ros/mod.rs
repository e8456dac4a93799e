//! The ROS 2 side of the crate. Only the submodules behind feature `ros` use r2r ([`node`]:
//! context and parameters, `convert`: messages, `app`: the spin loop); the node's behaviour
//! ([`core`]: inputs, planning requests, executor, problems, diagnostics) and its parameters
//! ([`params`]) are plain Rust, so that they are tested on machines without ROS.

pub mod core;
pub mod executor;
pub mod geometric_source;
pub mod inputs;
pub mod obstacles;
mod param_value;
pub mod params;
pub mod problems;
pub mod report;
pub mod sim;
pub mod source;
pub mod tracking;
pub mod worker;

#[cfg(feature = "ros")]
mod app;
#[cfg(feature = "ros")]
pub mod binary;
#[cfg(feature = "ros")]
pub mod convert;
#[cfg(feature = "ros")]
mod node;
#[cfg(feature = "ros")]
pub mod replay;

#[cfg(feature = "ros")]
pub use app::run;
#[cfg(feature = "ros")]
pub use node::{create_node, NODE_NAME};
