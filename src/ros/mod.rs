//! The ROS 2 side of the crate. Only the submodules behind feature `ros` use r2r ([`node`]:
//! context and parameters, `convert`: messages, `app`: the spin loop); the node's behaviour
//! ([`core`]: inputs, planning requests, executor, problems, diagnostics) and its parameters
//! ([`params`]) are plain Rust, so that they are tested on machines without ROS.

pub mod braking;
pub mod clock;
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

/// The `main` of a ROS binary (`diffusion_planner`, `diffusion_planner_sim`) built without
/// feature `ros` (e.g. `--no-default-features`): says so on stderr and returns status 1. The
/// binaries are built in every feature set (no `required-features`) because colcon's
/// cargo-ament-build installs only binaries whose required features were passed explicitly.
pub fn missing_ros_feature(program: &str) -> std::process::ExitCode {
    eprintln!(
        "{program}: this executable was built without the cargo feature `ros` (for example with \
         --no-default-features), so it contains no ROS 2 node; rebuild it with the default \
         features (`cargo build`, or `colcon build` in a ROS 2 workspace) with ROS 2 sourced"
    );
    std::process::ExitCode::FAILURE
}
