//! The node's behaviour without ROS: inputs in, planning requests and trajectory points out.
//! `src/ros/app.rs` feeds it the messages and the ticks of the control timer, hands requests to
//! the planning thread and publishes what it returns; tests drive it directly.
//!
//! Rules (docs/NODE.md explains them for users):
//! - Once every joint has a fresh position the executor holds there; it publishes every tick
//!   from then on (plan, controlled stop or hold).
//! - A new goal, an obstacle change or a mode request asks for a plan at once; otherwise the
//!   node replans every `1 / replan_rate_hz` from the commanded state (until the goal is reached).
//!   A plan starts at the commanded state a look-ahead (expected planning latency) in the future,
//!   so the executor switches to it without a jump.
//! - Bad input or a failed planning call stops the robot (braking along its path) and holds;
//!   planning resumes by itself when the inputs are good again. A failed receding-horizon replan
//!   while the current plan is still valid for the current inputs only warns.

use super::executor::{AdoptError, CommandPoint, Executor, Motion};
use super::inputs::{keys, Change, GoalIn, Inputs, JointStateIn, MarkerIn, EVENT_EXPIRY_SECS};
use super::problems::{Area, Level, Problems};
use super::report::{Latency, PlanningStats};
use super::tracking::{TrackingMonitor, TrackingSettings};
use super::worker::{PlanRequest, PlanResult};
use crate::planning::{
    Observation, ObservationError, ObservationInput, ObservationStamps, PlanOutcome,
};
use crate::robot::PlanarArm;

/// Problem keys of the planning side.
pub mod plan_keys {
    pub const GOAL_BLOCKED: &str = "goal.blocked";
    pub const START_COLLISION: &str = "obstacles.collision";
    pub const OBSTACLE_AHEAD: &str = "obstacles.ahead";
    pub const JOINT_LIMITS: &str = "joint_states.limits";
    pub const OBSERVATION: &str = "observation";
    pub const PLANNING: &str = "planning";
    pub const LATE: &str = "planning.late";
    pub const CLOCK: &str = "clock";
    pub const MODE_AT_GOAL: &str = "mode_request.at_goal";
    pub const BRAKING_COLLISION: &str = "stop.collision";
    pub const TRACKING: &str = "tracking";
    pub const CLOCK_JUMP: &str = "clock.jump";
}

/// Look-ahead before the first latency is known, seconds.
const INITIAL_LATENCY_SECS: f64 = 0.3;
/// Step of the collision check of the remaining trajectory after an obstacle change, seconds,
/// and the most steps (a longer remainder is checked more coarsely; the check is swept).
const AHEAD_CHECK_STEP_SECS: f64 = 0.01;
const AHEAD_CHECK_MAX_STEPS: usize = 1000;
/// At the goal, the end effector may drift this many goal tolerances away before the node
/// plans again (e.g. the robot was pushed).
const GOAL_DRIFT_TOLERANCES: f64 = 2.0;
/// How much sooner a receding-horizon replan must end than the plan being followed to replace
/// it, seconds.
const MIN_IMPROVEMENT_SECS: f64 = 0.1;

/// Joint states stamped further than this from the node clock (either way) mean that the robot
/// and the node run on different clocks (e.g. `use_sim_time` on one side only), seconds.
pub const CLOCK_TOLERANCE_SECS: f64 = 1.0;
/// A stamped message ends at least this long after its stamp (a copy of its last point, at
/// rest, is appended when it would end sooner): JointTrajectoryController rejects a stamped
/// trajectory that ends before it is received, and a late delivery (a loaded machine, DDS) of
/// a short message, e.g. a stop or the end of a motion, would otherwise leave the arm on the
/// previous trajectory.
pub const STAMPED_MIN_END_SECS: f64 = 0.5;

/// Settings of the core (from the node parameters).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CoreSettings {
    pub period_secs: f64,
    pub replan_period_secs: f64,
    pub goal_tolerance_m: f64,
    /// Stamp moving trajectories with the node clock (see [`TickOutput::stamp_secs`]).
    pub stamp_trajectories: bool,
    /// The tracking monitor's tolerance and timeout.
    pub tracking: TrackingSettings,
}

