//! The simulated robot cell: a JointTrajectoryController ([`TrajectoryController`]) commanding
//! simulated joints ([`SimulatedJoints`]) of a planar arm, with obstacles, collision counting
//! ([`CollisionMonitor`]) and goal tracking. Driven by [`Simulation::update`] at the update
//! rate (controller manager cycle) on any clock: the ROS simulator (`diffusion_planner_sim`)
//! and the closed-loop evaluation (`dplan closed-loop`) both run it.
//!
//! One update at `now` is a ros2_control cycle: the joints move from the previous update to
//! `now` toward the last command (read), collisions and the goal are checked, the controller
//! samples its trajectory at `now` (update) and the new command goes to the joints (write).
//! The joint state returned is the one read at `now`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::arm::{JointLimits, SimulatedJoints};
use super::collisions::CollisionMonitor;
use super::jtc::TrajectoryController;
use super::trajectory::{JointTrajectory, TrajectoryPoint};
use super::validate::{JtcSettings, Rejection};
use crate::robot::{CircleObstacle, PlanarArm};
use crate::ros::problems::Level;
use crate::ros::report::StatusReport;
use crate::{Error, Result};

/// Joint speeds below this (rad/s) count as rest for "goal reached".
pub const REST_VELOCITY_RAD_S: f64 = 1e-3;

/// A joint state read at one update (controller joint order).
#[derive(Debug, Clone, PartialEq)]
pub struct JointSample {
    pub stamp_secs: f64,
    pub names: Vec<String>,
    pub positions: Vec<f64>,
    pub velocities: Vec<f64>,
}

/// Progress toward the current goal.
#[derive(Debug, Clone, Copy, PartialEq)]
struct GoalProgress {
    goal_m: [f64; 2],
    received_secs: f64,
    reached_secs: Option<f64>,
}

/// Everything the simulation counts (the ROS simulator's diagnostics, the closed loop's
/// per-scene result).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimReport {
    pub sim_time_secs: f64,
    pub updates: u64,
    /// Collision episodes.
    pub collisions: u64,
    pub in_collision: bool,
    pub clearance_m: Option<f64>,
    pub min_clearance_m: Option<f64>,
    pub trajectories_accepted: u64,
    pub trajectories_rejected: u64,
    pub last_rejection: Option<String>,
    /// Rejections per rule name.
    pub rejected_by_rule: BTreeMap<String, u64>,
    pub tracking_error_rad: f64,
    pub max_tracking_error_rad: f64,
    /// Updates where a joint limit changed the commanded motion.
    pub saturated_updates: u64,
    pub goals_received: u64,
    pub goals_reached: u64,
    pub goal_m: Option<[f64; 2]>,
    pub goal_distance_m: Option<f64>,
    /// The current goal was reached (end effector within the tolerance, at rest) at least once.
    pub goal_reached: bool,
    /// From the current goal's arrival to reaching it, seconds.
    pub time_to_goal_secs: Option<f64>,
    pub obstacles: usize,
    /// Joint positions, controller order, radians.
    pub positions_rad: Vec<f64>,
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct Simulation {
    arm: PlanarArm,
    /// For each robot joint, its index in controller order.
    robot_index: Vec<usize>,
    controller: TrajectoryController,
    joints: SimulatedJoints,
    monitor: CollisionMonitor,
    obstacles: Vec<CircleObstacle>,
    goal_tolerance_m: f64,
    goal: Option<GoalProgress>,
    goals_received: u64,
    goals_reached: u64,
    last_update_secs: Option<f64>,
    updates: u64,
    saturated_updates: u64,
    tracking_error_rad: f64,
    max_tracking_error_rad: f64,
    rejected_by_rule: BTreeMap<String, u64>,
}

