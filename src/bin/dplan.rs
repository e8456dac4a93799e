//! `dplan`: the command-line tool of diffusion_planner.
//!
//! - `dplan generate --config config/data_planar_arm.yaml --out DATA`: expert demonstrations.
//! - `dplan train --config config/train_planar_arm.yaml [--resume] [--device cuda:0]`: train a
//!   model folder.
//! - `dplan bench [--json OUT]`: sampling speed on this machine, with PyTorch beside it;
//!   `dplan bench --device cuda:0`: on a GPU at K = 32, 256, 1024, with training throughput.
//! - `dplan sample --model DIR --scene FILE.yaml [--png OUT] [--json OUT]`: the planning
//!   pipeline once, with a figure and a report.
//! - `dplan eval --model DIR --scenes N --seed S [--report DIR] [--json OUT]`: metrics on
//!   held-out scenes.
//! - `dplan modes [--quick] [--report DIR] [--json OUT]`: the seed experiments on toy data.
//! - `dplan closed-loop --model DIR|synthetic --scenes N --seed S [--json OUT]`: the node's
//!   core, the planner and the simulated arm in simulated time over random scenes.
//! - `dplan replay BAG --out BAG [--model DIR] [PARAMS]` (feature `ros`): the node's behaviour
//!   on a rosbag2 bag, offline and deterministic; writes what it would publish to a bag.
//! - `dplan robot --urdf U [--spheres S] [--srdf X] [--joint-limits L] [--base B --tip T]
//!   check|fk|ik|spheres|show`: what the planner sees of a robot (docs/ROBOTS.md).
//! - `dplan demo-report --trace TRACE.json --out DIR [--process NAME=STATUS ...]`: the summary,
//!   plots and page of a `scripts/demo` run; exit status 1 when the run failed.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use diffusion_planner::bench::{self, BenchArgs};
use diffusion_planner::eval::{self, EvalArgs, EvalProgress};
use diffusion_planner::sample_cli::{run_sample, SampleArgs};
use diffusion_planner::sim::{run_closed_loop, ClosedLoopArgs};
use diffusion_planner::task::generate::{generate, DataConfig};
use diffusion_planner::train::{train, TrainConfig};

#[derive(Parser)]
#[command(
    name = "dplan",
    version,
    about = "Diffusion motion planner: data, training, tools"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate expert demonstrations of the reference task.
    Generate {
        /// Data config (YAML).
        #[arg(long)]
        config: PathBuf,
        /// Output data file (safetensors).
        #[arg(long)]
        out: PathBuf,
    },
    /// Train a model folder from a data file.
    Train {
        /// Training config (YAML).
        #[arg(long)]
        config: PathBuf,
        /// Continue from the checkpoint in the output folder.
        #[arg(long)]
        resume: bool,
        /// Device (`cpu`, `cuda:N`, `auto`); overrides the config's `device`.
        #[arg(long)]
        device: Option<diffusion_planner::device::DeviceSpec>,
    },
    /// Time the denoiser and a planning call's sampling on this machine (and PyTorch on the
    /// same network when available).
    Bench(BenchArgs),
    /// Run the planning pipeline once on a scene; print a summary, draw a figure, write JSON.
    Sample(Box<SampleArgs>),
    /// Evaluate a model folder on held-out scenes: success, modes, filter, latency.
    Eval(Box<EvalArgs>),
    /// Seed experiments on toy data: mode coverage, GMM collapse, mode interpolation.
    Modes(diffusion_planner::experiments::ModesArgs),
    /// Closed loop without DDS: the node's core, the planner and the simulated arm in
    /// simulated time over random scenes: success, collisions, time to goal, latency.
    ClosedLoop(Box<ClosedLoopArgs>),
    /// Replay a rosbag2 bag through the node offline (bag time, synchronous planning, no DDS)
    /// and record what it publishes.
    #[cfg(feature = "ros")]
    Replay(diffusion_planner::ros::replay::ReplayArgs),
    /// Summary, plots and Markdown page of a `scripts/demo` run from its trace; exits with
    /// status 1 when the run failed (a collision, a crashed process, no goal reached).
    DemoReport(diffusion_planner::demo::DemoReportArgs),
    /// A robot from its files (URDF, spheres, SRDF, joint_limits.yaml): check, fk, ik,
    /// propose spheres, draw.
    Robot(Box<diffusion_planner::robot_cli::RobotArgs>),
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Generate { config, out } => run_generate(&config, &out),
        Command::Train {
            config,
            resume,
            device,
        } => run_train(&config, resume, device),
        Command::Bench(args) if args.robot => run_robot_bench(&args),
        Command::Bench(args) => match args.device {
            Some(device) => Ok(bench::run_device(&args, device).map(|_| ())?),
            None => Ok(bench::run(&args).map(|_| ())?),
        },
        Command::Sample(args) => {
            let report = run_sample(&args)?;
            print!("{}", report.summary());
            Ok(())
        }
        Command::Eval(args) => run_eval(&args),
        Command::ClosedLoop(args) => {
            let progress = bar(args.scenes as u64, "scenes (closed loop)");
            let report = run_closed_loop(&args, &mut |done, _| progress.set_position(done as u64))
                .context("dplan closed-loop")?;
            progress.finish();
            print!("{}", report.summary());
            Ok(())
        }
        Command::Modes(args) => {
            diffusion_planner::experiments::configure_cpu_threads();
            let report = diffusion_planner::experiments::run(&args).context("dplan modes")?;
            print!(
                "{}",
                diffusion_planner::experiments::report::summary(&report)
            );
            Ok(())
        }
        #[cfg(feature = "ros")]
        Command::Replay(args) => {
            let summary = diffusion_planner::ros::replay::run(&args)
                .with_context(|| format!("dplan replay {}", args.bag.display()))?;
            print!("{}", summary.text());
            println!("wrote {}", args.out.display());
            Ok(())
        }
        Command::DemoReport(args) => run_demo_report(&args),
        Command::Robot(args) => {
            print!(
                "{}",
                diffusion_planner::robot_cli::run(&args).context("dplan robot")?
            );
            Ok(())
        }
    }
}