/// What one control tick produces.
#[derive(Debug, Clone, Default)]
pub struct TickOutput {
    /// The trajectory points to publish (`None` before the first valid joint state).
    pub command: Option<Vec<CommandPoint>>,
    /// The command's `header.stamp` (node clock): `Some(now)` while the robot moves (plan or
    /// stop) and stamping is on, so the controller samples the points at the times they were
    /// computed for however late it receives them; `None` (stamp 0, "start when received")
    /// for holds, when stamping is off, and while the joint states' stamps show that the
    /// controller runs on another clock.
    pub stamp_secs: Option<f64>,
    /// A planning request for the worker.
    pub request: Option<PlanRequest>,
}

/// See the module docs.
pub struct NodeCore {
    pub(crate) settings: CoreSettings,
    pub(crate) arm: PlanarArm,
    pub(crate) mode_names: Vec<String>,
    pub(crate) inputs: Inputs,
    pub(crate) executor: Executor,
    pub(crate) problems: Problems,
    next_id: u64,
    /// Results of requests older than this were made before the latest event: dropped.
    event_id: u64,
    replan_now: bool,
    /// The next request follows an event that makes earlier results obsolete (see `event_id`);
    /// false for an obstacle change the current plan survives (its results compete with the
    /// current plan like a receding-horizon replan).
    event_pending: bool,
    last_request_secs: Option<f64>,
    /// The executor follows a plan made for the current inputs.
    pub(crate) plan_current: bool,
    pub(crate) goal_reached: bool,
    state_valid: bool,
    /// The latest stamped joint state agreed with the node clock (see [`CLOCK_TOLERANCE_SECS`]).
    clocks_agree: bool,
    pub(crate) latency: Latency,
    pub(crate) stats: PlanningStats,
    pub(crate) tracking: TrackingMonitor,
    /// When the last tracking fault was detected (the problem clears a timeout later).
    last_tracking_fault_secs: Option<f64>,
}

impl NodeCore {
    pub fn new(settings: CoreSettings, arm: PlanarArm, inputs: Inputs) -> Self {
        let executor = Executor::new(settings.period_secs, arm.max_accelerations_rad_s2());
        NodeCore {
            settings,
            mode_names: Vec::new(),
            arm,
            inputs,
            executor,
            problems: Problems::new(),
            next_id: 0,
            event_id: 0,
            replan_now: false,
            event_pending: false,
            last_request_secs: None,
            plan_current: false,
            goal_reached: false,
            state_valid: false,
            clocks_agree: true,
            latency: Latency::default(),
            stats: PlanningStats::default(),
            tracking: TrackingMonitor::new(settings.tracking),
            last_tracking_fault_secs: None,
        }
    }

    /// The model's mode names (validated mode requests).
    /// The core as the node builds it from its parameters: inputs with the static obstacles,
    /// the control and replan periods and the goal tolerance (the node, `dplan replay` and
    /// `dplan closed-loop` all start from here).
    pub fn from_params(
        params: &super::params::NodeParams,
        arm: PlanarArm,
        mode_names: Vec<String>,
    ) -> Self {
        let static_obstacles = params
            .static_obstacles
            .iter()
            .map(|o| crate::robot::CircleObstacle {
                center_m: [o.x_m, o.y_m],
                radius_m: o.radius_m,
            })
            .collect();
        let inputs = Inputs::new(
            arm.joint_names(),
            &params.base_frame,
            params.state_timeout_secs,
            static_obstacles,
            mode_names.clone(),
        )
        .with_obstacle_rules(super::inputs::ObstacleRules {
            timeout_secs: params.obstacle_timeout_secs,
            change_tolerance_m: params.change_tolerance_m,
        });
        let settings = CoreSettings {
            period_secs: params.control_period_secs(),
            replan_period_secs: 1.0 / params.replan_rate_hz,
            goal_tolerance_m: params.goal_tolerance_m,
            stamp_trajectories: params.stamp_trajectories,
            tracking: TrackingSettings {
                tolerance_rad: params.tracking_tolerance_rad,
                timeout_secs: params.tracking_timeout_secs,
            },
        };
        NodeCore::new(settings, arm, inputs).with_mode_names(mode_names)
    }

    pub fn with_mode_names(mut self, mode_names: Vec<String>) -> Self {
        self.mode_names = mode_names;
        self
    }

    pub fn problems_mut(&mut self) -> &mut Problems {
        &mut self.problems
    }

    pub fn executor(&self) -> &Executor {
        &self.executor
    }

    pub fn inputs(&self) -> &Inputs {
        &self.inputs
    }

