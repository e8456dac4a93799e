//! What the node reports on `/diagnostics`, free of ROS types: planning latency, the last
//! planning call's candidates (kept, rejected by reason), modes and choice, the executor's tick
//! timing, and the active problems. Three statuses: `<node>: inputs`, `<node>: planning`,
//! `<node>: executor`.

use std::collections::{BTreeMap, VecDeque};

use super::core::NodeCore;
use super::problems::{Area, Level};
use crate::planning::{ModeRequest, PlanOutcome, RejectReason, SelectionReason};

/// Samples kept for percentiles.
const WINDOW: usize = 500;

/// A rolling window of samples with percentiles.
#[derive(Debug, Clone, Default)]
pub struct Window {
    samples: VecDeque<f64>,
}

impl Window {
    pub fn push(&mut self, value: f64) {
        if self.samples.len() == WINDOW {
            self.samples.pop_front();
        }
        self.samples.push_back(value);
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    pub fn last(&self) -> Option<f64> {
        self.samples.back().copied()
    }

    /// The `q` quantile (nearest rank, 0..=1); `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let mut sorted: Vec<f64> = self.samples.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
        sorted.get(rank - 1).copied()
    }

    pub fn max(&self) -> Option<f64> {
        self.samples.iter().copied().reduce(f64::max)
    }

    pub fn mean(&self) -> Option<f64> {
        (!self.samples.is_empty())
            .then(|| self.samples.iter().sum::<f64>() / self.samples.len() as f64)
    }
}

/// Planning latency: request to result on the node clock (what the look-ahead must cover), and
/// the planning call's wall time.
#[derive(Debug, Clone, Default)]
pub struct Latency {
    pub node_clock: Window,
    pub wall: Window,
}

impl Latency {
    pub fn record(&mut self, node_clock_secs: f64, wall_secs: f64) {
        self.node_clock.push(node_clock_secs.max(0.0));
        self.wall.push(wall_secs);
    }

    /// The latency to plan for: the 90th percentile of the recent ones, at least the last one.
    pub fn estimate_secs(&self) -> Option<f64> {
        let p90 = self.node_clock.quantile(0.9)?;
        Some(p90.max(self.node_clock.last().unwrap_or(0.0)))
    }
}

/// The last planning call, summarised.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutcomeSummary {
    pub candidates: usize,
    pub kept: usize,
    /// Every rejection reason of every candidate, by kind.
    pub rejected_by_reason: BTreeMap<&'static str, usize>,
    /// `(mode id, label, valid members)`.
    pub modes: Vec<(usize, Option<String>, usize)>,
    pub chosen_mode: Option<usize>,
    /// The chosen candidate's geometric label (or its mode's).
    pub chosen_label: Option<String>,
    pub selection: Option<SelectionReason>,
    pub requested_mode: String,
    pub seed: u64,
    pub sampling_secs: f64,
    pub total_secs: f64,
}

/// Counters and the last outcome.
#[derive(Debug, Clone, Default)]
pub struct PlanningStats {
    pub outcomes: u64,
    pub failed: u64,
    pub no_plan: u64,
    pub late: u64,
    /// Receding-horizon plans not adopted because they would not end sooner than the current.
    pub not_better: u64,
    pub superseded: u64,
    /// Tracking faults (holds at the measured state).
    pub tracking_faults: u64,
    pub last: Option<OutcomeSummary>,
}

/// The reason's kind as reported (`snake_case`, as in the planner's JSON).
pub fn reason_kind(reason: &RejectReason) -> &'static str {
    match reason {
        RejectReason::NonFinite => "non_finite",
        RejectReason::StartError { .. } => "start_error",
        RejectReason::JointLimit { .. } => "joint_limit",
        RejectReason::Collision { .. } => "collision",
        RejectReason::Clearance { .. } => "clearance",
        RejectReason::VerificationFailed { .. } => "verification_failed",
        RejectReason::GoalError { .. } => "goal_error",
        RejectReason::Hallucination { .. } => "hallucination",
        RejectReason::WrongMode { .. } => "wrong_mode",
        RejectReason::TimedPathJointLimit { .. } => "timed_path_joint_limit",
        RejectReason::TimedPathCollision { .. } => "timed_path_collision",
    }
}

