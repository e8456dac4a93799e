//! The executor's side of the node, free of ROS types: which timed trajectory the robot follows
//! now (a plan, a controlled stop along it, or a hold), how a new plan takes over without a
//! jump, and the points a `JointTrajectory` carries at each control tick.
//!
//! Times are absolute seconds on the node's clock (ROS time, so sim time works). The active
//! trajectory is a [`Plan`] whose `start_stamp_secs` is the absolute time of its point 0; before
//! point 0 and after its last point the robot is at rest at the first/last point.
//!
//! Published points (see [`Executor::command`]): the active trajectory sampled every control
//! period from one period after `now` (the first point is never closer than one period, as
//! JointTrajectoryController wants for a smooth start), plus every point of the trajectory
//! itself after that, then its last point with velocity exactly zero. Positions and velocities:
//! the controller splines them cubically, and since every published segment lies on one cubic
//! segment of the trajectory, its spline is that cubic, within the joint limits as the plan is
//! (sampling only on a grid would cut across the trajectory's segments, and the controller's
//! cubic through such samples reached 1.6 x the acceleration limit). Strictly increasing times.

use super::braking::braking_points;
use crate::planning::{CommandedState, Plan, PlanPoint};

/// Positions or velocities closer than this are the same state when a plan takes over (the
/// planner starts a plan exactly at the commanded state, so only rounding differs).
pub const CONTINUITY_TOLERANCE: f64 = 1e-6;
/// Velocities below this (rad/s) count as rest.
pub const REST_VELOCITY_RAD_S: f64 = 1e-9;
/// Most grid points in one published trajectory (the trajectory's own points come on top); a
/// longer remainder is sampled more coarsely.
pub const MAX_POINTS: usize = 500;

/// One point of a published trajectory.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandPoint {
    /// Seconds after the message's (zero) stamp: after the controller receives it.
    pub time_from_start_secs: f64,
    /// Radians, robot joint order.
    pub positions: Vec<f64>,
    /// rad/s, robot joint order.
    pub velocities: Vec<f64>,
}

/// What the active trajectory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Motion {
    /// Following a plan from the planner (possibly still ahead of its start).
    Following,
    /// Braking along the previous plan's path to a stop.
    Stopping,
    /// At rest: a hold, a finished plan or a finished stop.
    Holding,
}

impl Motion {
    pub fn name(self) -> &'static str {
        match self {
            Motion::Following => "following",
            Motion::Stopping => "stopping",
            Motion::Holding => "holding",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plan,
    Stop,
    Hold,
}

/// Why a new plan cannot take over.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AdoptError {
    #[error(
        "plan starts {late_by_secs:.3} s in the past while the robot moves; it would jump \
         (replanning with a longer look-ahead)"
    )]
    Late { late_by_secs: f64 },
    #[error(
        "plan starts at a state {mismatch:.2e} away from the commanded state at its start \
         (the commanded trajectory changed while planning)"
    )]
    Discontinuous { mismatch: f64 },
    #[error("plan is invalid: {0}")]
    Invalid(String),
}

/// The active trajectory and the rules for replacing it.
#[derive(Debug, Clone)]
pub struct Executor {
    period_secs: f64,
    max_accelerations_rad_s2: Vec<f64>,
    active: Option<(Plan, Kind)>,
    /// When the last message was published: the controller follows its spline until the next
    /// message arrives, one period later (at the first point, or just before it when that is a
    /// knot up to 0.1 period later), whatever that message says, so changes take effect from
    /// then on.
    sent_at_secs: Option<f64>,
}

impl Executor {
    /// An executor publishing every `period_secs`, braking within `max_accelerations_rad_s2`
    /// (robot order).
    pub fn new(period_secs: f64, max_accelerations_rad_s2: Vec<f64>) -> Self {
        Executor {
            period_secs,
            max_accelerations_rad_s2,
            active: None,
            sent_at_secs: None,
        }
    }

    /// The earliest time from which the commanded curve may change, at `now_secs`: the next
    /// tick (one period after the last published message) when it is still ahead (and within
    /// two periods: a clock that jumped back voids it), else `now_secs`. Until then the
    /// controller follows what it was sent.
    pub fn committed_until(&self, now_secs: f64) -> f64 {
        match self.sent_at_secs.map(|t| t + self.period_secs) {
            Some(tick) if tick > now_secs && tick <= now_secs + 2.0 * self.period_secs => tick,
            _ => now_secs,
        }
    }