    pub fn on_joint_state(&mut self, msg: &JointStateIn, now: f64) {
        self.inputs.on_joint_state(msg, now, &mut self.problems);
        self.check_clock(msg.stamp_secs, now);
    }

    /// Compares a joint state's stamp (0: unstamped, not compared) with the node clock.
    fn check_clock(&mut self, stamp_secs: f64, now: f64) {
        if !(stamp_secs > 0.0 && stamp_secs.is_finite()) {
            return;
        }
        let offset = now - stamp_secs;
        self.clocks_agree = offset.abs() <= CLOCK_TOLERANCE_SECS;
        if self.clocks_agree {
            self.problems.clear(plan_keys::CLOCK);
        } else if self.settings.stamp_trajectories {
            self.problems.condition_detailed(
                plan_keys::CLOCK,
                Area::Executor,
                Level::Warn,
                "joint_states are stamped on another clock than the node's (use_sim_time set on \
                 one side only?); trajectories go out with stamp 0 (start when received)"
                    .into(),
                format!(
                    "node clock - joint state stamp = {offset:.3} s, tolerance \
                     {CLOCK_TOLERANCE_SECS} s"
                ),
                now,
            );
        }
    }

    pub fn on_goal(&mut self, msg: &GoalIn, now: f64) {
        let change = self.inputs.on_goal(msg, now, &mut self.problems);
        self.event(change, now);
    }

    pub fn on_obstacles(&mut self, msg: &[MarkerIn], now: f64) {
        let change = self.inputs.on_obstacles(msg, now, &mut self.problems);
        self.obstacles_changed(change, now);
    }

    /// A mode request chooses the route to the goal. At rest at the goal there is no route
    /// left to choose (a path that stays put has no side of the obstacle), so the request is
    /// kept for the next goal instead of planning a motion nobody asked for.
    pub fn on_mode(&mut self, text: &str, now: f64) {
        let change = self.inputs.on_mode(text, now, &mut self.problems);
        if change == Change::Replan && self.goal_reached {
            self.problems.event(
                plan_keys::MODE_AT_GOAL,
                Area::Planning,
                Level::Ok,
                format!(
                    "mode `{}` requested at the goal: kept for the next goal",
                    String::from(self.inputs.mode().clone())
                ),
                now,
                EVENT_EXPIRY_SECS,
            );
            return;
        }
        self.event(change, now);
    }

    fn event(&mut self, change: Change, now: f64) {
        match change {
            Change::None => return,
            Change::Stop => {
                self.stop(now);
            }
            Change::Replan => {}
        }
        self.replan_now = true;
        self.event_pending = true;
        self.plan_current = false;
        self.goal_reached = false;
        self.problems.clear(plan_keys::PLANNING);
    }

    /// Whether the robot is at rest at the end of a plan for the current inputs, within
    /// `goal_tolerance_m` of the goal (the tick marks this as the goal reached).
    pub(crate) fn resting_at_goal(&self, now: f64) -> bool {
        let (Some((goal, _)), Some((q, _))) = (self.inputs.goal(), self.executor.state_at(now))
        else {
            return false;
        };
        let at = self.arm.end_effector(&q);
        self.plan_current
            && self.executor.motion(now) == Motion::Holding
            && (at[0] - goal[0]).hypot(at[1] - goal[1]) <= self.settings.goal_tolerance_m
    }

    fn lookahead_secs(&self) -> f64 {
        let latency = self.latency.estimate_secs().unwrap_or(INITIAL_LATENCY_SECS);
        1.5 * latency + 2.0 * self.settings.period_secs
    }

