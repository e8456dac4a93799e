//! The node's inputs, free of ROS types: joint states merged by name, the goal, the obstacles
//! (an RViz-style marker stream plus the static ones) and the mode request. Each message is
//! checked on arrival; a bad one is dropped or rejected and reported under a problem key
//! (see [`Problems`]). `src/ros/convert.rs` turns the r2r messages into the structs here.

pub use super::obstacles::{marker, MarkerIn, ObstacleRules};
use super::obstacles::{ObstacleSet, SetChange};
use super::problems::{Area, Level, Problems};
use crate::planning::ModeRequest;
use crate::robot::CircleObstacle;

/// How long a one-off problem (a malformed message) stays in the diagnostics after it was last
/// seen, seconds.
pub const EVENT_EXPIRY_SECS: f64 = 3.0;

/// A `sensor_msgs/JointState`, reduced to what is checked and used.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JointStateIn {
    /// `header.stamp`, seconds (0 when unstamped).
    pub stamp_secs: f64,
    pub names: Vec<String>,
    pub positions: Vec<f64>,
    pub velocities_len: usize,
    pub efforts_len: usize,
}

/// A `geometry_msgs/PoseStamped` goal, reduced to its frame and position.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GoalIn {
    pub frame_id: String,
    pub position_m: [f64; 3],
}

/// Problem keys (also the prefixes shown in diagnostics).
pub mod keys {
    pub const JS_MALFORMED: &str = "joint_states.malformed";
    pub const JS_FOREIGN: &str = "joint_states.foreign";
    pub const JS_NON_FINITE: &str = "joint_states.non_finite";
    pub const JS_MISSING: &str = "joint_states.missing";
    pub const JS_STALE: &str = "joint_states.stale";
    pub const GOAL: &str = "goal";
    pub const OBSTACLES: &str = "obstacles";
    pub const OBSTACLES_STALE: &str = "obstacles.stale";
    pub const MODE: &str = "mode_request";
}

/// What a message changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing the planner cares about.
    None,
    /// Something that asks for a new plan at once.
    Replan,
    /// Input that makes the current plan unusable: stop.
    Stop,
}

/// The merged inputs.
#[derive(Debug, Clone)]
pub struct Inputs {
    joints: Vec<String>,
    /// Per robot joint: the newest finite position and when it arrived.
    positions: Vec<Option<(f64, f64)>>,
    /// Joints seen on `joint_states` that the robot does not have (reported, ignored).
    foreign_joints: Vec<String>,
    base_frame: String,
    state_timeout_secs: f64,
    goal: Option<([f64; 2], f64)>,
    obstacles: ObstacleSet,
    /// The obstacle timeout ran out (see [`Self::update_obstacles`]).
    obstacles_stale: bool,
    mode: ModeRequest,
    mode_names: Vec<String>,
}

fn strip_slash(frame: &str) -> &str {
    frame.strip_prefix('/').unwrap_or(frame)
}

impl Inputs {
    /// Inputs for a robot with `joints` (robot order) and the model's `mode_names`.
    pub fn new(
        joints: Vec<String>,
        base_frame: &str,
        state_timeout_secs: f64,
        static_obstacles: Vec<CircleObstacle>,
        mode_names: Vec<String>,
    ) -> Self {
        Inputs {
            positions: vec![None; joints.len()],
            joints,
            foreign_joints: Vec::new(),
            base_frame: strip_slash(base_frame).to_string(),
            state_timeout_secs,
            goal: None,
            obstacles: ObstacleSet::new(base_frame, static_obstacles),
            obstacles_stale: false,
            mode: ModeRequest::Any,
            mode_names,
        }
    }

    /// Sets the obstacle rules (timeout, change tolerance; see `obstacles.rs`). The change
    /// tolerance also applies to goals: a goal within it of the current one is no event.
    pub fn with_obstacle_rules(mut self, rules: ObstacleRules) -> Self {
        self.obstacles = self.obstacles.with_rules(rules);
        self
    }

