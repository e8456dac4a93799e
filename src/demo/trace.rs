//! The demo's trace: what the scenario driver (`tools/demo_scenario.py`) saw during a run of
//! `scripts/demo`, as one JSON file (`out/demo/trace.json`). Times are seconds since the
//! scenario started (the driver's monotonic clock); positions are metres and radians in the
//! robot's base frame.
//!
//! The driver writes it; `dplan demo-report` reads it ([`DemoTrace::load`]) and turns it into
//! the summary, the plots and the Markdown report. Unknown keys are errors, so the two sides
//! cannot drift apart silently.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::robot::{CircleObstacle, RobotDescription};
use crate::{Error, Result};

/// The trace format this crate reads and the driver writes.
pub const TRACE_FORMAT_VERSION: u32 = 1;

/// Everything the report needs from one run (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoTrace {
    /// [`TRACE_FORMAT_VERSION`].
    pub format_version: u32,
    /// What planned: the node's `model_path` (a model folder, or `synthetic`).
    pub model: String,
    /// The mode names the node accepts in a mode request, in the model's order.
    pub mode_names: Vec<String>,
    /// The simulated arm (forward kinematics for the plots).
    pub robot: RobotDescription,
    /// Length of the scenario, seconds.
    pub duration_s: f64,
    /// Every goal sent, in order.
    pub goals: Vec<GoalEvent>,
    /// Every obstacle set sent (the whole set each time, after a DELETEALL).
    pub obstacles: Vec<ObstacleEvent>,
    /// Every mode request sent.
    pub mode_requests: Vec<ModeRequestEvent>,
    /// The arm's joint positions as `/joint_states` reported them.
    pub joint_states: JointSeries,
    /// The node's planning status (`/diagnostics`), one entry per status message received.
    pub planning: Vec<PlanningSample>,
    /// The node's counters at the end of the run (its last planning status).
    pub node: Option<NodeTotals>,
    /// The simulator's counters at the end of the run (its last arm status).
    pub sim: Option<SimTotals>,
    /// The rosbag2 recording of every topic.
    pub recording: Option<RecordingInfo>,
    /// The node's parameters that the demo set on top of its parameter file (key, value).
    #[serde(default)]
    pub node_parameters: BTreeMap<String, String>,
    /// Anything the driver wants the report to say (warnings, skipped phases).
    #[serde(default)]
    pub notes: Vec<String>,
}

/// A goal sent on `goal`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoalEvent {
    /// Short name for plots and tables, e.g. `g1`.
    pub name: String,
    /// When it was sent.
    pub t_s: f64,
    /// End-effector target, metres.
    pub goal_m: [f64; 2],
    /// The mode request in force when it was sent (`any` for none).
    pub mode: String,
    /// When the arm was first at rest within the tolerance of it (none: not reached).
    pub reached_t_s: Option<f64>,
    /// How long the driver waited for it at most, seconds.
    pub timeout_s: f64,
}

/// The obstacle set from `t_s` on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObstacleEvent {
    pub t_s: f64,
    pub circles: Vec<CircleObstacle>,
}

/// A mode request sent on `mode_request`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModeRequestEvent {
    pub t_s: f64,
    pub mode: String,
}

/// Joint positions over time: `positions_rad[i]` (one value per joint of `names`) at `t_s[i]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JointSeries {
    pub names: Vec<String>,
    pub t_s: Vec<f64>,
    pub positions_rad: Vec<Vec<f64>>,
}

/// One planning status of the node (`<node>: planning` in `/diagnostics`, docs/NODE.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanningSample {
    /// When the status arrived.
    pub t_s: f64,
    /// Planning calls so far (`outcomes` + `failed_calls`).
    pub calls: u64,
    /// The last call's wall-clock latency (`latency_ms_last`), milliseconds.
    pub latency_ms: Option<f64>,
    /// The chosen candidate's geometric label (`chosen_mode_label`; none when nothing was chosen).
    pub chosen_mode_label: Option<String>,
    /// The mode request the last call served (`requested_mode`).
    pub requested_mode: Option<String>,
    /// Status level: 0 ok, 1 warn, 2 error.
    pub level: u8,
    pub message: String,
}

/// The node's planning counters at the end (docs/NODE.md, `/diagnostics`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeTotals {
    pub outcomes: u64,
    pub failed_calls: u64,
    pub no_valid_candidate: u64,
    pub late_plans: u64,
    /// The node's own median over its recent calls (`latency_ms_p50`), milliseconds.
    pub latency_ms_p50: Option<f64>,
    /// The node's maximum over its recent calls (`latency_ms_max`), milliseconds.
    pub latency_ms_max: Option<f64>,
    /// Measured control rate (`control_rate_hz_measured`, executor status).
    pub control_rate_hz: Option<f64>,
}