    /// One control tick at `now` (node clock). `worker_busy`: the planning thread has work.
    pub fn tick(&mut self, now: f64, worker_busy: bool) -> TickOutput {
        self.problems.expire(now);
        let change = self.inputs.update_obstacles(now, &mut self.problems);
        self.obstacles_changed(change, now);
        let measured = self.inputs.measured(now, &mut self.problems);
        match &measured {
            None => {
                if self.executor.motion(now) != Motion::Holding {
                    self.stop(now);
                }
                self.state_valid = false;
                self.plan_current = false;
            }
            Some((q, q_secs)) => {
                let regained = !self.state_valid;
                if !self.executor.is_active()
                    || (regained && self.executor.motion(now) == Motion::Holding)
                {
                    self.executor
                        .hold_at(self.arm.joint_names(), q.clone(), now);
                }
                if regained {
                    self.state_valid = true;
                    self.replan_now = true;
                    self.event_pending = true;
                    self.tracking.reset();
                } else {
                    self.check_tracking(now, q, *q_secs);
                }
            }
        }
        if let (Some((goal, _)), Some((q, _))) = (self.inputs.goal(), &measured) {
            let at = self.arm.end_effector(q);
            let error_m = (at[0] - goal[0]).hypot(at[1] - goal[1]);
            let tolerance = self.settings.goal_tolerance_m;
            if self.plan_current
                && self.executor.motion(now) == Motion::Holding
                && error_m <= tolerance
            {
                self.goal_reached = true;
            } else if self.goal_reached && error_m > GOAL_DRIFT_TOLERANCES * tolerance {
                self.goal_reached = false;
            }
        }
        let request = match measured {
            Some((q, q_secs)) => self.maybe_request(now, q, q_secs, worker_busy),
            None => None,
        };
        let moving = self.executor.motion(now) != Motion::Holding;
        let stamp_secs =
            (self.settings.stamp_trajectories && self.clocks_agree && moving).then_some(now);
        let mut command = self.executor.command(now);
        if let (Some(points), Some(_)) = (&mut command, stamp_secs) {
            extend_to_min_end(points);
        }
        TickOutput {
            command,
            stamp_secs,
            request,
        }
    }

    fn maybe_request(
        &mut self,
        now: f64,
        q: Vec<f64>,
        q_secs: f64,
        worker_busy: bool,
    ) -> Option<PlanRequest> {
        let (goal_m, goal_secs) = self.inputs.goal()?;
        if !self.inputs.obstacles_ok() {
            return None;
        }
        let replan_due = !self.goal_reached
            && self
                .last_request_secs
                .is_none_or(|t| now - t >= self.settings.replan_period_secs);
        if !(self.replan_now || (replan_due && !worker_busy)) {
            return None;
        }
        let lookahead = match self.executor.motion(now) {
            Motion::Holding => 0.0,
            _ => self.lookahead_secs(),
        };
        let input = ObservationInput {
            joints: self.arm.joint_names().into_iter().zip(q).collect(),
            goal_m,
            obstacles: self.inputs.obstacles(),
            mode: self.inputs.mode().clone(),
            stamps: ObservationStamps {
                joint_state_secs: q_secs,
                goal_secs,
                obstacles_secs: self.inputs.obstacles_secs(),
            },
            commanded: self.executor.commanded_at(now + lookahead),
        };
        self.last_request_secs = Some(now);
        self.replan_now = false;
        let event = std::mem::take(&mut self.event_pending);
        match Observation::new(input, &self.arm, &self.mode_names) {
            Err(e) => {
                self.reject_observation(e, now);
                None
            }
            Ok(observation) => {
                for key in [
                    plan_keys::GOAL_BLOCKED,
                    plan_keys::START_COLLISION,
                    plan_keys::JOINT_LIMITS,
                    plan_keys::OBSERVATION,
                ] {
                    self.problems.clear(key);
                }
                let id = self.next_id;
                self.next_id += 1;
                if event {
                    self.event_id = id;
                }
                Some(PlanRequest {
                    id,
                    observation,
                    requested_secs: now,
                })
            }
        }
    }

    /// A refused observation: report under the input it blames and hold. A goal that can never
    /// be reached is dropped (a new goal is needed); the others are retried at the replan rate.
    fn reject_observation(&mut self, e: ObservationError, now: f64) {
        use ObservationError as E;
        let (key, drop_goal) = match &e {
            E::GoalOutOfReach { .. } | E::GoalOutsideJointLimits { .. } => (keys::GOAL, true),
            E::NonFinite { field, .. } if field.starts_with("goal") => (keys::GOAL, true),
            E::GoalInsideObstacle { .. } => (plan_keys::GOAL_BLOCKED, false),
            E::StartInCollision { .. } | E::InvalidObstacle { .. } => {
                (plan_keys::START_COLLISION, false)
            }
            E::JointOutsideLimits { .. } => (plan_keys::JOINT_LIMITS, false),
            E::UnknownMode { .. } => (keys::MODE, false),
            _ => (plan_keys::OBSERVATION, false),
        };
        let text = if drop_goal {
            format!("goal rejected: {e}; holding until a new goal")
        } else {
            format!("{e}; holding")
        };
        self.problems
            .condition(key, Area::Inputs, Level::Error, text, now);
        if drop_goal {
            self.inputs.clear_goal();
        }
        self.stop(now);
        self.plan_current = false;
    }