impl Simulation {
    /// A simulation of `arm` whose controller has `settings` (its `joints` must be the robot's
    /// joints, any order), at rest at `initial_positions` (controller order), updated every
    /// `update_period_secs`; the goal counts as reached within `goal_tolerance_m`.
    pub fn new(
        arm: PlanarArm,
        settings: JtcSettings,
        initial_positions: Vec<f64>,
        update_period_secs: f64,
        goal_tolerance_m: f64,
    ) -> Result<Self> {
        settings.validate()?;
        let robot_names = arm.joint_names();
        if settings.joints.len() != robot_names.len() {
            return Err(Error::config(
                "joints",
                format!("lists {:?}, the robot has {robot_names:?}", settings.joints),
            ));
        }
        let robot_index = robot_names
            .iter()
            .map(|name| {
                settings
                    .joints
                    .iter()
                    .position(|j| j == name)
                    .ok_or_else(|| {
                        Error::config(
                            "joints",
                            format!("lacks the robot joint `{name}` (robot: {robot_names:?})"),
                        )
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        if !(goal_tolerance_m > 0.0 && goal_tolerance_m.is_finite()) {
            return Err(Error::config(
                "goal_tolerance_m",
                format!("must be finite and > 0, found {goal_tolerance_m}"),
            ));
        }
        let description = arm.description();
        let mut limits = vec![None; settings.joints.len()];
        for (joint, &c) in description.joints.iter().zip(&robot_index) {
            limits[c] = Some(JointLimits {
                lower_rad: joint.lower_rad,
                upper_rad: joint.upper_rad,
                max_velocity_rad_s: joint.max_velocity_rad_s,
                max_acceleration_rad_s2: joint.max_acceleration_rad_s2,
            });
        }
        let limits: Vec<JointLimits> = limits.into_iter().flatten().collect();
        let joints = SimulatedJoints::new(limits, initial_positions.clone())?;
        let controller =
            TrajectoryController::new(settings, initial_positions, update_period_secs)?;
        Ok(Simulation {
            arm,
            robot_index,
            controller,
            joints,
            monitor: CollisionMonitor::default(),
            obstacles: Vec::new(),
            goal_tolerance_m,
            goal: None,
            goals_received: 0,
            goals_reached: 0,
            last_update_secs: None,
            updates: 0,
            saturated_updates: 0,
            tracking_error_rad: 0.0,
            max_tracking_error_rad: 0.0,
            rejected_by_rule: BTreeMap::new(),
        })
    }

    /// Scales the joints' acceleration limits (see [`SimulatedJoints::scale_acceleration_limits`]).
    pub fn with_acceleration_limit_scale(mut self, scale: f64) -> Result<Self> {
        self.joints.scale_acceleration_limits(scale)?;
        Ok(self)
    }

    pub fn arm(&self) -> &PlanarArm {
        &self.arm
    }

    pub fn controller(&self) -> &TrajectoryController {
        &self.controller
    }

    /// The controller's joints (the order of joint states and commands).
    pub fn joint_names(&self) -> &[String] {
        &self.controller.settings().joints
    }

    /// Positions in robot order.
    pub fn robot_positions(&self) -> Vec<f64> {
        self.to_robot_order(self.joints.positions())
    }

    fn to_robot_order(&self, values: &[f64]) -> Vec<f64> {
        self.robot_index
            .iter()
            .map(|&c| values.get(c).copied().unwrap_or(f64::NAN))
            .collect()
    }

    /// The end effector, metres.
    pub fn end_effector_m(&self) -> [f64; 2] {
        self.arm.end_effector(&self.robot_positions())
    }

    /// A trajectory message arriving at `now_secs` (see [`TrajectoryController::receive`]).
    pub fn receive_trajectory(
        &mut self,
        msg: &JointTrajectory,
        now_secs: f64,
    ) -> std::result::Result<(), Rejection> {
        let result = self.controller.receive(msg, now_secs);
        if let Err(rejection) = &result {
            *self
                .rejected_by_rule
                .entry(rejection.rule().name().to_string())
                .or_insert(0) += 1;
        }
        result
    }

    /// Replaces the obstacles (base frame).
    pub fn set_obstacles(&mut self, obstacles: Vec<CircleObstacle>) {
        self.obstacles = obstacles;
    }

    pub fn obstacles(&self) -> &[CircleObstacle] {
        &self.obstacles
    }

    /// A new goal for the end effector (base frame); reaching it is tracked from `now_secs`.
    pub fn set_goal(&mut self, goal_m: [f64; 2], now_secs: f64) {
        self.goals_received += 1;
        self.goal = Some(GoalProgress {
            goal_m,
            received_secs: now_secs,
            reached_secs: None,
        });
    }

    /// One update at `now_secs` (see the module docs); returns the joint state read.
    pub fn update(&mut self, now_secs: f64) -> JointSample {
        let dt = self.last_update_secs.map(|last| now_secs - last);
        let previous = self.robot_positions();
        let moved = dt.is_some_and(|dt| dt > 0.0);
        if let Some(dt) = dt.filter(|&dt| dt > 0.0) {
            let step = self.joints.step(dt);
            self.tracking_error_rad = step.tracking_error_rad;
            self.max_tracking_error_rad = self.max_tracking_error_rad.max(step.tracking_error_rad);
            self.saturated_updates += u64::from(step.saturated);
        }
        if self.last_update_secs.is_none_or(|last| now_secs > last) {
            self.last_update_secs = Some(now_secs);
        }
        self.updates += 1;
        let q = self.robot_positions();
        self.monitor.update(
            &self.arm,
            moved.then_some(previous.as_slice()),
            &q,
            &self.obstacles,
        );
        self.check_goal(&q, now_secs);
        let measured = TrajectoryPoint::state(
            self.joints.positions().to_vec(),
            self.joints.velocities().to_vec(),
        );
        let command = self
            .controller
            .update(now_secs, &measured)
            .positions
            .clone();
        self.joints.command(&command);
        JointSample {
            stamp_secs: now_secs,
            names: self.joint_names().to_vec(),
            positions: measured.positions,
            velocities: measured.velocities,
        }
    }

    fn check_goal(&mut self, q: &[f64], now_secs: f64) {
        let Some(goal) = &mut self.goal else {
            return;
        };
        if goal.reached_secs.is_some() {
            return;
        }
        let at = self.arm.end_effector(q);
        let distance = (at[0] - goal.goal_m[0]).hypot(at[1] - goal.goal_m[1]);
        let at_rest = self
            .joints
            .velocities()
            .iter()
            .all(|v| v.abs() <= REST_VELOCITY_RAD_S);
        if distance <= self.goal_tolerance_m && at_rest {
            goal.reached_secs = Some(now_secs);
            self.goals_reached += 1;
        }
    }

    /// Whether the current goal has been reached (end effector within the tolerance, at rest).
    pub fn goal_reached(&self) -> bool {
        self.goal.is_some_and(|g| g.reached_secs.is_some())
    }

    /// Whether the joints are at rest.
    pub fn at_rest(&self) -> bool {
        self.joints
            .velocities()
            .iter()
            .all(|v| v.abs() <= REST_VELOCITY_RAD_S)
    }

    /// The counters and the current state.
    pub fn report(&self) -> SimReport {
        let stats = self.controller.stats();
        let at = self.end_effector_m();
        SimReport {
            sim_time_secs: self.last_update_secs.unwrap_or(0.0),
            updates: self.updates,
            collisions: self.monitor.episodes,
            in_collision: self.monitor.in_collision,
            clearance_m: self.monitor.clearance_m,
            min_clearance_m: self.monitor.min_clearance_m,
            trajectories_accepted: stats.accepted,
            trajectories_rejected: stats.rejected,
            last_rejection: stats.last_rejection.as_ref().map(|r| r.to_string()),
            rejected_by_rule: self.rejected_by_rule.clone(),
            tracking_error_rad: self.tracking_error_rad,
            max_tracking_error_rad: self.max_tracking_error_rad,
            saturated_updates: self.saturated_updates,
            goals_received: self.goals_received,
            goals_reached: self.goals_reached,
            goal_m: self.goal.map(|g| g.goal_m),
            goal_distance_m: self
                .goal
                .map(|g| (at[0] - g.goal_m[0]).hypot(at[1] - g.goal_m[1])),
            goal_reached: self.goal.is_some_and(|g| g.reached_secs.is_some()),
            time_to_goal_secs: self
                .goal
                .and_then(|g| g.reached_secs.map(|r| r - g.received_secs)),
            obstacles: self.obstacles.len(),
            positions_rad: self.joints.positions().to_vec(),
        }
    }
}

impl SimReport {
    /// The `/diagnostics` status `name`: ERROR while in collision, WARN after collisions or
    /// rejected trajectories, else OK; every counter as a value.
    pub fn status(&self, name: &str) -> StatusReport {
        let level = if self.in_collision {
            Level::Error
        } else if self.collisions > 0 || self.trajectories_rejected > 0 {
            Level::Warn
        } else {
            Level::Ok
        };
        let mut parts = Vec::new();
        if self.in_collision {
            parts.push("in collision".to_string());
        }
        if self.collisions > 0 {
            parts.push(format!("{} collisions", self.collisions));
        }
        if let Some(last) = &self.last_rejection {
            parts.push(format!(
                "{} rejected trajectories (last: {last})",
                self.trajectories_rejected
            ));
        }
        let message = if parts.is_empty() {
            "ok".to_string()
        } else {
            parts.join("; ")
        };
        let opt = |v: Option<f64>, digits: usize| {
            v.map_or("n/a".to_string(), |v| format!("{v:.digits$}"))
        };
        let rules = self
            .rejected_by_rule
            .iter()
            .map(|(rule, n)| format!("{n} {rule}"))
            .collect::<Vec<_>>()
            .join(", ");
        let values = vec![
            ("sim_time_s", format!("{:.3}", self.sim_time_secs)),
            ("updates", self.updates.to_string()),
            ("collisions", self.collisions.to_string()),
            ("in_collision", self.in_collision.to_string()),
            ("clearance_m", opt(self.clearance_m, 4)),
            ("min_clearance_m", opt(self.min_clearance_m, 4)),
            (
                "trajectories_accepted",
                self.trajectories_accepted.to_string(),
            ),
            (
                "trajectories_rejected",
                self.trajectories_rejected.to_string(),
            ),
            ("rejected_by_rule", rules),
            (
                "last_rejection",
                self.last_rejection.clone().unwrap_or_default(),
            ),
            (
                "tracking_error_rad",
                format!("{:.6}", self.tracking_error_rad),
            ),
            (
                "max_tracking_error_rad",
                format!("{:.6}", self.max_tracking_error_rad),
            ),
            ("saturated_updates", self.saturated_updates.to_string()),
            ("goals_received", self.goals_received.to_string()),
            ("goals_reached", self.goals_reached.to_string()),
            (
                "goal_m",
                self.goal_m
                    .map_or("n/a".into(), |g| format!("{:.4}, {:.4}", g[0], g[1])),
            ),
            ("goal_distance_m", opt(self.goal_distance_m, 4)),
            ("goal_reached", self.goal_reached.to_string()),
            ("time_to_goal_s", opt(self.time_to_goal_secs, 3)),
            ("obstacles", self.obstacles.to_string()),
            (
                "positions_rad",
                self.positions_rad
                    .iter()
                    .map(|p| format!("{p:.4}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        ];
        StatusReport {
            name: name.to_string(),
            level,
            message,
            values: values
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        }
    }
}
