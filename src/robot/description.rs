//! The robot description as written in YAML (in `model.yaml` under `robot:` and in scene files).

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One revolute joint and its limits (radians, rad/s, rad/s²).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JointDescription {
    /// Joint name as in `/joint_states` and the controller.
    pub name: String,
    /// Lower position limit, radians.
    pub lower_rad: f64,
    /// Upper position limit, radians.
    pub upper_rad: f64,
    /// Velocity limit, rad/s (> 0).
    pub max_velocity_rad_s: f64,
    /// Acceleration limit, rad/s² (> 0).
    pub max_acceleration_rad_s2: f64,
}

/// A planar serial arm: joint `i` rotates link `i` (length `link_lengths_m[i]`) about the z axis;
/// the base sits at `base_position_m` in the planning frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RobotDescription {
    /// Robot name (informative).
    pub name: String,
    /// The joints, base to tip.
    pub joints: Vec<JointDescription>,
    /// Link lengths, metres, one per joint.
    pub link_lengths_m: Vec<f64>,
    /// Link radius for collision checks (links are capsules), metres.
    pub link_radius_m: f64,
    /// Base position in the planning frame, metres.
    #[serde(default)]
    pub base_position_m: [f64; 2],
}

impl RobotDescription {
    /// Checks every value (NaN-safe: comparisons are written so that NaN fails them).
    pub fn validate(&self) -> Result<()> {
        if self.joints.is_empty() {
            return Err(Error::config(
                "robot.joints",
                "at least one joint is required",
            ));
        }
        if self.link_lengths_m.len() != self.joints.len() {
            return Err(Error::config(
                "robot.link_lengths_m",
                format!(
                    "{} link lengths for {} joints",
                    self.link_lengths_m.len(),
                    self.joints.len()
                ),
            ));
        }
        for (i, joint) in self.joints.iter().enumerate() {
            let key = |field: &str| format!("robot.joints[{i}].{field}");
            if joint.name.trim().is_empty() {
                return Err(Error::config(key("name"), "empty joint name"));
            }
            if self.joints[..i].iter().any(|j| j.name == joint.name) {
                return Err(Error::config(
                    key("name"),
                    format!("duplicate joint `{}`", joint.name),
                ));
            }
            if !(joint.lower_rad.is_finite()
                && joint.upper_rad.is_finite()
                && joint.lower_rad < joint.upper_rad)
            {
                return Err(Error::config(
                    key("lower_rad"),
                    format!(
                        "need finite lower < upper, found {} .. {}",
                        joint.lower_rad, joint.upper_rad
                    ),
                ));
            }
            if !(joint.max_velocity_rad_s > 0.0 && joint.max_velocity_rad_s.is_finite()) {
                return Err(Error::config(
                    key("max_velocity_rad_s"),
                    "must be finite and > 0",
                ));
            }
            if !(joint.max_acceleration_rad_s2 > 0.0 && joint.max_acceleration_rad_s2.is_finite()) {
                return Err(Error::config(
                    key("max_acceleration_rad_s2"),
                    "must be finite and > 0",
                ));
            }
        }
        for (i, length) in self.link_lengths_m.iter().enumerate() {
            if !(*length > 0.0 && length.is_finite()) {
                return Err(Error::config(
                    format!("robot.link_lengths_m[{i}]"),
                    format!("must be finite and > 0, found {length}"),
                ));
            }
        }
        if !(self.link_radius_m >= 0.0 && self.link_radius_m.is_finite()) {
            return Err(Error::config(
                "robot.link_radius_m",
                "must be finite and >= 0",
            ));
        }
        if !self.base_position_m.iter().all(|v| v.is_finite()) {
            return Err(Error::config("robot.base_position_m", "must be finite"));
        }
        Ok(())
    }

    /// Joint names in order.
    pub fn joint_names(&self) -> Vec<String> {
        self.joints.iter().map(|j| j.name.clone()).collect()
    }

    /// The reference task's 2-link arm (`shoulder`, `elbow`), links 0.5 m and 0.4 m.
    pub fn planar_2link() -> Self {
        let joint = |name: &str, limit: f64| JointDescription {
            name: name.to_string(),
            lower_rad: -limit,
            upper_rad: limit,
            max_velocity_rad_s: 1.5,
            max_acceleration_rad_s2: 3.0,
        };
        RobotDescription {
            name: "planar_2link".to_string(),
            joints: vec![joint("shoulder", std::f64::consts::PI), joint("elbow", 2.8)],
            link_lengths_m: vec![0.5, 0.4],
            link_radius_m: 0.03,
            base_position_m: [0.0, 0.0],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_arm_is_valid() {
        RobotDescription::planar_2link().validate().unwrap();
    }

    #[test]
    fn rejects_bad_values_by_name() {
        let mut robot = RobotDescription::planar_2link();
        robot.joints[1].max_velocity_rad_s = f64::NAN;
        let err = robot.validate().unwrap_err().to_string();
        assert!(err.contains("robot.joints[1].max_velocity_rad_s"), "{err}");

        let mut robot = RobotDescription::planar_2link();
        robot.link_lengths_m.pop();
        assert!(robot
            .validate()
            .unwrap_err()
            .to_string()
            .contains("link_lengths_m"));
    }

    #[test]
    fn unknown_yaml_key_is_an_error() {
        let yaml = "name: a\njoints: []\nlink_lengths_m: []\nlink_radius_m: 0.1\ncolour: red\n";
        let err = serde_yaml::from_str::<RobotDescription>(yaml)
            .unwrap_err()
            .to_string();
        assert!(err.contains("colour"), "{err}");
    }
}