    pub fn period_secs(&self) -> f64 {
        self.period_secs
    }

    /// Whether there is a trajectory (after the first valid joint state).
    pub fn is_active(&self) -> bool {
        self.active.is_some()
    }

    /// The active trajectory (absolute start stamp).
    pub fn active_plan(&self) -> Option<&Plan> {
        self.active.as_ref().map(|(plan, _)| plan)
    }

    /// Holds at `positions` from `now` on, replacing whatever was active.
    pub fn hold_at(&mut self, joint_names: Vec<String>, positions: Vec<f64>, now_secs: f64) {
        let velocities = vec![0.0; positions.len()];
        let plan = Plan {
            joint_names,
            start_stamp_secs: now_secs,
            points: vec![PlanPoint {
                time_from_start_secs: 0.0,
                positions,
                velocities,
            }],
        };
        self.active = Some((plan, Kind::Hold));
    }

    /// The commanded positions and velocities at absolute time `t_secs`.
    pub fn state_at(&self, t_secs: f64) -> Option<(Vec<f64>, Vec<f64>)> {
        self.active
            .as_ref()
            .map(|(plan, _)| plan.state_at(t_secs - plan.start_stamp_secs))
    }

    /// The commanded state at `t_secs`, as the planner's stitching input.
    pub fn commanded_at(&self, t_secs: f64) -> Option<CommandedState> {
        self.state_at(t_secs)
            .map(|(positions_rad, velocities_rad_s)| CommandedState {
                positions_rad,
                velocities_rad_s,
                stamp_secs: t_secs,
            })
    }

    /// What the robot does at `now_secs`.
    pub fn motion(&self, now_secs: f64) -> Motion {
        match &self.active {
            None => Motion::Holding,
            Some((plan, kind)) => {
                let running = now_secs < plan.start_stamp_secs + plan.duration_secs();
                match kind {
                    Kind::Plan if running || now_secs < plan.start_stamp_secs => Motion::Following,
                    Kind::Stop if running => Motion::Stopping,
                    _ => Motion::Holding,
                }
            }
        }
    }

    /// Seconds of the active trajectory left after `now_secs` (0 when at rest).
    pub fn remaining_secs(&self, now_secs: f64) -> f64 {
        self.active.as_ref().map_or(0.0, |(plan, _)| {
            (plan.start_stamp_secs + plan.duration_secs() - now_secs).max(0.0)
        })
    }

    /// Whether the commanded state is at rest from `from_secs` to `to_secs` (positions equal,
    /// velocities zero at both ends and no motion in between).
    fn at_rest_between(&self, from_secs: f64, to_secs: f64) -> bool {
        let Some((plan, _)) = &self.active else {
            return true;
        };
        let (a, b) = (
            from_secs - plan.start_stamp_secs,
            to_secs - plan.start_stamp_secs,
        );
        let moving_inside = plan.points.iter().any(|p| {
            p.time_from_start_secs > a
                && p.time_from_start_secs < b
                && p.velocities.iter().any(|v| v.abs() > REST_VELOCITY_RAD_S)
        });
        let (pa, va) = plan.state_at(a);
        let (pb, vb) = plan.state_at(b);
        !moving_inside
            && max_abs_diff(&pa, &pb) <= CONTINUITY_TOLERANCE
            && va.iter().chain(&vb).all(|v| v.abs() <= REST_VELOCITY_RAD_S)
    }

