//! JointTrajectoryController (Jazzy) executing topic messages, on plain types.
//!
//! - [`TrajectoryController::receive`] validates a message at its arrival ([`validate`]) and
//!   keeps it as the pending one; a newer valid message replaces it (JTC's realtime buffer:
//!   "always replace old msg with new one").
//! - [`TrajectoryController::update`] (each controller-manager cycle at `time`, `period` after
//!   the previous one) first adopts the pending message: fills missing joints with the last
//!   command, sorts to controller order, and replaces the running trajectory. On a
//!   trajectory's first sample its start time is `time` when the stamp is zero, and the "point
//!   before the trajectory" is the last *commanded* state at the time it was commanded (the
//!   previous cycle; `interpolate_from_desired_state: true`) or the *measured* state at `time`
//!   (false). The trajectory clock starts at `time` and then advances by each cycle's
//!   `period`. The command written to the hardware is the trajectory sampled **one update
//!   period ahead** (the setpoint for the end of the cycle, ros2_controllers PR #1306, and the
//!   last command's own time, PR #780). Before the first point's time the command splines from
//!   the point before to the first point; then between the points; after the last point it
//!   holds the last point (with its velocities, zero accelerations). A non-zero stamp in the
//!   past samples mid-trajectory, without the point before (as JTC, which may then jump).
//! - Before any message the controller holds the initial positions (JTC starts with a hold
//!   trajectory at the state it reads on activation, `start_with_holding`).
//!
//! Not modelled: the action interface, path/goal tolerances and aborts (the topic interface
//! ignores goal tolerances; path tolerances default to off), `cmd_timeout`, speed scaling,
//! angle wrap-around of continuous joints, interpolation method `none`, and integration of
//! velocity-only goals. Older JTC releases (before PRs #780 and #1306) sampled at `time` and put
//! the point before at `time`, which repeats the last command for one cycle at every new
//! message.

use super::spline::interpolate;
use super::trajectory::{JointTrajectory, TrajectoryPoint};
use super::validate::{to_controller_order, validate, JtcSettings, Rejection, F32_EPSILON};
use crate::{Error, Result};

/// The trajectory being executed.
#[derive(Debug, Clone)]
struct Active {
    /// Controller order, every joint.
    msg: JointTrajectory,
    /// Absolute time of `time_from_start = 0`; set on the first sample for a zero stamp.
    start_secs: f64,
    /// The point before the trajectory and its time, set on the first sample.
    before: Option<(f64, TrajectoryPoint)>,
    /// The trajectory clock (JTC's `traj_time_`): the first sample's time plus the periods.
    traj_secs: f64,
}

/// Counters of received messages.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReceiveStats {
    pub accepted: u64,
    pub rejected: u64,
    /// Adopted messages (a pending one replaced before an update is accepted, not adopted).
    pub adopted: u64,
    pub last_rejection: Option<Rejection>,
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct TrajectoryController {
    settings: JtcSettings,
    pending: Option<JointTrajectory>,
    active: Option<Active>,
    /// The last command (positions, velocities, accelerations; controller order) and the
    /// time of the update that computed it.
    commanded: TrajectoryPoint,
    commanded_secs: Option<f64>,
    /// The trajectory sampled at the update's own time (JTC's `state_desired_`).
    desired: TrajectoryPoint,
    /// The nominal update period (JTC's `update_period_`), seconds.
    update_period_secs: f64,
    last_update_secs: Option<f64>,
    stats: ReceiveStats,
}

impl TrajectoryController {
    /// A controller holding `initial_positions` (controller order), updated every
    /// `update_period_secs` (the controller manager's `update_rate`).
    pub fn new(
        settings: JtcSettings,
        initial_positions: Vec<f64>,
        update_period_secs: f64,
    ) -> Result<Self> {
        settings.validate()?;
        if !(update_period_secs > 0.0 && update_period_secs.is_finite()) {
            return Err(Error::config(
                "update_rate_hz",
                format!("the update period must be finite and > 0, found {update_period_secs} s"),
            ));
        }
        if initial_positions.len() != settings.joints.len() {
            return Err(Error::Shape {
                what: "controller initial positions".into(),
                expected: vec![settings.joints.len()],
                found: vec![initial_positions.len()],
            });
        }
        Ok(TrajectoryController {
            settings,
            pending: None,
            active: None,
            desired: TrajectoryPoint::at_rest(initial_positions.clone()),
            commanded: TrajectoryPoint::at_rest(initial_positions),
            commanded_secs: None,
            update_period_secs,
            last_update_secs: None,
            stats: ReceiveStats::default(),
        })
    }

    pub fn settings(&self) -> &JtcSettings {
        &self.settings
    }

