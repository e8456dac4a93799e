//! The planner's settings.

use serde::{Deserialize, Serialize};

use super::repair::RepairConfig;
use super::scoring::{CostWeights, ScoringConfig};
use super::selection::{SelectionConfig, SelectionPolicy};
use super::timing::TimingConfig;
use crate::{Error, Result};

/// Settings of [`super::Planner`] (YAML/JSON; unknown keys are an error, missing keys take the
/// documented defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlannerConfig {
    /// Candidates per planning call (K). Default 32.
    pub num_samples: usize,
    /// Base seed; call `n` (counting from 0 since the planner was built) samples with
    /// `seed + n` (wrapping). Default 0.
    pub seed: u64,
    /// How to pick a mode without a current one. Default `mass`.
    pub selection_policy: SelectionPolicy,
    /// Keep the current mode while it has a valid member. Default true.
    pub hysteresis: bool,
    /// A mode farther than this from the previous choice is not the current mode (mean
    /// arc-length-resampled waypoint distance), radians. Default 0.6.
    pub hysteresis_max_distance_rad: f64,
    /// Average-linkage merge threshold on the mean waypoint distance, radians. Default 0.3.
    pub cluster_threshold_rad: f64,
    /// Largest end-effector distance to the goal at the last waypoint, metres. Default 0.03.
    pub goal_tolerance_m: f64,
    /// Largest distance of a candidate's first waypoint from the start, radians. Default 0.25.
    pub max_start_error_rad: f64,
    /// A candidate whose last waypoint puts the end effector at most this far from the goal is
    /// bent onto the goal: its end moves to the nearest IK solution and the offset is ramped in
    /// linearly along the path (`JointPath::anchor`), then it is scored and checked like any
    /// other. The sampled error stays in the scores (`sampled_goal_error_m`). `null` disables
    /// it (then the sampled end must lie within `goal_tolerance_m`). Metres; default 0.1.
    pub max_goal_projection_m: Option<f64>,
    /// Local repair of candidates that graze or shallowly cut an obstacle, before scoring
    /// (`repair_path`).
    pub repair: RepairConfig,
    /// Largest x̂0 variance (model units); `null` disables the check. Default `null`.
    pub hallucination_threshold: Option<f64>,
    /// Candidates and timed plans passing closer than this to an obstacle (swept) are rejected
    /// (reason `clearance`), separate from the repair's target `repair.margin_m`. Metres;
    /// default 0 (only collisions; the node sets its `min_clearance_m`, default 0.005).
    pub min_clearance_m: f64,
    /// Weights of the selection cost.
    pub cost_weights: CostWeights,
    /// Rounds of the binomial filter run over the chosen path before it is timed (end points
    /// fixed; `smooth_path`); the smoothed plan is verified like any other and the path as
    /// sampled is used when it fails or is not faster. 0 disables it. Default 8.
    pub smoothing_passes: usize,
    /// Velocity/acceleration scaling and the hold duration of the time parameterisation.
    pub timing: TimingConfig,
    /// Step at which the timed plan is re-checked for collisions and limits, seconds.
    /// Default 0.01.
    pub verify_dt_secs: f64,
}

impl Default for PlannerConfig {
    fn default() -> Self {
        PlannerConfig {
            num_samples: 32,
            seed: 0,
            selection_policy: SelectionPolicy::Mass,
            hysteresis: true,
            hysteresis_max_distance_rad: 0.6,
            cluster_threshold_rad: 0.3,
            goal_tolerance_m: 0.03,
            max_start_error_rad: 0.25,
            max_goal_projection_m: Some(0.1),
            repair: RepairConfig::default(),
            hallucination_threshold: None,
            min_clearance_m: 0.0,
            cost_weights: CostWeights::default(),
            smoothing_passes: 8,
            timing: TimingConfig::default(),
            verify_dt_secs: 0.01,
        }
    }
}

