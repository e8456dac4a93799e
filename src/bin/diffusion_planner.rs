//! The ROS 2 node `diffusion_planner`.
//!
//! Usage: `diffusion_planner [--check-params] [--ros-args ...]`. Parameters come from
//! `--ros-args --params-file FILE` and `-p key:=value` (see docs/PARAMETERS.md); a missing,
//! mistyped, out-of-range or unknown parameter names the key and exits with status 1.
//! `--check-params` validates the parameters, prints them and exits. SIGINT (Ctrl-C, or
//! `ros2 launch` stopping) ends the node cleanly with status 0; a second SIGINT exits at once.
//!
//! Built without feature `ros` it only says so and exits with status 1 (it is built in every
//! feature set so that colcon installs it; see `ros::missing_ros_feature`).

use std::process::ExitCode;

#[cfg(feature = "ros")]
fn main() -> ExitCode {
    diffusion_planner::ros::binary::main("diffusion_planner", node::run)
}

#[cfg(not(feature = "ros"))]
fn main() -> ExitCode {
    diffusion_planner::ros::missing_ros_feature("diffusion_planner")
}

#[cfg(feature = "ros")]
mod node {
    use anyhow::Context as _;
    use diffusion_planner::ros::binary;

    pub fn run() -> anyhow::Result<()> {
        let check_only = binary::check_params_only("diffusion_planner")?;
        let (node, params) =
            diffusion_planner::ros::create_node("").context("invalid node parameters")?;
        if check_only {
            println!("parameters are valid:\n{params:#?}");
            return Ok(());
        }
        let stop = binary::stop_on_sigint()?;
        diffusion_planner::ros::run(node, params, stop).context("the node failed")
    }
}