    /// Validates `msg` at `now_secs` (controller clock) and, if valid, makes it the pending
    /// message (replacing one not yet adopted).
    pub fn receive(
        &mut self,
        msg: &JointTrajectory,
        now_secs: f64,
    ) -> std::result::Result<(), Rejection> {
        match validate(msg, &self.settings, now_secs) {
            Ok(()) => {
                self.stats.accepted += 1;
                self.pending = Some(msg.clone());
                Ok(())
            }
            Err(rejection) => {
                self.stats.rejected += 1;
                self.stats.last_rejection = Some(rejection.clone());
                Err(rejection)
            }
        }
    }

    pub fn stats(&self) -> &ReceiveStats {
        &self.stats
    }

    /// The last command (controller order): the trajectory one update period after the last
    /// update.
    pub fn commanded(&self) -> &TrajectoryPoint {
        &self.commanded
    }

    /// The trajectory at the last update's time (controller order).
    pub fn desired(&self) -> &TrajectoryPoint {
        &self.desired
    }

    /// Whether a trajectory (not the initial hold) has been adopted.
    pub fn has_trajectory(&self) -> bool {
        self.active.is_some()
    }

    /// Time left until the active trajectory's last point, seconds (0 when none or done; for a
    /// trajectory not sampled yet with a zero stamp: its whole duration).
    pub fn remaining_secs(&self, now_secs: f64) -> f64 {
        let Some(active) = &self.active else {
            return 0.0;
        };
        let last = active
            .msg
            .points
            .last()
            .map_or(0.0, |p| p.time_from_start_secs);
        let (start, clock) = match (&active.before, active.msg.stamp_secs == 0.0) {
            (None, true) => (now_secs, now_secs),
            (None, false) => (active.start_secs, now_secs),
            (Some(_), _) => (active.start_secs, active.traj_secs),
        };
        (start + last - clock).max(0.0)
    }

    /// One controller cycle at `now_secs` (see the module docs): adopts a pending message,
    /// samples the active trajectory and returns the new command (controller order).
    /// `measured`: the state read from the hardware this cycle (positions, velocities), the
    /// point before a new trajectory when `interpolate_from_desired_state` is false.
    pub fn update(&mut self, now_secs: f64, measured: &TrajectoryPoint) -> &TrajectoryPoint {
        if let Some(msg) = self.pending.take() {
            let msg = to_controller_order(&msg, &self.settings, &self.commanded.positions);
            self.stats.adopted += 1;
            self.active = Some(Active {
                start_secs: msg.stamp_secs,
                msg,
                before: None,
                traj_secs: now_secs,
            });
        }
        let period = self.last_update_secs.map_or(0.0, |last| now_secs - last);
        self.last_update_secs = Some(now_secs);
        if let Some(active) = &mut self.active {
            if active.before.is_none() {
                let before = if self.settings.interpolate_from_desired_state {
                    // JTC takes a last-command time of (almost) zero as "never commanded".
                    let at = self
                        .commanded_secs
                        .filter(|t| t.abs() >= F32_EPSILON)
                        .unwrap_or(now_secs);
                    (at, self.commanded.clone())
                } else {
                    (now_secs, measured.clone())
                };
                active.before = Some(before);
                active.traj_secs = now_secs;
                if active.msg.stamp_secs == 0.0 {
                    active.start_secs = now_secs;
                }
            } else {
                active.traj_secs += period;
            }
            if let Some(desired) = sample(active, active.traj_secs) {
                self.desired = desired;
            }
            if let Some(next) = sample(active, active.traj_secs + self.update_period_secs) {
                self.commanded = next;
            }
        } else {
            self.desired = self.commanded.clone();
        }
        self.commanded_secs = Some(now_secs);
        &self.commanded
    }
}

/// JTC's `Trajectory::sample` at `t` (after the first sample set `before`); `None` before the
/// point before the trajectory (the command is then left unchanged, as JTC does).
fn sample(active: &Active, t: f64) -> Option<TrajectoryPoint> {
    let (before_secs, before) = active.before.as_ref()?;
    if t < *before_secs {
        return None;
    }
    let points = &active.msg.points;
    let first = points.first()?;
    let first_secs = active.start_secs + first.time_from_start_secs;
    if t < first_secs {
        return Some(interpolate(*before_secs, before, first_secs, first, t));
    }
    for pair in points.windows(2) {
        let t0 = active.start_secs + pair[0].time_from_start_secs;
        let t1 = active.start_secs + pair[1].time_from_start_secs;
        if t >= t0 && t < t1 {
            return Some(interpolate(t0, &pair[0], t1, &pair[1], t));
        }
    }
    let last = points.last()?;
    let n = last.positions.len();
    Some(TrajectoryPoint {
        positions: last.positions.clone(),
        velocities: if last.velocities.is_empty() {
            vec![0.0; n]
        } else {
            last.velocities.clone()
        },
        accelerations: if last.accelerations.is_empty() {
            vec![0.0; n]
        } else {
            last.accelerations.clone()
        },
        effort: Vec::new(),
        time_from_start_secs: 0.0,
    })
}
