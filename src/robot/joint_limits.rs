//! MoveIt's `joint_limits.yaml`: what a URDF lacks (acceleration limits) and overrides of its
//! velocity and position limits.
//!
//! ```yaml
//! joint_limits:
//!   panda_joint1:
//!     has_velocity_limits: true
//!     max_velocity: 2.175
//!     has_acceleration_limits: true
//!     max_acceleration: 15.0
//! ```
//! Keys as MoveIt's `joint_limits_interface` reads them; unknown keys and unknown joints are errors.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::{Error, Result};

/// One joint's entry (every key optional, as in MoveIt).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JointLimitEntry {
    /// Whether `min_position`/`max_position` apply.
    #[serde(default)]
    pub has_position_limits: Option<bool>,
    /// Lower position limit (rad or m).
    #[serde(default)]
    pub min_position: Option<f64>,
    /// Upper position limit (rad or m).
    #[serde(default)]
    pub max_position: Option<f64>,
    /// Whether `max_velocity` applies.
    #[serde(default)]
    pub has_velocity_limits: Option<bool>,
    /// Velocity limit (rad/s or m/s).
    #[serde(default)]
    pub max_velocity: Option<f64>,
    /// Whether `max_acceleration` applies.
    #[serde(default)]
    pub has_acceleration_limits: Option<bool>,
    /// Acceleration limit (rad/s² or m/s²).
    #[serde(default)]
    pub max_acceleration: Option<f64>,
    /// Read and ignored (the planner does not limit jerk).
    #[serde(default)]
    pub has_jerk_limits: Option<bool>,
    /// Read and ignored.
    #[serde(default)]
    pub max_jerk: Option<f64>,
    /// Read and ignored (no dynamics).
    #[serde(default)]
    pub has_effort_limits: Option<bool>,
    /// Read and ignored.
    #[serde(default)]
    pub max_effort: Option<f64>,
    /// MoveIt's flag for continuous joints; read and ignored (the URDF type decides).
    #[serde(default)]
    pub angle_wraparound: Option<bool>,
}

/// A parsed `joint_limits.yaml`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JointLimitsFile {
    /// MoveIt's default scaling factors (read, not applied: the planner uses full limits).
    #[serde(default)]
    pub default_velocity_scaling_factor: Option<f64>,
    /// See `default_velocity_scaling_factor`.
    #[serde(default)]
    pub default_acceleration_scaling_factor: Option<f64>,
    /// Joint name -> entry.
    pub joint_limits: BTreeMap<String, JointLimitEntry>,
    /// Where it came from, for messages.
    #[serde(skip)]
    pub source: String,
}

/// The limits one joint gets once URDF and `joint_limits.yaml` are merged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JointLimits {
    /// Lower position limit; `-inf` for a continuous joint.
    pub lower: f64,
    /// Upper position limit; `+inf` for a continuous joint.
    pub upper: f64,
    /// Velocity limit (> 0).
    pub max_velocity: f64,
    /// Acceleration limit (> 0) when one is known.
    pub max_acceleration: Option<f64>,
}

impl JointLimitsFile {
    /// Reads and checks a file.
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses YAML text; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<Self> {
        let mut file: JointLimitsFile = serde_yaml::from_str(text).map_err(|e| {
            Error::robot_file(
                source,
                "joint_limits",
                format!("expected MoveIt's joint_limits.yaml layout: {e}"),
            )
        })?;
        file.source = source.to_string();
        for (joint, entry) in &file.joint_limits {
            let values = [
                ("min_position", entry.min_position),
                ("max_position", entry.max_position),
                ("max_velocity", entry.max_velocity),
                ("max_acceleration", entry.max_acceleration),
                ("max_jerk", entry.max_jerk),
                ("max_effort", entry.max_effort),
            ];
            for (key, value) in values {
                if let Some(v) = value {
                    if !v.is_finite() {
                        return Err(file.err(
                            joint,
                            key,
                            format!("expected a finite number, found {v}"),
                        ));
                    }
                }
            }
            for (flag, key, value) in [
                (
                    entry.has_velocity_limits,
                    "max_velocity",
                    entry.max_velocity,
                ),
                (
                    entry.has_acceleration_limits,
                    "max_acceleration",
                    entry.max_acceleration,
                ),
            ] {
                if flag == Some(true) {
                    match value {
                        None => {
                            return Err(file.err(
                                joint,
                                key,
                                "missing although its has_* flag is true",
                            ))
                        }
                        Some(v) if !(v > 0.0) => {
                            return Err(file.err(joint, key, format!("expected > 0, found {v}")))
                        }
                        _ => {}
                    }
                }
            }
            if entry.has_position_limits == Some(true) {
                match (entry.min_position, entry.max_position) {
                    (Some(lo), Some(hi)) if lo < hi => {}
                    (lo, hi) => {
                        return Err(file.err(
                            joint,
                            "min_position",
                            format!("expected min_position < max_position, found {lo:?} .. {hi:?}"),
                        ))
                    }
                }
            }
        }
        Ok(file)
    }

