//! The node's parameters: one typed, validated struct built from the parameter map the node
//! receives (`--ros-args --params-file ...`, `-p key:=value`). Every key is documented in
//! `docs/PARAMETERS.md` (unit, default, meaning). A missing required key, a key of the wrong
//! type, a value out of range or an unknown key fails the start with a message naming the key;
//! no value is silently replaced.
//!
//! Types are ROS 2's and strict: a double written as `50` (an integer) is an error; write `50.0`.

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

pub use crate::ros::param_value::{load_params_file, parse_params_yaml, ParamMap, ParamValue};

use crate::device::DeviceSpec;
use crate::{Error, Result};

/// Default values of the optional parameters (see `docs/PARAMETERS.md`).
pub mod defaults {
    pub const DEVICE: &str = "auto";
    pub const BASE_FRAME: &str = "base_link";
    pub const CONTROL_RATE_HZ: f64 = 50.0;
    pub const REPLAN_RATE_HZ: f64 = 2.0;
    pub const NUM_SAMPLES: i64 = 32;
    pub const SAMPLER: &str = "ddim";
    pub const INFERENCE_STEPS: i64 = 10;
    pub const GUIDANCE_SCALE: f64 = 2.0;
    pub const SELECTION: &str = "mass";
    pub const STATE_TIMEOUT_SECS: f64 = 0.5;
    pub const GOAL_TOLERANCE_M: f64 = 0.02;
    pub const SEED: i64 = 0;
    /// Off: the 1000-scene evaluation found the x̂0 score adds little beyond the collision
    /// check (README, "The shipped model and its evaluation").
    pub const HALLUCINATION_THRESHOLD: f64 = 0.0;
    pub const CLEARANCE_MARGIN_M: f64 = 0.01;
    pub const MIN_CLEARANCE_M: f64 = 0.005;
    pub const OBSTACLE_TIMEOUT_SECS: f64 = 0.0;
    pub const CHANGE_TOLERANCE_M: f64 = 0.001;
    pub const TRACKING_TOLERANCE_RAD: f64 = 0.1;
    pub const TRACKING_TIMEOUT_SECS: f64 = 0.5;
    pub const DIAGNOSTICS_RATE_HZ: f64 = 2.0;
    pub const USE_SIM_TIME: bool = false;
    pub const STAMP_TRAJECTORIES: bool = true;
}

/// Every key the node accepts, in the order of `docs/PARAMETERS.md`.
pub const PARAMETER_KEYS: &[&str] = &[
    "model_path",
    "device",
    "joints",
    "base_frame",
    "control_rate_hz",
    "replan_rate_hz",
    "num_samples",
    "sampler",
    "inference_steps",
    "guidance_scale",
    "selection",
    "state_timeout_secs",
    "goal_tolerance_m",
    "seed",
    "hallucination_threshold",
    "clearance_margin_m",
    "min_clearance_m",
    "static_obstacles",
    "obstacle_timeout_secs",
    "change_tolerance_m",
    "tracking_tolerance_rad",
    "tracking_timeout_secs",
    "diagnostics_rate_hz",
    "stamp_trajectories",
    "use_sim_time",
];

/// Largest batch of candidates per planning call.
pub const MAX_NUM_SAMPLES: usize = 1024;
/// Largest number of reverse diffusion steps per planning call.
pub const MAX_INFERENCE_STEPS: usize = 1000;
/// Largest classifier-free guidance scale.
pub const MAX_GUIDANCE_SCALE: f64 = 100.0;

/// The reverse diffusion process used at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SamplerKind {
    /// Deterministic DDIM (eta 0) over `inference_steps` steps.
    Ddim,
    /// Stochastic DDPM over `inference_steps` steps.
    Ddpm,
}

/// How the mode to follow is chosen when the current one is no longer valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectionPolicy {
    /// The mode holding the most valid candidates (the most likely mode under the model).
    Mass,
    /// The mode whose best candidate has the lowest cost.
    Cost,
}

/// A circular obstacle in `base_frame` (the arm moves in the x-y plane).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StaticObstacle {
    pub x_m: f64,
    pub y_m: f64,
    pub radius_m: f64,
}

