//! The demo's end summary: goals, collisions, mode switches, planning latency, rejected
//! trajectories, the processes' exits, and whether the run passed.

use std::fmt::Write as _;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::trace::DemoTrace;
use crate::eval::percentile;
use crate::Error;

/// How one process of the demo ended, as `scripts/demo` saw it (`--process NAME=STATUS`):
/// `NAME=CODE` after the script stopped it (SIGINT) or after it finished by itself (the
/// scenario driver), `NAME=early:CODE` when it ended by itself before the scenario was over.
/// `CODE` is the exit status (128 + N for signal N, as bash reports it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessExit {
    pub name: String,
    pub code: i32,
    /// Ended before the scenario was over (a crash, for the node and the simulator).
    pub early: bool,
}

impl ProcessExit {
    /// A clean end: status 0, not early.
    pub fn ok(&self) -> bool {
        self.code == 0 && !self.early
    }
}

impl FromStr for ProcessExit {
    type Err = Error;

    fn from_str(text: &str) -> crate::Result<ProcessExit> {
        let bad = |why: &str| {
            Error::Invalid(format!(
                "process `{text}`: {why}; expected NAME=CODE or NAME=early:CODE, e.g. node=0"
            ))
        };
        let (name, status) = text.split_once('=').ok_or_else(|| bad("no `=`"))?;
        if name.trim().is_empty() {
            return Err(bad("empty name"));
        }
        let (early, code) = match status.strip_prefix("early:") {
            Some(code) => (true, code),
            None => (false, status),
        };
        let code = code
            .trim()
            .parse::<i32>()
            .map_err(|_| bad("the status is not an integer"))?;
        Ok(ProcessExit {
            name: name.trim().to_string(),
            code,
            early,
        })
    }
}

/// The end summary of one demo run (`summary.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoSummary {
    /// No collision, every process ended cleanly, the simulator reported, a goal was reached.
    pub passed: bool,
    /// Why it did not pass (empty when it did).
    pub problems: Vec<String>,
    pub model: String,
    pub duration_s: f64,
    pub goals_sent: usize,
    pub goals_reached: usize,
    /// Collisions the simulator counted (none: it never reported).
    pub collisions: Option<u64>,
    pub min_clearance_m: Option<f64>,
    /// Trajectories the simulated controller rejected (none: it never reported).
    pub rejected_trajectories: Option<u64>,
    pub accepted_trajectories: Option<u64>,
    pub mode_requests: usize,
    /// Changes of the chosen mode label between consecutive plans that chose one.
    pub mode_switches: usize,
    /// The chosen mode labels in order, consecutive repeats merged.
    pub mode_sequence: Vec<String>,
    /// Planning calls the node made (its counters at the end).
    pub planning_calls: Option<u64>,
    /// Calls whose latency the driver saw (each status carries the last call's latency).
    pub latency_samples: usize,
    pub latency_ms_p50: Option<f64>,
    pub latency_ms_p99: Option<f64>,
    pub latency_ms_max: Option<f64>,
    /// Messages in the recording (none: no recording).
    pub recorded_messages: Option<u64>,
    pub recorded_topics: usize,
    pub processes: Vec<ProcessExit>,
}

/// Whether a label names a chosen mode (the node reports `none` when nothing was chosen).
fn is_label(label: Option<&str>) -> Option<&str> {
    label.filter(|l| !l.is_empty() && *l != "none")
}

/// The chosen labels of the distinct planning calls, in order.
fn chosen_labels(trace: &DemoTrace) -> Vec<&str> {
    let mut labels = Vec::new();
    let mut last_calls = 0;
    for sample in &trace.planning {
        if sample.calls <= last_calls {
            continue;
        }
        last_calls = sample.calls;
        if let Some(label) = is_label(sample.chosen_mode_label.as_deref()) {
            labels.push(label);
        }
    }
    labels
}

/// One latency per distinct planning call seen: a status whose call counter moved on carries
/// the latency of the newest call.
pub fn latency_samples_ms(trace: &DemoTrace) -> Vec<f64> {
    let mut out = Vec::new();
    let mut last_calls = 0;
    for sample in &trace.planning {
        if sample.calls > last_calls {
            last_calls = sample.calls;
            out.extend(sample.latency_ms.filter(|v| v.is_finite()));
        }
    }
    out
}