    fn err(&self, joint: &str, key: &str, reason: impl Into<String>) -> Error {
        Error::robot_file(&self.source, format!("joint_limits.{joint}.{key}"), reason)
    }

    /// Applies this file's entry for `joint` (if any) over the URDF's limits, as MoveIt does:
    /// each `has_*: true` value replaces the URDF's.
    pub fn apply(&self, joint: &str, limits: &mut JointLimits, velocity_found: &mut bool) {
        let Some(entry) = self.joint_limits.get(joint) else {
            return;
        };
        if entry.has_velocity_limits == Some(true) {
            if let Some(v) = entry.max_velocity {
                limits.max_velocity = v;
                *velocity_found = true;
            }
        }
        if entry.has_acceleration_limits == Some(true) {
            limits.max_acceleration = entry.max_acceleration;
        }
        if entry.has_position_limits == Some(true) {
            if let (Some(lo), Some(hi)) = (entry.min_position, entry.max_position) {
                limits.lower = lo;
                limits.upper = hi;
            }
        }
    }

    /// Joint names with an entry that `known` does not contain (an error for the caller).
    pub fn check_joints(&self, known: &[&str], urdf_joints: &[&str]) -> Result<()> {
        for joint in self.joint_limits.keys() {
            if !known.contains(&joint.as_str()) && !urdf_joints.contains(&joint.as_str()) {
                return Err(self.err(
                    joint,
                    "name",
                    format!("no joint `{joint}` in the URDF (joints on the chain: {known:?})"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_velocity_and_adds_acceleration() {
        let text = "joint_limits:\n  j1:\n    has_velocity_limits: true\n    max_velocity: 1.5\n    has_acceleration_limits: true\n    max_acceleration: 15\n";
        let file = JointLimitsFile::parse(text, "l.yaml").unwrap();
        let mut limits = JointLimits {
            lower: -1.0,
            upper: 1.0,
            max_velocity: 2.0,
            max_acceleration: None,
        };
        let mut found = false;
        file.apply("j1", &mut limits, &mut found);
        assert!(found);
        assert_eq!(limits.max_velocity, 1.5);
        assert_eq!(limits.max_acceleration, Some(15.0));
    }

    #[test]
    fn bad_entries_name_joint_and_key() {
        let e = JointLimitsFile::parse("joint_limits:\n  j1:\n    max_accel: 3\n", "l.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("l.yaml") && e.contains("max_accel"), "{e}");
        let e = JointLimitsFile::parse(
            "joint_limits:\n  j1:\n    has_acceleration_limits: true\n    max_acceleration: .nan\n",
            "l.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("joint_limits.j1.max_acceleration") && e.contains("finite"),
            "{e}"
        );
        let e = JointLimitsFile::parse(
            "joint_limits:\n  j1:\n    has_acceleration_limits: true\n",
            "l.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("missing"), "{e}");
        let file = JointLimitsFile::parse("joint_limits:\n  jx: {}\n", "l.yaml").unwrap();
        let e = file.check_joints(&["j1"], &["j1"]).unwrap_err().to_string();
        assert!(e.contains("no joint `jx`"), "{e}");
    }
}