impl PlanningStats {
    pub fn record(&mut self, outcome: &PlanOutcome, requested: &ModeRequest) {
        self.outcomes += 1;
        let mut rejected_by_reason = BTreeMap::new();
        for candidate in &outcome.candidates {
            for reason in &candidate.reasons {
                *rejected_by_reason.entry(reason_kind(reason)).or_insert(0) += 1;
            }
        }
        let chosen_label = outcome
            .chosen
            .and_then(|c| outcome.candidates.get(c))
            .and_then(|c| c.label.clone())
            .or_else(|| {
                outcome
                    .modes
                    .iter()
                    .find(|m| Some(m.id) == outcome.chosen_mode)
                    .and_then(|m| m.label.clone())
            });
        self.last = Some(OutcomeSummary {
            candidates: outcome.candidates.len(),
            kept: outcome.candidates.iter().filter(|c| c.valid).count(),
            rejected_by_reason,
            modes: outcome
                .modes
                .iter()
                .map(|m| (m.id, m.label.clone(), m.mass))
                .collect(),
            chosen_mode: outcome.chosen_mode,
            chosen_label,
            selection: outcome.selection,
            requested_mode: String::from(requested.clone()),
            seed: outcome.seed,
            sampling_secs: outcome.timings.sampling_secs,
            total_secs: outcome.timings.total_secs,
        });
    }

