//! The ROS 2 node `diffusion_planner`.
//!
//! Usage: `diffusion_planner [--check-params] [--ros-args ...]`. Parameters come from
//! `--ros-args --params-file FILE` and `-p key:=value` (see docs/PARAMETERS.md); a missing,
//! mistyped, out-of-range or unknown parameter names the key and exits with status 1.
//! `--check-params` validates the parameters, prints them and exits.

use std::process::ExitCode;

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
    let (_node, params) =
        diffusion_planner::ros::create_node("").context("invalid node parameters")?;
    if check_only {
        println!("parameters are valid:\n{params:#?}");
        return Ok(());
    }
    anyhow::bail!("the planning loop is not implemented yet (issue 5); use --check-params")
}
