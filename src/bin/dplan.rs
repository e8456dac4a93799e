//! `dplan`: the command-line tool (generate, train, sample, eval, bench, replay, modes).

use clap::{Parser, Subcommand};
use diffusion_planner::bench::{self, BenchArgs};

#[derive(Debug, Parser)]
#[command(name = "dplan", version, about = "Diffusion motion planner tools")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Time the denoiser on this machine's CPU (and PyTorch on the same network).
    Bench(BenchArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Bench(args) => {
            bench::run(&args)?;
        }
    }
    Ok(())
}