/// The validated parameters of the node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeParams {
    /// The model folder (`model.yaml`, `model.safetensors`).
    pub model_path: PathBuf,
    /// Where the network runs.
    pub device: DeviceSpec,
    /// The controller's joints; published trajectories name them in this order.
    pub joints: Vec<String>,
    /// Frame of goals, obstacles and markers.
    pub base_frame: String,
    /// Rate of the executor, which publishes a trajectory every period.
    pub control_rate_hz: f64,
    /// Rate of receding-horizon replanning when no event asks for a plan earlier.
    pub replan_rate_hz: f64,
    /// Candidates sampled per planning call (one batch).
    pub num_samples: usize,
    pub sampler: SamplerKind,
    /// Reverse diffusion steps per planning call.
    pub inference_steps: usize,
    /// Classifier-free guidance scale for mode requests (1 = plain conditional).
    pub guidance_scale: f64,
    pub selection: SelectionPolicy,
    /// Joint states older than this make the node hold.
    pub state_timeout_secs: f64,
    /// End-effector distance to the goal that counts as reached.
    pub goal_tolerance_m: f64,
    /// Seed of the sampler's noise; each planning call derives its own seed from it.
    pub seed: u64,
    /// Candidates whose predicted-x0 variance exceeds this are rejected (normalised units²).
    pub hallucination_threshold: f64,
    /// Clearance the candidate repair aims for (`PlannerConfig::repair.margin_m`), metres.
    pub clearance_margin_m: f64,
    /// Candidates and timed plans closer than this to an obstacle are rejected, metres.
    pub min_clearance_m: f64,
    /// Obstacles that are always present, in addition to the `obstacles` topic.
    pub static_obstacles: Vec<StaticObstacle>,
    /// Seconds without a valid obstacles message after which the set is stale; 0 = never.
    pub obstacle_timeout_secs: f64,
    /// Obstacle and goal changes up to this are no event, metres.
    pub change_tolerance_m: f64,
    /// Largest |measured - commanded| joint position before the node holds, radians.
    pub tracking_tolerance_rad: f64,
    /// Window in which a controller that stops following is detected, seconds.
    pub tracking_timeout_secs: f64,
    /// Rate of `/diagnostics`.
    pub diagnostics_rate_hz: f64,
    /// Stamp moving trajectories with the node clock instead of 0.
    pub stamp_trajectories: bool,
    /// Use `/clock` for timers and stamps (applied by r2r's parameter handler).
    pub use_sim_time: bool,
}

impl FromStr for SamplerKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "ddim" => Ok(SamplerKind::Ddim),
            "ddpm" => Ok(SamplerKind::Ddpm),
            _ => Err("expected `ddim` or `ddpm`".into()),
        }
    }
}

impl fmt::Display for SamplerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SamplerKind::Ddim => "ddim",
            SamplerKind::Ddpm => "ddpm",
        })
    }
}

impl FromStr for SelectionPolicy {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "mass" => Ok(SelectionPolicy::Mass),
            "cost" => Ok(SelectionPolicy::Cost),
            _ => Err("expected `mass` or `cost`".into()),
        }
    }
}

impl fmt::Display for SelectionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SelectionPolicy::Mass => "mass",
            SelectionPolicy::Cost => "cost",
        })
    }
}