impl DemoSummary {
    /// The summary of `trace` with the processes' exits.
    pub fn compute(trace: &DemoTrace, processes: &[ProcessExit]) -> DemoSummary {
        let labels = chosen_labels(trace);
        let mut mode_sequence: Vec<String> = Vec::new();
        for label in &labels {
            if mode_sequence.last().map(String::as_str) != Some(label) {
                mode_sequence.push((*label).to_string());
            }
        }
        let latencies = latency_samples_ms(trace);
        let goals_reached = trace
            .goals
            .iter()
            .filter(|g| g.reached_t_s.is_some())
            .count();
        let sim = trace.sim.as_ref();
        let mut problems = Vec::new();
        match sim.map(|s| s.collisions) {
            None => problems.push("the simulator never reported (collisions unknown)".to_string()),
            Some(0) => {}
            Some(n) => problems.push(format!("{n} collisions in the simulator")),
        }
        for p in processes.iter().filter(|p| !p.ok()) {
            problems.push(if p.early {
                format!(
                    "{} ended before the scenario was over (status {})",
                    p.name, p.code
                )
            } else {
                format!("{} exited with status {}", p.name, p.code)
            });
        }
        if goals_reached == 0 {
            problems.push(format!("no goal reached ({} sent)", trace.goals.len()));
        }
        DemoSummary {
            passed: problems.is_empty(),
            problems,
            model: trace.model.clone(),
            duration_s: trace.duration_s,
            goals_sent: trace.goals.len(),
            goals_reached,
            collisions: sim.map(|s| s.collisions),
            min_clearance_m: sim.and_then(|s| s.min_clearance_m),
            rejected_trajectories: sim.map(|s| s.trajectories_rejected),
            accepted_trajectories: sim.map(|s| s.trajectories_accepted),
            mode_requests: trace.mode_requests.len(),
            mode_switches: mode_sequence.len().saturating_sub(1),
            mode_sequence,
            planning_calls: trace.node.as_ref().map(|n| n.outcomes + n.failed_calls),
            latency_samples: latencies.len(),
            latency_ms_p50: percentile(&latencies, 0.5),
            latency_ms_p99: percentile(&latencies, 0.99),
            latency_ms_max: latencies.iter().copied().reduce(f64::max),
            recorded_messages: trace.recording.as_ref().map(|r| r.messages()),
            recorded_topics: trace.recording.as_ref().map_or(0, |r| r.topics.len()),
            processes: processes.to_vec(),
        }
    }

    /// A few lines for the terminal.
    pub fn text(&self) -> String {
        let opt = |v: Option<u64>| v.map_or_else(|| "unknown".to_string(), |v| v.to_string());
        let ms = |v: Option<f64>| v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.1} ms"));
        let mut t = String::new();
        let verdict = if self.passed { "PASSED" } else { "FAILED" };
        let _ = writeln!(
            t,
            "demo {verdict}: model {}, {:.1} s",
            self.model, self.duration_s
        );
        let _ = writeln!(
            t,
            "  goals reached       {} / {}",
            self.goals_reached, self.goals_sent
        );
        let clearance = self
            .min_clearance_m
            .map_or(String::new(), |c| format!(" (min clearance {c:.3} m)"));
        let _ = writeln!(
            t,
            "  collisions          {}{clearance}",
            opt(self.collisions)
        );
        let _ = writeln!(
            t,
            "  mode switches       {} ({}; {} mode requests)",
            self.mode_switches,
            if self.mode_sequence.is_empty() {
                "no mode chosen".to_string()
            } else {
                self.mode_sequence.join(" -> ")
            },
            self.mode_requests
        );
        let _ = writeln!(
            t,
            "  planning latency    p50 {}, p99 {} ({} of {} calls seen)",
            ms(self.latency_ms_p50),
            ms(self.latency_ms_p99),
            self.latency_samples,
            opt(self.planning_calls)
        );
        let _ = writeln!(
            t,
            "  rejected trajectories {} (of {} received by the controller)",
            opt(self.rejected_trajectories),
            opt(self
                .accepted_trajectories
                .zip(self.rejected_trajectories)
                .map(|(a, r)| a + r))
        );
        let _ = writeln!(
            t,
            "  recording           {} messages on {} topics",
            opt(self.recorded_messages),
            self.recorded_topics
        );
        let processes: Vec<String> = self
            .processes
            .iter()
            .map(|p| {
                let early = if p.early { " (early)" } else { "" };
                format!("{} {}{early}", p.name, p.code)
            })
            .collect();
        if !processes.is_empty() {
            let _ = writeln!(t, "  exit statuses       {}", processes.join(", "));
        }
        for problem in &self.problems {
            let _ = writeln!(t, "  problem: {problem}");
        }
        t
    }
}