    /// `"12 collision, 3 goal_error"` for the last outcome.
    pub fn rejection_summary(&self) -> String {
        let Some(last) = &self.last else {
            return "no outcome".into();
        };
        if last.rejected_by_reason.is_empty() {
            return "no rejections".into();
        }
        last.rejected_by_reason
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The executor's tick timing (wall clock).
#[derive(Debug, Clone, Default)]
pub struct TickStats {
    pub ticks: u64,
    pub published: u64,
    /// |interval - period|, seconds.
    pub period_error: Window,
    /// Intervals, seconds.
    pub interval: Window,
    last_wall_secs: Option<f64>,
}

impl TickStats {
    /// A tick at `wall_secs` (monotonic) for the nominal `period_secs`.
    pub fn tick(&mut self, wall_secs: f64, period_secs: f64) {
        self.ticks += 1;
        if let Some(last) = self.last_wall_secs {
            let interval = wall_secs - last;
            self.interval.push(interval);
            self.period_error.push((interval - period_secs).abs());
        }
        self.last_wall_secs = Some(wall_secs);
    }
}

/// One `diagnostic_msgs/DiagnosticStatus`, without ROS types.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusReport {
    pub name: String,
    pub level: Level,
    pub message: String,
    pub values: Vec<(String, String)>,
}

fn ms(secs: Option<f64>) -> String {
    secs.map_or("n/a".into(), |s| format!("{:.2}", s * 1e3))
}

fn list(values: impl IntoIterator<Item = String>) -> String {
    values.into_iter().collect::<Vec<_>>().join("; ")
}

impl NodeCore {
    /// The three statuses at `now` (node clock); `node_name` prefixes their names.
    pub fn diagnostics(&self, node_name: &str, now: f64, ticks: &TickStats) -> Vec<StatusReport> {
        let status = |area: Area, suffix: &str, ok_message: String, values| {
            let problems: Vec<String> = self
                .problems
                .in_area(area)
                .map(|(key, p)| format!("{key}: {}", p.text))
                .collect();
            let level = self.problems.level(area);
            StatusReport {
                name: format!("{node_name}: {suffix}"),
                level,
                message: if problems.is_empty() {
                    ok_message
                } else {
                    list(problems)
                },
                values,
            }
        };

        let inputs = &self.inputs;
        let ages: Vec<String> = inputs
            .joint_names()
            .iter()
            .zip(inputs.ages_secs(now))
            .map(|(name, age)| {
                format!(
                    "{name}: {}",
                    age.map_or("never".into(), |a| format!("{a:.3} s"))
                )
            })
            .collect();
        let goal = inputs.goal().map_or("none".into(), |(g, _)| {
            format!("({:.3}, {:.3})", g[0], g[1])
        });
        let input_values = vec![
            ("joint_state_age".into(), list(ages)),
            (
                "ignored_joints".into(),
                format!("{:?}", inputs.foreign_joints()),
            ),
            ("goal_m".into(), goal),
            ("obstacles".into(), inputs.obstacles().len().to_string()),
            ("mode_request".into(), String::from(inputs.mode().clone())),
        ];

        let stats = &self.stats;
        let mut planning_values = vec![
            ("latency_ms_last".into(), ms(self.latency.wall.last())),
            ("latency_ms_p50".into(), ms(self.latency.wall.quantile(0.5))),
            ("latency_ms_max".into(), ms(self.latency.wall.max())),
            (
                "request_to_result_ms_p50".into(),
                ms(self.latency.node_clock.quantile(0.5)),
            ),
            ("outcomes".into(), stats.outcomes.to_string()),
            ("failed_calls".into(), stats.failed.to_string()),
            ("no_valid_candidate".into(), stats.no_plan.to_string()),
            ("late_plans".into(), stats.late.to_string()),
            ("kept_current_plan".into(), stats.not_better.to_string()),
            ("superseded".into(), stats.superseded.to_string()),
        ];
        let mut planning_ok = "no goal".to_string();
        if let Some(last) = &stats.last {
            let modes = last.modes.iter().map(|(id, label, mass)| {
                format!("{id}: {} ({mass})", label.as_deref().unwrap_or("-"))
            });
            planning_values.extend([
                ("candidates".into(), last.candidates.to_string()),
                ("kept".into(), last.kept.to_string()),
                ("rejected".into(), (last.candidates - last.kept).to_string()),
                ("rejected_by_reason".into(), stats.rejection_summary()),
                ("modes".into(), list(modes)),
                (
                    "chosen_mode".into(),
                    last.chosen_mode.map_or("none".into(), |m| m.to_string()),
                ),
                (
                    "chosen_mode_label".into(),
                    last.chosen_label.clone().unwrap_or_else(|| "none".into()),
                ),
                (
                    "selection".into(),
                    last.selection.map_or("none".into(), |s| format!("{s:?}")),
                ),
                ("requested_mode".into(), last.requested_mode.clone()),
                ("seed".into(), last.seed.to_string()),
                ("sampling_ms".into(), ms(Some(last.sampling_secs))),
            ]);
            planning_ok = format!(
                "{} of {} candidates kept, {} modes, chosen {}",
                last.kept,
                last.candidates,
                last.modes.len(),
                last.chosen_label.as_deref().unwrap_or("none")
            );
        }

        let motion = self.executor.motion(now);
        let state = if self.goal_reached {
            "goal reached".to_string()
        } else {
            motion.name().to_string()
        };
        let executor_values = vec![
            ("state".into(), state.clone()),
            (
                "remaining_s".into(),
                format!("{:.3}", self.executor.remaining_secs(now)),
            ),
            ("ticks".into(), ticks.ticks.to_string()),
            ("published".into(), ticks.published.to_string()),
            (
                "control_rate_hz_measured".into(),
                ticks
                    .interval
                    .mean()
                    .map_or("n/a".into(), |i| format!("{:.2}", 1.0 / i)),
            ),
            (
                "period_error_ms_p50".into(),
                ms(ticks.period_error.quantile(0.5)),
            ),
            (
                "period_error_ms_p99".into(),
                ms(ticks.period_error.quantile(0.99)),
            ),
            ("period_error_ms_max".into(), ms(ticks.period_error.max())),
            (
                "tracking_error_rad".into(),
                self.tracking
                    .last_error_rad()
                    .map_or("n/a".into(), |e| format!("{e:.4}")),
            ),
            ("tracking_faults".into(), stats.tracking_faults.to_string()),
        ];
        vec![
            status(Area::Inputs, "inputs", "ok".into(), input_values),
            status(Area::Planning, "planning", planning_ok, planning_values),
            status(Area::Executor, "executor", state, executor_values),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_quantiles_and_rolling() {
        let mut w = Window::default();
        assert_eq!(w.quantile(0.5), None);
        for i in 1..=100 {
            w.push(i as f64);
        }
        assert_eq!(w.quantile(0.5), Some(50.0));
        assert_eq!(w.quantile(0.99), Some(99.0));
        assert_eq!(w.max(), Some(100.0));
        assert_eq!(w.mean(), Some(50.5));
        for _ in 0..WINDOW {
            w.push(1.0);
        }
        assert_eq!(w.len(), WINDOW);
        assert_eq!(w.max(), Some(1.0));
    }

    #[test]
    fn latency_estimate_covers_the_last_sample() {
        let mut l = Latency::default();
        assert_eq!(l.estimate_secs(), None);
        for _ in 0..20 {
            l.record(0.1, 0.09);
        }
        l.record(0.5, 0.45);
        assert_eq!(l.estimate_secs(), Some(0.5));
    }

    #[test]
    fn tick_stats_measure_period_error() {
        let mut t = TickStats::default();
        for (i, jitter) in [0.0, 0.001, -0.002, 0.0].iter().enumerate() {
            t.tick(i as f64 * 0.02 + jitter, 0.02);
        }
        assert_eq!(t.ticks, 4);
        assert_eq!(t.interval.len(), 3);
        let max = t.period_error.max().unwrap();
        assert!((max - 0.003).abs() < 1e-12, "{max}");
    }
}