impl NodeParams {
    /// Builds and validates the parameters from the node's parameter map. Every problem is
    /// reported (one error naming the key, or one listing every bad key).
    pub fn from_map(map: &ParamMap) -> Result<NodeParams> {
        // Each read records an error and returns a placeholder when the value is missing or
        // bad; the placeholders never leave this function, because any error fails it.
        let mut r = Reader {
            map,
            errors: Vec::new(),
            failed: BTreeSet::new(),
        };
        for (key, value) in map {
            // rcl turns `key: []` into a parameter without a value; only a list that may be
            // empty accepts that.
            if *value == ParamValue::NotSet && key != "static_obstacles" {
                r.fail(key, "has no value (an empty list has no type in ROS 2)");
            }
        }
        let params = NodeParams {
            model_path: PathBuf::from(r.string("model_path", None)),
            device: r.parsed("device", defaults::DEVICE, DeviceSpec::Auto, |s| {
                s.parse::<DeviceSpec>().map_err(|e| e.to_string())
            }),
            joints: r.string_array("joints"),
            base_frame: r.string("base_frame", Some(defaults::BASE_FRAME)),
            control_rate_hz: r.positive("control_rate_hz", defaults::CONTROL_RATE_HZ),
            replan_rate_hz: r.positive("replan_rate_hz", defaults::REPLAN_RATE_HZ),
            num_samples: r.count("num_samples", defaults::NUM_SAMPLES, MAX_NUM_SAMPLES),
            sampler: r.parsed("sampler", defaults::SAMPLER, SamplerKind::Ddim, str::parse),
            inference_steps: r.count(
                "inference_steps",
                defaults::INFERENCE_STEPS,
                MAX_INFERENCE_STEPS,
            ),
            guidance_scale: r.double("guidance_scale", defaults::GUIDANCE_SCALE),
            selection: r.parsed(
                "selection",
                defaults::SELECTION,
                SelectionPolicy::Mass,
                str::parse,
            ),
            state_timeout_secs: r.positive("state_timeout_secs", defaults::STATE_TIMEOUT_SECS),
            goal_tolerance_m: r.positive("goal_tolerance_m", defaults::GOAL_TOLERANCE_M),
            seed: r.seed("seed", defaults::SEED),
            hallucination_threshold: r
                .double("hallucination_threshold", defaults::HALLUCINATION_THRESHOLD),
            clearance_margin_m: r.double("clearance_margin_m", defaults::CLEARANCE_MARGIN_M),
            min_clearance_m: r.double("min_clearance_m", defaults::MIN_CLEARANCE_M),
            static_obstacles: r.obstacles("static_obstacles"),
            obstacle_timeout_secs: r
                .double("obstacle_timeout_secs", defaults::OBSTACLE_TIMEOUT_SECS),
            change_tolerance_m: r.double("change_tolerance_m", defaults::CHANGE_TOLERANCE_M),
            tracking_tolerance_rad: r
                .positive("tracking_tolerance_rad", defaults::TRACKING_TOLERANCE_RAD),
            tracking_timeout_secs: r
                .positive("tracking_timeout_secs", defaults::TRACKING_TIMEOUT_SECS),
            diagnostics_rate_hz: r.positive("diagnostics_rate_hz", defaults::DIAGNOSTICS_RATE_HZ),
            stamp_trajectories: r.bool("stamp_trajectories", defaults::STAMP_TRAJECTORIES),
            use_sim_time: r.bool("use_sim_time", defaults::USE_SIM_TIME),
        };
        params.check_values(&mut r);
        for key in map.keys() {
            if !PARAMETER_KEYS.contains(&key.as_str()) {
                r.fail(
                    key,
                    format!(
                        "unknown parameter; the node accepts: {}",
                        PARAMETER_KEYS.join(", ")
                    ),
                );
            }
        }
        r.finish()?;
        Ok(params)
    }

    /// Checks within and across values that were read without error.
    fn check_values(&self, r: &mut Reader<'_>) {
        if r.ok("model_path")
            && self
                .model_path
                .as_os_str()
                .to_string_lossy()
                .trim()
                .is_empty()
        {
            r.fail("model_path", "is empty; give the model folder");
        }
        if r.ok("joints") {
            check_joint_names(r, &self.joints);
        }
        if r.ok("base_frame") && self.base_frame.trim().is_empty() {
            r.fail("base_frame", "is empty");
        }
        let control = self.control_rate_hz;
        for (key, rate) in [
            ("replan_rate_hz", self.replan_rate_hz),
            ("diagnostics_rate_hz", self.diagnostics_rate_hz),
        ] {
            if r.ok("control_rate_hz") && r.ok(key) && rate > control {
                r.fail(
                    key,
                    format!("is {rate} Hz, above control_rate_hz ({control} Hz)"),
                );
            }
        }
        let margin = self.clearance_margin_m;
        if r.ok("clearance_margin_m") && !(margin.is_finite() && (0.0..=1.0).contains(&margin)) {
            r.fail(
                "clearance_margin_m",
                format!("is {margin}; must be in [0, 1] m"),
            );
        }
        for (key, value, max, unit) in [
            (
                "hallucination_threshold",
                self.hallucination_threshold,
                1.0e6,
                "normalised units² (0: off)",
            ),
            ("min_clearance_m", self.min_clearance_m, 1.0, "m"),
            ("change_tolerance_m", self.change_tolerance_m, 0.1, "m"),
            (
                "obstacle_timeout_secs",
                self.obstacle_timeout_secs,
                3600.0,
                "s",
            ),
        ] {
            if r.ok(key) && !(value.is_finite() && (0.0..=max).contains(&value)) {
                r.fail(key, format!("is {value}; must be in [0, {max}] {unit}"));
            }
        }
        if r.ok("change_tolerance_m")
            && r.ok("min_clearance_m")
            && self.change_tolerance_m > self.min_clearance_m
        {
            r.fail(
                "change_tolerance_m",
                format!(
                    "is {} m, above min_clearance_m ({} m): an obstacle change within the \
                     tolerance could then bring an obstacle into a verified plan unnoticed",
                    self.change_tolerance_m, self.min_clearance_m
                ),
            );
        }
        let scale = self.guidance_scale;
        if r.ok("guidance_scale") && !(0.0..=MAX_GUIDANCE_SCALE).contains(&scale) {
            r.fail(
                "guidance_scale",
                format!("is {scale}, expected 0.0 ..= {MAX_GUIDANCE_SCALE:?}"),
            );
        }
    }