fn positive(key: &str, value: f64) -> Result<()> {
    if value > 0.0 && value.is_finite() {
        Ok(())
    } else {
        Err(Error::config(
            key,
            format!("must be finite and > 0, found {value}"),
        ))
    }
}

impl PlannerConfig {
    /// Reads a YAML file (unknown keys are errors; not validated, callers override and then
    /// [`Self::validate`]).
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_yaml::from_str(&text).map_err(|source| Error::Yaml {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Checks every value (NaN fails).
    pub fn validate(&self) -> Result<()> {
        if self.num_samples == 0 {
            return Err(Error::config("num_samples", "must be >= 1, found 0"));
        }
        positive(
            "hysteresis_max_distance_rad",
            self.hysteresis_max_distance_rad,
        )?;
        positive("cluster_threshold_rad", self.cluster_threshold_rad)?;
        positive("goal_tolerance_m", self.goal_tolerance_m)?;
        positive("max_start_error_rad", self.max_start_error_rad)?;
        positive("verify_dt_secs", self.verify_dt_secs)?;
        if !(self.min_clearance_m >= 0.0 && self.min_clearance_m.is_finite()) {
            return Err(Error::config(
                "min_clearance_m",
                format!("must be finite and >= 0, found {}", self.min_clearance_m),
            ));
        }
        if let Some(threshold) = self.hallucination_threshold {
            positive("hallucination_threshold", threshold)?;
        }
        if let Some(distance) = self.max_goal_projection_m {
            positive("max_goal_projection_m", distance)?;
        }
        let w = &self.cost_weights;
        for (key, value) in [
            ("cost_weights.path_length", w.path_length),
            ("cost_weights.smoothness", w.smoothness),
            ("cost_weights.goal_error", w.goal_error),
        ] {
            if !(value >= 0.0 && value.is_finite()) {
                return Err(Error::config(
                    key,
                    format!("must be finite and >= 0, found {value}"),
                ));
            }
        }
        self.repair.validate("repair.")?;
        self.timing.validate("timing.")
    }

    /// The scoring part.
    pub fn scoring(&self) -> ScoringConfig {
        ScoringConfig {
            goal_tolerance_m: self.goal_tolerance_m,
            max_start_error_rad: self.max_start_error_rad,
            hallucination_threshold: self.hallucination_threshold,
            min_clearance_m: self.min_clearance_m,
            weights: self.cost_weights,
        }
    }

    /// The selection part.
    pub fn selection(&self) -> SelectionConfig {
        SelectionConfig {
            policy: self.selection_policy,
            hysteresis: self.hysteresis,
            hysteresis_max_distance_rad: self.hysteresis_max_distance_rad,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_defaults_unknown_keys_and_validation() {
        let config: PlannerConfig =
            serde_yaml::from_str("num_samples: 16\nselection_policy: cost\n").unwrap();
        assert_eq!(config.num_samples, 16);
        assert_eq!(config.selection_policy, SelectionPolicy::Cost);
        assert_eq!(
            config.goal_tolerance_m,
            PlannerConfig::default().goal_tolerance_m
        );
        config.validate().unwrap();

        let err = serde_yaml::from_str::<PlannerConfig>("num_sample: 16\n").unwrap_err();
        assert!(err.to_string().contains("num_sample"), "{err}");
        let err = serde_yaml::from_str::<PlannerConfig>("cost_weights: {length: 1}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("length"), "{err}");

        let bad = PlannerConfig {
            cluster_threshold_rad: f64::NAN,
            ..PlannerConfig::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("cluster_threshold_rad"));
        let bad = PlannerConfig {
            timing: TimingConfig {
                velocity_scaling: 1.5,
                ..TimingConfig::default()
            },
            ..PlannerConfig::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("timing.velocity_scaling"));
        let bad = PlannerConfig {
            num_samples: 0,
            ..PlannerConfig::default()
        };
        assert!(bad.validate().is_err());
    }
}
