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
//! JointTrajectoryController wants for a smooth start), then its last point with velocity
//! exactly zero. Positions and velocities (the controller splines them cubically, as the plan is
//! built), strictly increasing times.

use crate::planning::{CommandedState, Plan, PlanPoint};

/// Positions or velocities closer than this are the same state when a plan takes over (the
/// planner starts a plan exactly at the commanded state, so only rounding differs).
pub const CONTINUITY_TOLERANCE: f64 = 1e-6;
/// Velocities below this (rad/s) count as rest.
pub const REST_VELOCITY_RAD_S: f64 = 1e-9;
/// Most points in one published trajectory; a longer remainder is sampled more coarsely.
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
}

impl Executor {
    /// An executor publishing every `period_secs`, braking within `max_accelerations_rad_s2`
    /// (robot order).
    pub fn new(period_secs: f64, max_accelerations_rad_s2: Vec<f64>) -> Self {
        Executor {
            period_secs,
            max_accelerations_rad_s2,
            active: None,
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
    /// already past is taken only if the robot was at rest at that state since then; it is
    /// re-stamped to start `now` (no jump), else [`AdoptError::Late`].
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
        let mut switch_secs = plan.start_stamp_secs;
        if switch_secs < now_secs {
            let first_at_rest = first
                .velocities
                .iter()
                .all(|v| v.abs() <= REST_VELOCITY_RAD_S);
            if !(first_at_rest && self.at_rest_between(switch_secs, now_secs)) {
                return Err(AdoptError::Late {
                    late_by_secs: now_secs - switch_secs,
                });
            }
            switch_secs = now_secs;
            plan.start_stamp_secs = now_secs;
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

    /// Stops the robot from `now_secs`: brakes along the active trajectory's path (time scaled
    /// so that its speed falls linearly to zero, decelerating within the acceleration limits)
    /// and holds at the end. Nothing changes when already holding or stopping. Returns whether
    /// the trajectory changed.
    pub fn stop(&mut self, now_secs: f64) -> bool {
        let Some((old, kind)) = &self.active else {
            return false;
        };
        if *kind != Kind::Plan {
            return false;
        }
        let t0 = now_secs - old.start_stamp_secs;
        let (q0, v0) = old.state_at(t0);
        // The fastest each joint moves from now to the end of the plan bounds the braking term.
        let mut peak = v0.iter().map(|v| v.abs()).collect::<Vec<_>>();
        for point in old.points.iter().filter(|p| p.time_from_start_secs > t0) {
            for (p, v) in peak.iter_mut().zip(&point.velocities) {
                *p = p.max(v.abs());
            }
        }
        let names = old.joint_names.clone();
        if v0.iter().all(|v| v.abs() <= REST_VELOCITY_RAD_S) {
            // At rest now (finished, or not started yet): hold here.
            self.hold_at(names, q0, now_secs);
            return true;
        }
        // s(tau) = t0 + tau - tau^2 / (2 Tb): speed factor 1 - tau/Tb; the extra deceleration
        // |v| / Tb stays within half the limit.
        let braking_secs = peak
            .iter()
            .zip(&self.max_accelerations_rad_s2)
            .map(|(v, a)| 2.0 * v / a)
            .fold(self.period_secs, f64::max);
        let steps = (braking_secs / self.period_secs).ceil().max(1.0) as usize;
        let dt = braking_secs / steps as f64;
        let mut points = Vec::with_capacity(steps + 1);
        for k in 0..=steps {
            let tau = k as f64 * dt;
            let s = t0 + tau - tau * tau / (2.0 * braking_secs);
            let factor = (1.0 - tau / braking_secs).max(0.0);
            let (positions, velocities) = old.state_at(s);
            let velocities = if k == steps {
                vec![0.0; velocities.len()]
            } else {
                velocities.iter().map(|v| v * factor).collect()
            };
            points.push(PlanPoint {
                time_from_start_secs: tau,
                positions,
                velocities,
            });
        }
        let stop = Plan {
            joint_names: names,
            start_stamp_secs: now_secs,
            points,
        };
        self.active = Some((stop, Kind::Stop));
        true
    }

    /// The points to publish at `now_secs` (see the module docs); `None` before the first hold.
    pub fn command(&self, now_secs: f64) -> Option<Vec<CommandPoint>> {
        let (plan, _) = self.active.as_ref()?;
        let period = self.period_secs;
        let t = (now_secs - plan.start_stamp_secs).max(0.0);
        let end = plan.duration_secs();
        let remaining = end - t;
        let step = period.max(remaining / MAX_POINTS as f64);
        let mut points = Vec::new();
        let mut tau = period;
        while t + tau < end - 1e-3 * period {
            let (positions, velocities) = plan.state_at(t + tau);
            points.push(CommandPoint {
                time_from_start_secs: tau,
                positions,
                velocities,
            });
            tau += step;
        }
        let last = plan.points.last()?;
        let final_time = match points.last() {
            Some(previous) => remaining.max(previous.time_from_start_secs + 1e-3 * period),
            None => period,
        };
        points.push(CommandPoint {
            time_from_start_secs: final_time,
            positions: last.positions.clone(),
            velocities: vec![0.0; last.positions.len()],
        });
        Some(points)
    }
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
        for point in &old.points {
            let absolute = old.start_stamp_secs + point.time_from_start_secs;
            if absolute > now_secs + EPS && absolute < switch_secs - EPS {
                points.push(PlanPoint {
                    time_from_start_secs: absolute - now_secs,
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
mod tests;