    /// The validation hook for the loaded model: `joints` must name exactly the model's joints
    /// (any order; trajectories are published in the order of `joints`).
    pub fn check_joints(&self, model_joints: &[String]) -> Result<()> {
        let ours: BTreeSet<&str> = self.joints.iter().map(String::as_str).collect();
        let theirs: BTreeSet<&str> = model_joints.iter().map(String::as_str).collect();
        if ours == theirs && self.joints.len() == model_joints.len() {
            return Ok(());
        }
        let missing: Vec<&str> = theirs.difference(&ours).copied().collect();
        let unexpected: Vec<&str> = ours.difference(&theirs).copied().collect();
        Err(Error::config(
            "joints",
            format!(
                "does not match the model's joints {model_joints:?}: missing {missing:?}, \
                 not in the model {unexpected:?}"
            ),
        ))
    }

    /// The executor's period.
    pub fn control_period_secs(&self) -> f64 {
        1.0 / self.control_rate_hz
    }
}

fn check_joint_names(r: &mut Reader<'_>, joints: &[String]) {
    if joints.is_empty() {
        r.fail("joints", "is empty; list the controller's joints");
    }
    let mut seen = BTreeSet::new();
    for name in joints {
        if name.trim().is_empty() {
            r.fail("joints", "contains an empty name");
        } else if !seen.insert(name.as_str()) {
            r.fail("joints", format!("names `{name}` twice"));
        }
    }
}

/// Reads typed values from the map, collecting every error; a getter returns a placeholder
/// (the default, or empty) after recording an error.
pub(crate) struct Reader<'a> {
    map: &'a ParamMap,
    errors: Vec<Error>,
    /// Keys that already have an error (cross-checks skip them).
    failed: BTreeSet<String>,
}

impl<'a> Reader<'a> {
    /// A reader of `map` without errors yet (also used by the simulator's parameters).
    pub(crate) fn new(map: &'a ParamMap) -> Self {
        Reader {
            map,
            errors: Vec::new(),
            failed: BTreeSet::new(),
        }
    }

    pub(crate) fn fail(&mut self, key: &str, reason: impl Into<String>) {
        self.failed.insert(key.to_string());
        self.errors.push(Error::config(key, reason));
    }

    pub(crate) fn required(&mut self, key: &str) {
        if self.ok(key) {
            self.fail(key, "is required");
        }
    }

    pub(crate) fn ok(&self, key: &str) -> bool {
        !self.failed.contains(key)
    }

