//! What the node's and the simulator's binaries share: the `--check-params` flag before
//! `--ros-args`, the SIGINT handler (the first asks the run to stop, a second exits at once
//! with status 130), and the exit status from the run's result.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context as _;

/// Runs `body` and turns its result into the exit status, printing an error as
/// `program: error: causes`.
pub fn main(program: &str, body: impl FnOnce() -> anyhow::Result<()>) -> ExitCode {
    match body() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{program}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether the binary's own arguments (those before `--ros-args`; everything after belongs to
/// rcl) ask for `--check-params` only.
pub fn check_params_only(program: &str) -> anyhow::Result<bool> {
    let own: Vec<String> = std::env::args()
        .skip(1)
        .take_while(|a| a != "--ros-args")
        .collect();
    let mut check_only = false;
    for arg in &own {
        match arg.as_str() {
            "--check-params" => check_only = true,
            other => anyhow::bail!(
                "unknown argument `{other}` (usage: {program} [--check-params] [--ros-args ...])"
            ),
        }
    }
    Ok(check_only)
}

/// Installs the SIGINT handler (after rcl is up, so that it is ours): the returned flag is set
/// by the first SIGINT; a second exits at once with status 130.
pub fn stop_on_sigint() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let handler_stop = Arc::clone(&stop);
    ctrlc::set_handler(move || {
        if handler_stop.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    })
    .context("installing the SIGINT handler")?;
    Ok(stop)
}
