//! `diffusion_planner_sim`: a simulated planar arm behind a JointTrajectoryController's
//! interface (docs/SIM.md), for running the node without a robot or Gazebo.
//!
//! Usage: `diffusion_planner_sim [--check-params] [--ros-args ...]`, e.g.
//! `diffusion_planner_sim --ros-args -p model_path:=synthetic -p joints:='[shoulder, elbow]'`.
//! A bad parameter names the key and exits with status 1. SIGINT ends it cleanly (status 0);
//! a second SIGINT exits at once (status 130).
//!
//! Built without feature `ros` it only says so and exits with status 1 (it is built in every
//! feature set so that colcon installs it; see `ros::missing_ros_feature`).

use std::process::ExitCode;

#[cfg(feature = "ros")]
fn main() -> ExitCode {
    diffusion_planner::ros::binary::main("diffusion_planner_sim", sim::run)
}

#[cfg(not(feature = "ros"))]
fn main() -> ExitCode {
    diffusion_planner::ros::missing_ros_feature("diffusion_planner_sim")
}

#[cfg(feature = "ros")]
mod sim {
    use anyhow::Context as _;
    use diffusion_planner::ros::binary;

    pub fn run() -> anyhow::Result<()> {
        let check_only = binary::check_params_only("diffusion_planner_sim")?;
        let (node, params) = diffusion_planner::ros::sim::app::create_node()
            .context("invalid simulator parameters")?;
        if check_only {
            println!("parameters are valid:\n{params:#?}");
            return Ok(());
        }
        let stop = binary::stop_on_sigint()?;
        diffusion_planner::ros::sim::app::run(node, params, stop).context("the simulator failed")
    }
}
