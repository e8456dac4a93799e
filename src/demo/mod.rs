//! `dplan demo-report`: the summary, plots and Markdown report of a `scripts/demo` run.
//!
//! `scripts/demo` starts the simulated arm and the node, and runs the scenario driver
//! (`tools/demo_scenario.py`), which records every topic into a rosbag2 bag and writes a
//! compact JSON trace ([`DemoTrace`]). This module (core, no ROS) turns the trace and the
//! processes' exit statuses into
//!
//! - `summary.json` ([`DemoSummary`]): goals reached / sent, collisions and rejected
//!   trajectories (simulator), mode switches, planning latency p50/p99, duration, exits;
//! - `workspace.png`, `joints.png`, `modes.png` (see [`figures`]);
//! - `README.md`, the page that shows them ([`report::markdown`]).
//!
//! [`run`] returns the summary; the CLI exits with status 1 when it did not pass.

pub mod figures;
pub mod report;
pub mod summary;
pub mod trace;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use crate::robot::PlanarArm;
use crate::{Error, Result};

pub use summary::{latency_samples_ms, DemoSummary, ProcessExit};
pub use trace::{
    DemoTrace, GoalEvent, JointSeries, ModeRequestEvent, NodeTotals, ObstacleEvent, PlanningSample,
    RecordedTopic, RecordingInfo, SimTotals, TRACE_FORMAT_VERSION,
};

/// File names written into the output folder.
pub const SUMMARY_JSON: &str = "summary.json";
pub const REPORT_MD: &str = "README.md";
pub const WORKSPACE_PNG: &str = "workspace.png";
pub const JOINTS_PNG: &str = "joints.png";
pub const MODES_PNG: &str = "modes.png";

/// Arguments of `dplan demo-report`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoReportArgs {
    /// The trace the scenario driver wrote (JSON).
    #[arg(long)]
    pub trace: PathBuf,
    /// Output folder for summary.json, README.md and the PNGs (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// How a process ended: NAME=CODE, or NAME=early:CODE when it ended before the scenario
    /// was over (repeat for each process).
    #[arg(long = "process", value_name = "NAME=STATUS")]
    pub processes: Vec<ProcessExit>,
}

/// Writes the summary, the plots and the page for `args.trace` into `args.out`; returns the
/// summary (whether it passed or not).
pub fn run(args: &DemoReportArgs) -> Result<DemoSummary> {
    let trace = DemoTrace::load(&args.trace)?;
    write_report(&trace, &args.processes, &args.out)
}

/// [`run`] on a trace in memory.
pub fn write_report(
    trace: &DemoTrace,
    processes: &[ProcessExit],
    out: &Path,
) -> Result<DemoSummary> {
    trace.validate()?;
    let arm = PlanarArm::new(trace.robot.clone())?;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let summary = DemoSummary::compute(trace, processes);
    let json = serde_json::to_string_pretty(&summary)
        .map_err(|e| Error::Invalid(format!("serialising the summary: {e}")))?;
    let summary_path = out.join(SUMMARY_JSON);
    std::fs::write(&summary_path, json + "\n").map_err(|e| Error::io(&summary_path, e))?;
    figures::draw_workspace(&out.join(WORKSPACE_PNG), trace, &arm)?;
    figures::draw_joints(&out.join(JOINTS_PNG), trace)?;
    figures::draw_modes(&out.join(MODES_PNG), trace)?;
    let page = out.join(REPORT_MD);
    std::fs::write(&page, report::markdown(trace, &summary)).map_err(|e| Error::io(&page, e))?;
    Ok(summary)
}