/// The simulator's counters at the end (its `arm` status in `/diagnostics`, docs/SIM.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimTotals {
    pub collisions: u64,
    pub trajectories_accepted: u64,
    pub trajectories_rejected: u64,
    /// Smallest clearance between the arm and an obstacle seen, metres (none: no obstacle).
    pub min_clearance_m: Option<f64>,
    pub max_tracking_error_rad: Option<f64>,
}

/// The recording (`out/demo/recording/`), as read back after it was closed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingInfo {
    /// Bag folder, relative to the trace's folder.
    pub path: String,
    /// Storage plugin (`mcap`).
    pub storage: String,
    /// Messages per topic, as read back.
    pub topics: BTreeMap<String, RecordedTopic>,
}

/// One topic of the recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedTopic {
    pub msgtype: String,
    pub messages: u64,
}

impl RecordingInfo {
    /// Messages in all topics.
    pub fn messages(&self) -> u64 {
        self.topics.values().map(|t| t.messages).sum()
    }
}

impl DemoTrace {
    /// Reads and validates a trace file.
    pub fn load(path: &Path) -> Result<DemoTrace> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let trace: DemoTrace = serde_json::from_str(&text)
            .map_err(|e| Error::Invalid(format!("{}: not a demo trace: {e}", path.display())))?;
        trace
            .validate()
            .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        Ok(trace)
    }

    /// Checks the version, the robot, and that every series is consistent and finite.
    pub fn validate(&self) -> Result<()> {
        if self.format_version != TRACE_FORMAT_VERSION {
            return Err(Error::config(
                "format_version",
                format!(
                    "expected {TRACE_FORMAT_VERSION}, found {}",
                    self.format_version
                ),
            ));
        }
        self.robot.validate()?;
        if !(self.duration_s >= 0.0 && self.duration_s.is_finite()) {
            return Err(Error::config(
                "duration_s",
                format!("must be finite and >= 0, found {}", self.duration_s),
            ));
        }
        let dof = self.robot.joints.len();
        let series = &self.joint_states;
        if series.names != self.robot.joint_names() {
            return Err(Error::config(
                "joint_states.names",
                format!(
                    "expected the robot's joints {:?}, found {:?}",
                    self.robot.joint_names(),
                    series.names
                ),
            ));
        }
        if series.t_s.len() != series.positions_rad.len() {
            return Err(Error::config(
                "joint_states",
                format!(
                    "{} times but {} position rows",
                    series.t_s.len(),
                    series.positions_rad.len()
                ),
            ));
        }
        for (i, row) in series.positions_rad.iter().enumerate() {
            if row.len() != dof || !row.iter().all(|v| v.is_finite()) {
                return Err(Error::config(
                    format!("joint_states.positions_rad[{i}]"),
                    format!("expected {dof} finite values, found {row:?}"),
                ));
            }
        }
        let times = series
            .t_s
            .iter()
            .map(|t| ("joint_states.t_s", *t))
            .chain(self.goals.iter().map(|g| ("goals[].t_s", g.t_s)))
            .chain(self.obstacles.iter().map(|o| ("obstacles[].t_s", o.t_s)))
            .chain(
                self.mode_requests
                    .iter()
                    .map(|m| ("mode_requests[].t_s", m.t_s)),
            )
            .chain(self.planning.iter().map(|p| ("planning[].t_s", p.t_s)));
        for (key, t) in times {
            if !t.is_finite() {
                return Err(Error::config(key, format!("must be finite, found {t}")));
            }
        }
        for (i, goal) in self.goals.iter().enumerate() {
            if !goal.goal_m.iter().all(|v| v.is_finite()) {
                return Err(Error::config(
                    format!("goals[{i}].goal_m"),
                    format!("must be finite, found {:?}", goal.goal_m),
                ));
            }
        }
        for (i, event) in self.obstacles.iter().enumerate() {
            for (j, circle) in event.circles.iter().enumerate() {
                circle.validate(&format!("obstacles[{i}].circles[{j}]"))?;
            }
        }
        Ok(())
    }

    /// The obstacle set in force at `t_s` (empty before the first one).
    pub fn obstacles_at(&self, t_s: f64) -> &[CircleObstacle] {
        self.obstacles
            .iter()
            .take_while(|o| o.t_s <= t_s)
            .last()
            .map_or(&[], |o| o.circles.as_slice())
    }
}
