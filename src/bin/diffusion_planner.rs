//! The ROS 2 node `diffusion_planner`.
//!
//! Usage: `diffusion_planner [--check-params] [--ros-args ...]`. Parameters come from
//! `--ros-args --params-file FILE` and `-p key:=value` (see docs/PARAMETERS.md); a missing,
//! mistyped, out-of-range or unknown parameter names the key and exits with status 1.
//! `--check-params` validates the parameters, prints them and exits. SIGINT (Ctrl-C, or
//! `ros2 launch` stopping) ends the node cleanly with status 0; a second SIGINT exits at once.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context as _;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("diffusion_planner: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    // Our own flags come before `--ros-args`; everything after belongs to rcl.
    let own: Vec<String> = std::env::args()
        .skip(1)
        .take_while(|a| a != "--ros-args")
        .collect();
    let mut check_only = false;
    for arg in &own {
        match arg.as_str() {
            "--check-params" => check_only = true,
            other => anyhow::bail!(
                "unknown argument `{other}` (usage: diffusion_planner [--check-params] \
                 [--ros-args ...])"
            ),
        }
    }
    let (node, params) =
        diffusion_planner::ros::create_node("").context("invalid node parameters")?;
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
    diffusion_planner::ros::run(node, params, stop).context("the node failed")
}