fn run_robot_bench(args: &BenchArgs) -> Result<()> {
    // The Panda files of this source tree (like the PyTorch script, a development benchmark).
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let report = bench::robot::run(root, args.plan_iterations).context("dplan bench --robot")?;
    print!("{}", report.text());
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report).context("bench report as JSON")?;
        diffusion_planner::error::write_file(path, json + "\n")?;
    }
    Ok(())
}

fn run_demo_report(args: &diffusion_planner::demo::DemoReportArgs) -> Result<()> {
    let summary = diffusion_planner::demo::run(args).context("dplan demo-report")?;
    print!("{}", summary.text());
    println!(
        "report: {}",
        args.out.join(diffusion_planner::demo::REPORT_MD).display()
    );
    if !summary.passed {
        // The summary above says why; an error here would only repeat it (with a backtrace).
        std::process::exit(1);
    }
    Ok(())
}

fn run_eval(args: &EvalArgs) -> Result<()> {
    let scenes = bar(args.scenes as u64, "scenes (expert)");
    let planning = bar(args.scenes as u64, "scenes (planning)");
    let report = eval::run_with_progress(args, &mut |p| match p {
        EvalProgress::Scenes {
            drawn, feasible, ..
        } => {
            scenes.set_position(feasible as u64);
            scenes.set_message(format!("{drawn} drawn"));
        }
        EvalProgress::Planning { row, done, total } => {
            scenes.finish();
            planning.set_length(total as u64);
            planning.set_position(done as u64);
            planning.set_message(row);
        }
    })?;
    planning.finish();
    print!("{}", report.summary());
    Ok(())
}

fn bar(total: u64, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    let template =
        format!("{{elapsed_precise}} [{{bar:40}}] {{pos}}/{{len}} {unit} (ETA {{eta}}) {{msg}}");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

fn run_generate(config_path: &std::path::Path, out: &std::path::Path) -> Result<()> {
    let config = DataConfig::load(config_path)?;
    let progress = bar(config.scenes as u64, "scenes");
    let (data, summary) = generate(&config, &|| progress.inc(1))?;
    progress.finish();
    data.save(out)
        .with_context(|| format!("writing {}", out.display()))?;
    println!(
        "{} scenes, {} expert paths ({} dropped), {} samples -> {}",
        summary.scenes,
        summary.expert_paths,
        summary.dropped_paths,
        summary.samples,
        out.display()
    );
    println!("classes per scene: {:?}", summary.scenes_by_class_count);
    println!(
        "scenes with both routes to one goal configuration: {}",
        summary.scenes_with_both_routes
    );
    for (name, count) in &summary.mode_counts {
        let share = *count as f64 / summary.samples.max(1) as f64;
        println!("  {name:>18}: {count:>8} ({:.1}%)", 100.0 * share);
    }
    Ok(())
}

fn run_train(
    config_path: &std::path::Path,
    resume: bool,
    device: Option<diffusion_planner::device::DeviceSpec>,
) -> Result<()> {
    let mut config = TrainConfig::load(config_path)?;
    if let Some(device) = device {
        config.device = device.to_string();
    }
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // Ctrl-C: finish the step, write a checkpoint, exit (continue with --resume).
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))
            .context("installing the Ctrl-C handler")?;
    }
    let progress = bar(config.steps, "steps");
    progress.enable_steady_tick(Duration::from_secs(1));
    let log_every = config.log_every;
    let summary = train(&config, resume, &mut |step, _total, loss| {
        progress.set_position(step);
        if step % log_every == 0 {
            progress.set_message(format!("loss {loss:.4}"));
            if progress.is_hidden() {
                println!("step {step} loss {loss:.5}");
            }
        }
        !stop.load(Ordering::SeqCst)
    })?;
    progress.finish();
    println!(
        "trained {} steps, final loss {:.5}, {:.0} s; model folder {}",
        summary.steps,
        summary.final_loss,
        summary.elapsed_secs,
        summary.model_dir.display()
    );
    Ok(())
}