    /// Makes `plan` (absolute `start_stamp_secs`) the active trajectory. Until its start the
    /// previous trajectory continues; the plan must start at exactly the commanded state at its
    /// start stamp (the planner stitches from [`Self::commanded_at`]). A plan whose start is
    /// before the tick after the next message (one period after `now_secs`, or later, see
    /// [`Self::committed_until`]) is taken only if the robot is at rest at that state from the
    /// plan's start to then; it is re-stamped to start then (no jump), else
    /// [`AdoptError::Late`].
    pub fn adopt(&mut self, plan: Plan, now_secs: f64) -> Result<(), AdoptError> {
        plan.validate()
            .map_err(|e| AdoptError::Invalid(e.to_string()))?;
        let Some(first) = plan.points.first().cloned() else {
            return Err(AdoptError::Invalid("no points".into()));
        };
        let mut plan = shift_to_zero(plan);
        let Some((old, _)) = &self.active else {
            plan.start_stamp_secs = plan.start_stamp_secs.max(now_secs);
            self.active = Some((plan, Kind::Plan));
            return Ok(());
        };
        // Until the next tick the controller follows what it was sent, and the message
        // published now it follows until the tick after (one period after `now`): a plan that
        // took over before then would change the curve the controller follows, which it can
        // only join by cutting across when the next message comes (a start from rest at the
        // limit: 0.6 mrad at once, 1 mrad when the message is 6 ms late, 5.4 mrad when it is
        // two periods late), however smooth the plan itself is.
        let committed_secs = self
            .committed_until(now_secs)
            .max(now_secs + self.period_secs);
        let mut switch_secs = plan.start_stamp_secs;
        if switch_secs < committed_secs {
            let first_at_rest = first
                .velocities
                .iter()
                .all(|v| v.abs() <= REST_VELOCITY_RAD_S);
            if !(first_at_rest && self.at_rest_between(switch_secs, committed_secs)) {
                return Err(AdoptError::Late {
                    late_by_secs: committed_secs - switch_secs,
                });
            }
            switch_secs = committed_secs;
            plan.start_stamp_secs = committed_secs;
        }
        let (positions, velocities) = old.state_at(switch_secs - old.start_stamp_secs);
        let mismatch = max_abs_diff(&positions, &first.positions)
            .max(max_abs_diff(&velocities, &first.velocities));
        if !(mismatch <= CONTINUITY_TOLERANCE) {
            return Err(AdoptError::Discontinuous { mismatch });
        }
        let composite = compose(old, &plan, switch_secs, now_secs);
        self.active = Some((composite, Kind::Plan));
        Ok(())
    }

    /// Stops the robot: brakes along the active trajectory's path from the next tick when the
    /// stop comes between ticks ([`Self::committed_until`]; `now_secs` at a tick)
    /// and holds at the end. Nothing changes when already holding or stopping. Returns whether
    /// the trajectory changed. The braking is a time scaling `s(tau)` of the path (see
    /// [`braking_points`]) that keeps every joint's *total* acceleration within its limit.
    pub fn stop(&mut self, now_secs: f64) -> bool {
        let Some((old, kind)) = &self.active else {
            return false;
        };
        if *kind != Kind::Plan {
            return false;
        }
        // Braking starts at the next tick (the controller follows the last message until the
        // next one comes, whatever that says): braking from an earlier time would leave the
        // controller a segment off the curve, from where it is to the next message's first
        // point.
        let from_secs = self.committed_until(now_secs);
        let t0 = from_secs - old.start_stamp_secs;
        let (q0, v0) = old.state_at(t0);
        let names = old.joint_names.clone();
        if v0.iter().all(|v| v.abs() <= REST_VELOCITY_RAD_S) {
            // At rest then (finished, or not started yet): hold there.
            self.hold_at(names, q0, now_secs);
            return true;
        }
        let points = braking_points(old, t0, &self.max_accelerations_rad_s2, self.period_secs);
        let braking = Plan {
            joint_names: names,
            start_stamp_secs: from_secs,
            points,
        };
        let stop = if from_secs > now_secs {
            compose(old, &braking, from_secs, now_secs)
        } else {
            braking
        };
        self.active = Some((stop, Kind::Stop));
        true
    }

    /// The braking trajectory being followed, if the executor is stopping.
    pub fn stopping_plan(&self) -> Option<&Plan> {
        match &self.active {
            Some((plan, Kind::Stop)) => Some(plan),
            _ => None,
        }
    }

