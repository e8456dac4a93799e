//! The core's safety rules (docs/NODE.md, "Safety rules"): obstacle changes against the
//! current trajectory, stops whose braking path is checked, the tracking monitor.

use super::{plan_keys, NodeCore, AHEAD_CHECK_MAX_STEPS, AHEAD_CHECK_STEP_SECS};
use crate::planning::Plan;
use crate::robot::{CircleObstacle, PlanarArm};
use crate::ros::executor::{CommandPoint, Motion};
use crate::ros::inputs::{Change, EVENT_EXPIRY_SECS};
use crate::ros::problems::{Area, Level};

impl NodeCore {
    /// After the obstacle set changed (a message or an expired lifetime): on an event (a
    /// change beyond `change_tolerance_m`, which the parameters keep below `min_clearance_m`,
    /// so a smaller one cannot bring an obstacle into a verified plan) the rest of the current
    /// trajectory is checked against the new set, with a stop when it would hit one. The
    /// current plan stays unless it collides, and results of earlier requests are not dropped,
    /// so that a fast perception stream cannot starve planning: a new result replaces a valid
    /// plan only when it is better (like a receding-horizon replan). At the goal a change that
    /// leaves the resting arm free changes nothing.
    pub(super) fn obstacles_changed(&mut self, change: Change, now: f64) {
        match change {
            Change::None => return,
            Change::Stop => {
                self.event(change, now);
                return;
            }
            Change::Replan => {}
        }
        // Results of requests made before the change are not dropped: every plan is checked
        // against the current obstacles before it is adopted (`on_result`).
        if self.check_ahead(now) {
            self.plan_current = false;
            self.goal_reached = false;
            self.replan_now = true;
            self.problems.clear(plan_keys::PLANNING);
        } else if !(self.goal_reached || self.resting_at_goal(now)) {
            self.replan_now = true;
        }
    }

    /// After an obstacle change: stops at once when the rest of the current trajectory (or the
    /// resting arm) would hit one of the new obstacles (the new plan would come too late).
    /// Returns whether it would.
    pub(super) fn check_ahead(&mut self, now: f64) -> bool {
        let obstacles = self.inputs.obstacles();
        let Some(plan) = self.executor.active_plan() else {
            return false;
        };
        let from = (now - plan.start_stamp_secs).max(0.0);
        let Some(t) = first_hit(&self.arm, plan, from, &obstacles) else {
            self.problems.clear(plan_keys::OBSTACLE_AHEAD);
            return false;
        };
        let moving = self.executor.motion(now) != Motion::Holding;
        self.problems.event(
            plan_keys::OBSTACLE_AHEAD,
            Area::Planning,
            Level::Warn,
            if moving {
                format!(
                    "the current trajectory would hit an obstacle in {:.2} s; stopping",
                    (t - from).max(0.0)
                )
            } else {
                "an obstacle covers the arm at rest".to_string()
            },
            now,
            EVENT_EXPIRY_SECS,
        );
        if moving {
            self.stop(now);
        }
        true
    }

    /// The ROS clock jumped back by `by_secs` (a restarted simulation, a looping bag, a system
    /// clock stepped back); the node's own time (`now`, see `clock.rs`) went on without a jump,
    /// so the commanded curve stays continuous. What the robot does after such a jump is not
    /// known (a restarted simulation puts the arm back at its start): the robot brakes along its
    /// path and the node plans again from the measured state; the tracking monitor then sees an
    /// arm that is elsewhere.
    pub fn clock_jumped_back(&mut self, by_secs: f64, now: f64) {
        self.problems.event(
            plan_keys::CLOCK_JUMP,
            Area::Executor,
            Level::Error,
            format!(
                "the clock jumped back by {by_secs:.3} s (a restarted simulation or a looping \
                 bag?); braking and planning again (the node keeps its own time continuous)"
            ),
            now,
            EVENT_EXPIRY_SECS,
        );
        self.stop(now);
        self.replan_now = true;
        self.event_pending = true;
        self.plan_current = false;
        self.goal_reached = false;
    }