    /// Takes a planning result at `now`; returns the outcome (for the candidate markers) unless
    /// the call failed or was superseded by a newer event.
    pub fn on_result(&mut self, result: PlanResult, now: f64) -> Option<PlanOutcome> {
        self.latency
            .record(now - result.requested_secs, result.wall_secs);
        if result.id < self.event_id {
            self.stats.superseded += 1;
            return None;
        }
        // A receding-horizon replan (no new goal, obstacles or mode since the current plan was
        // asked for) replaces a valid plan in motion only when it ends sooner: otherwise each
        // replan restarts a path of similar length and the robot may never arrive.
        let periodic = result.id > self.event_id;
        let outcome = match result.outcome {
            Err(failure) => {
                self.stats.failed += 1;
                self.planning_failed(failure.to_string(), None, now);
                return None;
            }
            Ok(outcome) => outcome,
        };
        self.stats.record(&outcome, self.inputs.mode());
        match &outcome.plan {
            None => {
                self.stats.no_plan += 1;
                let detail = format!(
                    "{} candidates: {}",
                    outcome.candidates.len(),
                    self.stats.rejection_summary()
                );
                self.planning_failed("no valid candidate".into(), Some(detail), now);
            }
            // At rest at the goal nothing is better than staying: a late receding-horizon
            // result (asked for before the goal was reached) would move the arm away and back.
            Some(_) if periodic && (self.goal_reached || self.resting_at_goal(now)) => {
                self.stats.not_better += 1;
                self.problems.clear(plan_keys::PLANNING);
            }
            Some(plan)
                if periodic
                    && self.plan_current
                    && self.executor.motion(now) == Motion::Following
                    && plan.start_stamp_secs + plan.duration_secs()
                        > now + self.executor.remaining_secs(now) - MIN_IMPROVEMENT_SECS =>
            {
                self.stats.not_better += 1;
                self.problems.clear(plan_keys::PLANNING);
            }
            Some(plan) if first_hit(&self.arm, plan, 0.0, &self.inputs.obstacles()).is_some() => {
                // Planned for an older obstacle set (a change the current plan survived).
                self.stats.superseded += 1;
                self.replan_now = true;
            }
            Some(plan) => match self.executor.adopt(plan.clone(), now) {
                Ok(()) => {
                    self.problems.clear(plan_keys::PLANNING);
                    self.plan_current = true;
                }
                Err(e @ (AdoptError::Late { .. } | AdoptError::Discontinuous { .. })) => {
                    self.stats.late += 1;
                    self.problems.event(
                        plan_keys::LATE,
                        Area::Planning,
                        Level::Warn,
                        e.to_string(),
                        now,
                        EVENT_EXPIRY_SECS,
                    );
                    self.replan_now = true;
                    self.event_pending = true;
                }
                Err(e) => self.planning_failed(e.to_string(), None, now),
            },
        }
        Some(outcome)
    }

    /// A planning call without a plan: `headline` is logged once, `detail` (e.g. rejection
    /// counts) only reported.
    fn planning_failed(&mut self, headline: String, detail: Option<String>, now: f64) {
        let detail = detail.unwrap_or_default();
        if self.plan_current && self.executor.motion(now) == Motion::Following {
            self.problems.event(
                plan_keys::PLANNING,
                Area::Planning,
                Level::Warn,
                format!("replanning failed: {headline}; continuing the current plan"),
                now,
                EVENT_EXPIRY_SECS,
            );
        } else {
            self.problems.condition_detailed(
                plan_keys::PLANNING,
                Area::Planning,
                Level::Error,
                format!("{headline}; holding"),
                detail,
                now,
            );
            self.stop(now);
            self.plan_current = false;
        }
    }
}

/// Appends a copy of the last point (at rest) at [`STAMPED_MIN_END_SECS`] when `points` ends
/// sooner (see there). The last point is at rest, so the arm does not move in between.
fn extend_to_min_end(points: &mut Vec<CommandPoint>) {
    if let Some(last) = points.last() {
        if last.time_from_start_secs < STAMPED_MIN_END_SECS {
            let tail = CommandPoint {
                time_from_start_secs: STAMPED_MIN_END_SECS,
                ..last.clone()
            };
            points.push(tail);
        }
    }
}

#[path = "core_safety.rs"]
mod safety;
pub(crate) use safety::first_hit;

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "core_safety_tests.rs"]
mod safety_tests;