    /// The points to publish at `now_secs` (see the module docs); `None` before the first hold.
    /// The time is remembered (see [`Self::committed_until`]).
    pub fn command(&mut self, now_secs: f64) -> Option<Vec<CommandPoint>> {
        let (plan, _) = self.active.as_ref()?;
        let period = self.period_secs;
        let t = (now_secs - plan.start_stamp_secs).max(0.0);
        let end = plan.duration_secs();
        let remaining = end - t;
        let step = period.max(remaining / MAX_POINTS as f64);
        let merge = MERGE_PERIODS * period;
        // The trajectory's own points (its cubic segments' ends) from the first published
        // point on: with them, every published segment lies on one cubic of the trajectory,
        // which the controller's cubic spline then reproduces exactly (within the limits). A
        // grid time within `merge` of one of them gives way to it: a very short segment would
        // amplify the message's nanosecond rounding of its times (1e-9 s on a 0.3 ms segment
        // moves its cubic's acceleration by ~1 %). None comes sooner than one period: a first
        // point closer than that makes the controller's first segment short, and whatever
        // separates the controller's state from the curve (a late unstamped message, tracking
        // error with `interpolate_from_desired_state: false`) is then caught up that much more
        // sharply (tried on 2026-12-04: a 2 ms first point after a late unstamped message made
        // the abuse test's continuity check fail by 12 mrad).
        let knots: Vec<f64> = plan
            .points
            .iter()
            .map(|p| p.time_from_start_secs - t)
            .filter(|&k| k >= period && k < remaining - KNOT_GAP_SECS)
            .collect();
        let mut times = knots.clone();
        let mut tau = period;
        while t + tau < end - merge {
            let next = knots.partition_point(|&k| k < tau - merge);
            if knots.get(next).is_none_or(|&k| k > tau + merge) {
                times.push(tau);
            }
            tau += step;
        }
        times.sort_by(f64::total_cmp);
        let mut points: Vec<CommandPoint> = times
            .into_iter()
            .map(|tau| {
                // Sampled at the time the message carries (whole nanoseconds), so each point
                // lies on the trajectory exactly where the controller puts it.
                let tau = whole_nanoseconds(tau);
                let (positions, velocities) = plan.state_at(t + tau);
                CommandPoint {
                    time_from_start_secs: tau,
                    positions,
                    velocities,
                }
            })
            .collect();
        let last = plan.points.last()?;
        let final_time = match points.last() {
            Some(previous) => remaining.max(previous.time_from_start_secs + KNOT_GAP_SECS),
            None => period,
        };
        points.push(CommandPoint {
            time_from_start_secs: whole_nanoseconds(final_time),
            positions: last.positions.clone(),
            velocities: vec![0.0; last.positions.len()],
        });
        self.sent_at_secs = Some(now_secs);
        Some(points)
    }
}

/// Grid points closer than this many control periods to one of the trajectory's own points
/// are left out (see [`Executor::command`]).
const MERGE_PERIODS: f64 = 0.1;

/// The trajectory's points are all published (a segment of the message that spanned one would
/// leave the trajectory's cubics), except one within this of the end, which is the end.
const KNOT_GAP_SECS: f64 = 1e-6;

/// `secs` rounded to whole nanoseconds (what a ROS duration holds).
fn whole_nanoseconds(secs: f64) -> f64 {
    (secs * 1e9).round() * 1e-9
}

/// A plan whose first point is at time 0 (the planner's are; this keeps the invariant).
fn shift_to_zero(mut plan: Plan) -> Plan {
    let offset = plan.points.first().map_or(0.0, |p| p.time_from_start_secs);
    if offset != 0.0 {
        for point in &mut plan.points {
            point.time_from_start_secs -= offset;
        }
        plan.start_stamp_secs += offset;
    }
    plan
}

/// The old trajectory from `now` until `switch`, then the new one (absolute start `switch`),
/// as one plan starting at `now`.
fn compose(old: &Plan, new: &Plan, switch_secs: f64, now_secs: f64) -> Plan {
    const EPS: f64 = 1e-6;
    let mut points = Vec::with_capacity(old.points.len() + new.points.len() + 1);
    let start_secs = if switch_secs > now_secs + EPS {
        now_secs
    } else {
        switch_secs
    };
    if switch_secs > now_secs + EPS {
        let (positions, velocities) = old.state_at(now_secs - old.start_stamp_secs);
        points.push(PlanPoint {
            time_from_start_secs: 0.0,
            positions,
            velocities,
        });
        // Times relative to `now` as the old start's offset plus each point's own time: the
        // offset is exact (two close epoch stamps), and an absolute epoch time (f64: 0.24 µs
        // resolution at 1.8e9 s) would move each point by its own rounding, which on a 10 ms
        // segment at 1.3 rad/s is ~0.5 % of its acceleration.
        let old_offset = old.start_stamp_secs - now_secs;
        let switch_in_old = switch_secs - old.start_stamp_secs;
        for point in &old.points {
            let t = point.time_from_start_secs;
            if t + old_offset > EPS && t < switch_in_old - EPS {
                points.push(PlanPoint {
                    time_from_start_secs: t + old_offset,
                    ..point.clone()
                });
            }
        }
    }
    let offset = switch_secs - start_secs;
    for point in &new.points {
        points.push(PlanPoint {
            time_from_start_secs: point.time_from_start_secs + offset,
            ..point.clone()
        });
    }
    Plan {
        joint_names: new.joint_names.clone(),
        start_stamp_secs: start_secs,
        points,
    }
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[cfg(test)]
#[path = "executor_tests.rs"]
pub(crate) mod tests;
