//! `diffusion_planner_sim`: a simulated planar arm behind a JointTrajectoryController's
//! interface (docs/SIM.md), for running the node without a robot or Gazebo.
//!
//! Usage: `diffusion_planner_sim [--check-params] [--ros-args ...]`, e.g.
//! `diffusion_planner_sim --ros-args -p model_path:=synthetic -p joints:='[shoulder, elbow]'`.
//! A bad parameter names the key and exits with status 1. SIGINT ends it cleanly (status 0);
//! a second SIGINT exits at once (status 130).

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context as _;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("diffusion_planner_sim: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let own: Vec<String> = std::env::args()
        .skip(1)
        .take_while(|a| a != "--ros-args")
        .collect();
    let mut check_only = false;
    for arg in &own {
        match arg.as_str() {
            "--check-params" => check_only = true,
            other => anyhow::bail!(
                "unknown argument `{other}` (usage: diffusion_planner_sim [--check-params] \
                 [--ros-args ...])"
            ),
        }
    }
    let (node, params) =
        diffusion_planner::ros::sim::app::create_node().context("invalid simulator parameters")?;
    if check_only {
        println!("parameters are valid:\n{params:#?}");
        return Ok(());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let handler_stop = Arc::clone(&stop);
    ctrlc::set_handler(move || {
        if handler_stop.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    })
    .context("installing the SIGINT handler")?;
    diffusion_planner::ros::sim::app::run(node, params, stop).context("the simulator failed")
}
