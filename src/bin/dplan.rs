//! `dplan`: the command-line tool (generate, train, sample, eval, bench, replay, modes).

use anyhow::Context;
use clap::{Parser, Subcommand};

/// Diffusion planner tools.
#[derive(Debug, Parser)]
#[command(name = "dplan", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Seed experiments on toy data: mode coverage, GMM collapse, mode interpolation.
    Modes(diffusion_planner::experiments::ModesArgs),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Modes(args) => {
            diffusion_planner::experiments::configure_cpu_threads();
            let report = diffusion_planner::experiments::run(&args).context("dplan modes")?;
            print!(
                "{}",
                diffusion_planner::experiments::report::summary(&report)
            );
        }
    }
    Ok(())
}