    pub fn joint_names(&self) -> &[String] {
        &self.joints
    }

    pub fn base_frame(&self) -> &str {
        &self.base_frame
    }

    /// Merges a joint state by name. A message whose arrays do not match its names is dropped;
    /// NaN or infinite positions are skipped (the joint keeps its previous value and ages);
    /// joints the robot does not have are ignored (a warning only when the message has none of
    /// the robot's joints).
    pub fn on_joint_state(&mut self, msg: &JointStateIn, now: f64, problems: &mut Problems) {
        let n = msg.names.len();
        let mut malformed = Vec::new();
        if msg.positions.len() != n {
            malformed.push(format!("{} positions", msg.positions.len()));
        }
        for (what, len) in [
            ("velocities", msg.velocities_len),
            ("efforts", msg.efforts_len),
        ] {
            if len != 0 && len != n {
                malformed.push(format!("{len} {what}"));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(dup) = msg.names.iter().find(|name| !seen.insert(name.as_str())) {
            malformed.push(format!("joint `{dup}` twice"));
        }
        if !malformed.is_empty() {
            problems.event(
                keys::JS_MALFORMED,
                Area::Inputs,
                Level::Error,
                format!(
                    "message dropped: {n} names but {} (arrays must be empty or one per name)",
                    malformed.join(", ")
                ),
                now,
                EVENT_EXPIRY_SECS,
            );
            return;
        }
        let mut ours = 0;
        let mut non_finite = Vec::new();
        let mut foreign = Vec::new();
        for (name, &value) in msg.names.iter().zip(&msg.positions) {
            let slot = self
                .joints
                .iter()
                .position(|j| j == name)
                .and_then(|index| self.positions.get_mut(index));
            match slot {
                Some(slot) => {
                    ours += 1;
                    if value.is_finite() {
                        *slot = Some((value, now));
                    } else {
                        non_finite.push(format!("{name}={value}"));
                    }
                }
                None => foreign.push(name.clone()),
            }
        }
        if !non_finite.is_empty() {
            problems.event(
                keys::JS_NON_FINITE,
                Area::Inputs,
                Level::Warn,
                format!("ignored non-finite positions [{}]", non_finite.join(", ")),
                now,
                EVENT_EXPIRY_SECS,
            );
        }
        for name in &foreign {
            if !self.foreign_joints.contains(name) {
                self.foreign_joints.push(name.clone());
            }
        }
        if ours == 0 && n > 0 {
            problems.event(
                keys::JS_FOREIGN,
                Area::Inputs,
                Level::Warn,
                format!(
                    "a message named none of the robot's joints {:?} (found {:?}); ignored",
                    self.joints, foreign
                ),
                now,
                EVENT_EXPIRY_SECS,
            );
        }
    }

    /// Joints seen on `joint_states` that are not the robot's (ignored).
    pub fn foreign_joints(&self) -> &[String] {
        &self.foreign_joints
    }

    /// The measured positions (robot order) and the arrival time of the oldest, when every
    /// joint has a position younger than `state_timeout_secs`; otherwise raises the missing or
    /// stale condition and returns `None`.
    pub fn measured(&self, now: f64, problems: &mut Problems) -> Option<(Vec<f64>, f64)> {
        let missing: Vec<&str> = self
            .joints
            .iter()
            .zip(&self.positions)
            .filter(|(_, p)| p.is_none())
            .map(|(name, _)| name.as_str())
            .collect();
        if missing.is_empty() {
            problems.clear(keys::JS_MISSING);
        } else {
            let nothing_yet = missing.len() == self.joints.len();
            problems.condition(
                keys::JS_MISSING,
                Area::Inputs,
                if nothing_yet {
                    Level::Warn
                } else {
                    Level::Error
                },
                if nothing_yet {
                    "waiting for the first joint state".to_string()
                } else {
                    format!("no valid position received yet for {missing:?}; holding")
                },
                now,
            );
        }
        let stale: Vec<&str> = self
            .joints
            .iter()
            .zip(&self.positions)
            .filter(|(_, p)| matches!(p, Some((_, at)) if now - at > self.state_timeout_secs))
            .map(|(name, _)| name.as_str())
            .collect();
        if stale.is_empty() {
            problems.clear(keys::JS_STALE);
        } else {
            // The text names the joints, not their ages (which change every tick): logged once.
            problems.condition(
                keys::JS_STALE,
                Area::Inputs,
                Level::Error,
                format!(
                    "no valid position for {stale:?} within state_timeout_secs = {} s; holding",
                    self.state_timeout_secs
                ),
                now,
            );
        }
        if !missing.is_empty() || !stale.is_empty() {
            return None;
        }
        let mut positions = Vec::with_capacity(self.joints.len());
        let mut oldest = f64::INFINITY;
        for (value, at) in self.positions.iter().flatten() {
            positions.push(*value);
            oldest = oldest.min(*at);
        }
        Some((positions, oldest))
    }

    /// Ages of the joints' newest positions, seconds (`None` for one never received).
    pub fn ages_secs(&self, now: f64) -> Vec<Option<f64>> {
        self.positions
            .iter()
            .map(|p| p.map(|(_, at)| now - at))
            .collect()
    }

    /// Takes a goal: its frame must be `base_frame` (a leading `/` is ignored) and x, y finite
    /// (z is ignored: the arm moves in the plane). A rejected goal replaces the previous one:
    /// the robot stops rather than go on to a goal that was superseded. A goal within
    /// `change_tolerance_m` of the current one (e.g. re-sent) changes nothing.
    pub fn on_goal(&mut self, msg: &GoalIn, now: f64, problems: &mut Problems) -> Change {
        let frame = strip_slash(&msg.frame_id);
        let problem = if frame != self.base_frame {
            Some(format!(
                "goal in frame `{}` rejected: goals must be in base_frame `{}` (no tf lookup)",
                msg.frame_id, self.base_frame
            ))
        } else if !(msg.position_m[0].is_finite() && msg.position_m[1].is_finite()) {
            Some(format!(
                "goal ({}, {}) rejected: not finite",
                msg.position_m[0], msg.position_m[1]
            ))
        } else {
            None
        };
        match problem {
            Some(text) => {
                self.goal = None;
                problems.condition(keys::GOAL, Area::Inputs, Level::Error, text, now);
                Change::Stop
            }
            None => {
                problems.clear(keys::GOAL);
                let goal = [msg.position_m[0], msg.position_m[1]];
                let tolerance = self.obstacles.rules().change_tolerance_m;
                if let Some((current, _)) = self.goal {
                    if (goal[0] - current[0]).hypot(goal[1] - current[1]) <= tolerance {
                        // The same goal again (within `change_tolerance_m`): no event.
                        return Change::None;
                    }
                }
                self.goal = Some((goal, now));
                Change::Replan
            }
        }
    }

    /// The goal and when it arrived.
    pub fn goal(&self) -> Option<([f64; 2], f64)> {
        self.goal
    }

    /// Drops the goal (after the planner found it unreachable).
    pub fn clear_goal(&mut self) {
        self.goal = None;
    }

    /// Applies an obstacles message as RViz applies markers: ADD (or MODIFY) of a SPHERE or
    /// CYLINDER sets the circle `(ns, id)` (centre x, y; radius half the larger of scale x, y)
    /// for its `lifetime` (0 = forever), DELETE removes one, DELETEALL removes those of its
    /// namespace (all for an empty one). The message is applied whole or not at all: a marker
    /// of another type, in another frame, with non-finite or non-positive geometry or an
    /// unknown action rejects it, the set is invalid and the node holds until a valid obstacles
    /// message arrives. Changes within `change_tolerance_m` of the last event's set are no
    /// event ([`Change::None`]; the newest set is still the one planned with).
    pub fn on_obstacles(&mut self, msg: &[MarkerIn], now: f64, problems: &mut Problems) -> Change {
        match self.obstacles.apply(msg, now) {
            SetChange::Rejected(text) => {
                problems.condition(
                    keys::OBSTACLES,
                    Area::Inputs,
                    Level::Error,
                    format!("obstacles message rejected: {text}; holding until a valid one"),
                    now,
                );
                Change::Stop
            }
            change => {
                problems.clear(keys::OBSTACLES);
                if change == SetChange::Changed {
                    Change::Replan
                } else {
                    Change::None
                }
            }
        }
    }

    /// Once per tick: drops the markers whose lifetime ran out (an event when the set changed
    /// beyond the tolerance) and checks the obstacle timeout (an input error while the set is
    /// stale).
    pub fn update_obstacles(&mut self, now: f64, problems: &mut Problems) -> Change {
        let change = self.obstacles.expire(now);
        match self.obstacles.stale_age_secs(now) {
            Some(age) => {
                let text = if self.obstacles.received() {
                    format!(
                        "no valid obstacles message for {age:.1} s (obstacle_timeout_secs = {} s); \
                         holding",
                        self.obstacles.rules().timeout_secs
                    )
                } else {
                    format!(
                        "no obstacles message yet after {age:.1} s (obstacle_timeout_secs = {} s); \
                         holding",
                        self.obstacles.rules().timeout_secs
                    )
                };
                // The text changes with the age: keep the first one (logged once).
                if !problems.is_active(keys::OBSTACLES_STALE) {
                    problems.condition(
                        keys::OBSTACLES_STALE,
                        Area::Inputs,
                        Level::Error,
                        text,
                        now,
                    );
                }
                self.obstacles_stale = true;
                return Change::Stop;
            }
            None => {
                self.obstacles_stale = false;
                problems.clear(keys::OBSTACLES_STALE);
            }
        }
        if change == SetChange::Changed {
            Change::Replan
        } else {
            Change::None
        }
    }

    /// Whether the obstacle set can be planned with: the last message was valid (or none came)
    /// and the set is not stale.
    pub fn obstacles_ok(&self) -> bool {
        self.obstacles.is_valid() && !self.obstacles_stale
    }

    /// The static obstacles, then the markers' circles in (ns, id) order.
    pub fn obstacles(&self) -> Vec<CircleObstacle> {
        self.obstacles.circles()
    }

    pub fn obstacles_secs(&self) -> Option<f64> {
        self.obstacles.secs()
    }

    /// Takes a mode request: `any` or one of the model's mode names; an unknown name or an
    /// empty string is rejected and the previous request stays.
    pub fn on_mode(&mut self, text: &str, now: f64, problems: &mut Problems) -> Change {
        if text.trim().is_empty() {
            problems.condition(
                keys::MODE,
                Area::Inputs,
                Level::Error,
                format!(
                    "empty mode request rejected (send `any` or one of {:?}); keeping `{}`",
                    self.mode_names,
                    String::from(self.mode.clone())
                ),
                now,
            );
            return Change::None;
        }
        let request = ModeRequest::parse(text);
        if let ModeRequest::Named(name) = &request {
            if !self.mode_names.contains(name) {
                problems.condition(
                    keys::MODE,
                    Area::Inputs,
                    Level::Error,
                    format!(
                        "unknown mode `{name}` rejected (the model knows {:?}, or `any`); \
                         keeping `{}`",
                        self.mode_names,
                        String::from(self.mode.clone())
                    ),
                    now,
                );
                return Change::None;
            }
        }
        problems.clear(keys::MODE);
        if request == self.mode {
            return Change::None;
        }
        self.mode = request;
        Change::Replan
    }

    pub fn mode(&self) -> &ModeRequest {
        &self.mode
    }
}

#[cfg(test)]
#[path = "inputs_tests.rs"]
mod tests;