    pub(crate) fn finish(&mut self) -> Result<()> {
        let mut errors = std::mem::take(&mut self.errors);
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            n => {
                let lines: Vec<String> = errors.iter().map(|e| format!("  - {e}")).collect();
                Err(Error::Invalid(format!(
                    "{n} invalid parameters:\n{}",
                    lines.join("\n")
                )))
            }
        }
    }

    /// The value of `key`, `None` when absent (or declared without value).
    pub(crate) fn get(&self, key: &str) -> Option<ParamValue> {
        self.map
            .get(key)
            .filter(|v| **v != ParamValue::NotSet)
            .cloned()
    }

    pub(crate) fn wrong_type(&mut self, key: &str, expected: &str, found: &ParamValue) {
        let hint = match (expected, found) {
            ("a double", ParamValue::Integer(i)) => format!(" (write {i}.0)"),
            _ => String::new(),
        };
        self.fail(
            key,
            format!(
                "expected {expected}, found {} {found}{hint}",
                found.type_name()
            ),
        );
    }

    /// A string; required when `default` is `None`.
    pub(crate) fn string(&mut self, key: &str, default: Option<&str>) -> String {
        match (self.get(key), default) {
            (Some(ParamValue::String(s)), _) => s,
            (Some(other), _) => {
                self.wrong_type(key, "a string", &other);
                String::new()
            }
            (None, Some(d)) => d.to_string(),
            (None, None) => {
                self.required(key);
                String::new()
            }
        }
    }

    /// A string parsed into `T`.
    pub(crate) fn parsed<T>(
        &mut self,
        key: &str,
        default: &str,
        placeholder: T,
        parse: impl Fn(&str) -> std::result::Result<T, String>,
    ) -> T {
        let text = self.string(key, Some(default));
        if !self.ok(key) {
            return placeholder;
        }
        parse(&text).unwrap_or_else(|reason| {
            self.fail(key, format!("is {text:?}: {reason}"));
            placeholder
        })
    }

    /// A required string array.
    pub(crate) fn string_array(&mut self, key: &str) -> Vec<String> {
        match self.get(key) {
            Some(ParamValue::StringArray(v)) => v,
            Some(other) => {
                self.wrong_type(key, "a string array", &other);
                Vec::new()
            }
            None => {
                self.required(key);
                Vec::new()
            }
        }
    }

    /// A finite double.
    pub(crate) fn double(&mut self, key: &str, default: f64) -> f64 {
        let value = match self.get(key) {
            Some(ParamValue::Double(v)) => v,
            Some(other) => {
                self.wrong_type(key, "a double", &other);
                return default;
            }
            None => default,
        };
        if !value.is_finite() {
            self.fail(key, format!("is {value}, expected a finite number"));
            return default;
        }
        value
    }

    /// A finite double > 0 (NaN fails the check).
    pub(crate) fn positive(&mut self, key: &str, default: f64) -> f64 {
        let value = self.double(key, default);
        if self.ok(key) && value.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            self.fail(key, format!("is {value}, expected > 0"));
            return default;
        }
        value
    }

    pub(crate) fn integer(&mut self, key: &str, default: i64) -> i64 {
        match self.get(key) {
            Some(ParamValue::Integer(v)) => v,
            Some(other) => {
                self.wrong_type(key, "an integer", &other);
                default
            }
            None => default,
        }
    }

    /// An integer in 1 ..= max.
    pub(crate) fn count(&mut self, key: &str, default: i64, max: usize) -> usize {
        let value = self.integer(key, default);
        match usize::try_from(value) {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => {
                if self.ok(key) {
                    self.fail(key, format!("is {value}, expected 1 ..= {max}"));
                }
                1
            }
        }
    }

    /// An integer >= 0.
    pub(crate) fn seed(&mut self, key: &str, default: i64) -> u64 {
        let value = self.integer(key, default);
        u64::try_from(value).unwrap_or_else(|_| {
            self.fail(key, format!("is {value}, expected >= 0"));
            0
        })
    }

    pub(crate) fn bool(&mut self, key: &str, default: bool) -> bool {
        match self.get(key) {
            Some(ParamValue::Bool(v)) => v,
            Some(other) => {
                self.wrong_type(key, "a bool", &other);
                default
            }
            None => default,
        }
    }

    /// A flat double array of (x, y, radius) triples; absent = none.
    pub(crate) fn obstacles(&mut self, key: &str) -> Vec<StaticObstacle> {
        let values = match self.get(key) {
            Some(ParamValue::DoubleArray(v)) => v,
            Some(other) => {
                self.wrong_type(key, "a double array of x, y, radius triples", &other);
                return Vec::new();
            }
            None => return Vec::new(),
        };
        if values.len() % 3 != 0 {
            self.fail(
                key,
                format!(
                    "has {} values, expected x, y, radius triples (a multiple of 3)",
                    values.len()
                ),
            );
            return Vec::new();
        }
        let mut obstacles = Vec::with_capacity(values.len() / 3);
        for (i, triple) in values.chunks_exact(3).enumerate() {
            let &[x_m, y_m, radius_m] = triple else {
                continue;
            };
            if !(x_m.is_finite() && y_m.is_finite()) {
                self.fail(key, format!("obstacle {i} has a non-finite centre"));
            } else if !(radius_m > 0.0 && radius_m.is_finite()) {
                self.fail(
                    key,
                    format!("obstacle {i} has radius {radius_m}, expected a finite value > 0"),
                );
            } else {
                obstacles.push(StaticObstacle { x_m, y_m, radius_m });
            }
        }
        obstacles
    }
}

#[cfg(test)]
#[path = "params_tests.rs"]
mod tests;