    /// Stops the robot (see [`Executor::stop`]) and checks the braking path against the current
    /// obstacles: braking along the path within the acceleration limits is the only safe stop
    /// the node has, so when it would hit an obstacle it goes on but says so.
    pub(super) fn stop(&mut self, now: f64) {
        if !self.executor.stop(now) {
            return;
        }
        let obstacles = self.inputs.obstacles();
        let Some(braking) = self.executor.stopping_plan() else {
            return;
        };
        if let Some(t) = first_hit(&self.arm, braking, 0.0, &obstacles) {
            self.problems.event(
                plan_keys::BRAKING_COLLISION,
                Area::Executor,
                Level::Error,
                format!(
                    "the braking path (within the acceleration limits, {:.2} s) hits an \
                     obstacle after {t:.2} s",
                    braking.duration_secs()
                ),
                now,
                EVENT_EXPIRY_SECS,
            );
        }
    }

    /// The tracking monitor (see `tracking.rs`): the measured positions (arrived at `q_secs`)
    /// against the commanded ones at that time. On a fault the robot holds at the measured
    /// state (where it is, so the controller does not pull it back along a stale command) and
    /// the node replans from there.
    pub(super) fn check_tracking(&mut self, now: f64, q: &[f64], q_secs: f64) {
        let Some((commanded, _)) = self.executor.state_at(q_secs) else {
            return;
        };
        let moving = self.executor.motion(now) != Motion::Holding;
        match self.tracking.check(now, q, &commanded, moving) {
            None => {
                let settled = self
                    .last_tracking_fault_secs
                    .is_none_or(|t| now - t > self.tracking.settings().timeout_secs);
                if settled {
                    self.problems.clear(plan_keys::TRACKING);
                }
            }
            Some(fault) => {
                self.problems.condition(
                    plan_keys::TRACKING,
                    Area::Executor,
                    Level::Error,
                    format!(
                        "{fault} (tracking_tolerance_rad = {} rad, tracking_timeout_secs = {} \
                         s); holding at the measured state and replanning from it",
                        self.tracking.settings().tolerance_rad,
                        self.tracking.settings().timeout_secs
                    ),
                    now,
                );
                self.last_tracking_fault_secs = Some(now);
                self.stats.tracking_faults += 1;
                self.executor
                    .hold_at(self.arm.joint_names(), q.to_vec(), now);
                self.tracking.reset();
                self.replan_now = true;
                self.event_pending = true;
                self.plan_current = false;
                self.goal_reached = false;
            }
        }
    }

    /// Brakes from `now` (after a fault on the spin thread) and returns the points of the
    /// braking trajectory (`None` before the first joint state).
    pub fn brake(&mut self, now: f64) -> Option<Vec<CommandPoint>> {
        self.stop(now);
        self.plan_current = false;
        self.executor.command(now)
    }
}

/// The first time (plan time, seconds) from `from_secs` on at which `plan` hits one of
/// `obstacles`: swept checks between samples every [`AHEAD_CHECK_STEP_SECS`] (at most
/// [`AHEAD_CHECK_MAX_STEPS`]; a longer remainder is checked more coarsely, still swept), and
/// the position at `from_secs` itself.
pub(crate) fn first_hit(
    arm: &PlanarArm,
    plan: &Plan,
    from_secs: f64,
    obstacles: &[CircleObstacle],
) -> Option<f64> {
    let remaining = (plan.duration_secs() - from_secs).max(0.0);
    let steps =
        ((remaining / AHEAD_CHECK_STEP_SECS).ceil() as usize).clamp(1, AHEAD_CHECK_MAX_STEPS);
    let mut previous: Option<Vec<f64>> = None;
    for k in 0..=steps {
        let t = from_secs + remaining * k as f64 / steps as f64;
        let (q, _) = plan.state_at(t);
        let hit = match &previous {
            Some(p) => arm.swept_collision(p, &q, obstacles).is_some(),
            None => arm.collision(&q, obstacles).is_some(),
        };
        if hit {
            return Some(t);
        }
        previous = Some(q);
    }
    None
}
