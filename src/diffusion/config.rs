//! Scheduler configuration with diffusers' names and values.
//!
//! Every key and every enum value is spelt as in diffusers' `DDPMScheduler` / `DDIMScheduler`
//! config (`scheduler_config.json`), so a config written by Python reads here unchanged, as long
//! as it only uses the keys below. The defaults are Diffusion Policy's (`num_train_timesteps:
//! 100`, `squaredcos_cap_v2`, clipped epsilon prediction), not diffusers' class defaults.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Implements `as_str`, `Display` and `FromStr` with the serde names of a unit-only enum.
macro_rules! string_enum {
    ($ty:ident, $key:literal, { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The name used in configs (diffusers' spelling).
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $name),+ }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = Error;

            fn from_str(s: &str) -> Result<Self> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    other => Err(Error::config(
                        $key,
                        format!(
                            "unknown value `{other}`, expected one of {:?}",
                            [$($name),+]
                        ),
                    )),
                }
            }
        }
    };
}

/// How the betas are laid out over the training timesteps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BetaSchedule {
    /// `linspace(beta_start, beta_end, N)` in f32.
    #[serde(rename = "linear")]
    Linear,
    /// `linspace(sqrt(beta_start), sqrt(beta_end), N)² ` in f32 (Stable Diffusion).
    #[serde(rename = "scaled_linear")]
    ScaledLinear,
    /// The cosine schedule of Nichol & Dhariwal (2021), betas capped at 0.999. Ignores
    /// `beta_start` and `beta_end`. Diffusion Policy's choice.
    #[serde(rename = "squaredcos_cap_v2")]
    SquaredcosCapV2,
}

string_enum!(BetaSchedule, "beta_schedule", {
    Linear => "linear",
    ScaledLinear => "scaled_linear",
    SquaredcosCapV2 => "squaredcos_cap_v2",
});

/// What the network predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PredictionType {
    /// The noise that was added (`epsilon`); the training target is the noise.
    #[serde(rename = "epsilon")]
    Epsilon,
    /// The clean sample x0 directly; the training target is x0.
    #[serde(rename = "sample")]
    Sample,
}

string_enum!(PredictionType, "prediction_type", {
    Epsilon => "epsilon",
    Sample => "sample",
});

impl PredictionType {
    /// The training target for a clean batch `x0` noised with `noise`: `noise` for
    /// [`PredictionType::Epsilon`], `x0` for [`PredictionType::Sample`].
    pub fn training_target<'a, T>(self, x0: &'a T, noise: &'a T) -> &'a T {
        match self {
            PredictionType::Epsilon => noise,
            PredictionType::Sample => x0,
        }
    }
}

/// The variance of the noise a DDPM step adds (DDIM ignores it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VarianceType {
    /// Posterior variance `β̃_t = (1 - ᾱ_{t-1}) / (1 - ᾱ_t) β_t`, clamped to ≥ 1e-20.
    #[serde(rename = "fixed_small")]
    FixedSmall,
    /// The same variance, its standard deviation computed as `exp(0.5 ln β̃_t)`.
    #[serde(rename = "fixed_small_log")]
    FixedSmallLog,
    /// `β_t` (of the inference step, `1 - ᾱ_t / ᾱ_{t-1}`).
    #[serde(rename = "fixed_large")]
    FixedLarge,
}

string_enum!(VarianceType, "variance_type", {
    FixedSmall => "fixed_small",
    FixedSmallLog => "fixed_small_log",
    FixedLarge => "fixed_large",
});

/// How `set_timesteps(n)` picks n of the training timesteps (Lin et al. 2023, table 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TimestepSpacing {
    /// `k * (N / n) + steps_offset` for k = n-1 .. 0 (integer division). diffusers' default.
    #[serde(rename = "leading")]
    Leading,
    /// `round(N - k N / n) - 1` for k = 0 .. n-1; ends near 0 from above, starts at N - 1.
    #[serde(rename = "trailing")]
    Trailing,
    /// `round(linspace(0, N - 1, n))` reversed (ties to even, as numpy).
    #[serde(rename = "linspace")]
    Linspace,
}

string_enum!(TimestepSpacing, "timestep_spacing", {
    Leading => "leading",
    Trailing => "trailing",
    Linspace => "linspace",
});

/// The noise scheduler's configuration, diffusers' keys (see the module docs).
///
/// DDPM ignores `set_alpha_to_one`; DDIM ignores `variance_type`. Keys of diffusers that are not
/// here (`trained_betas`, `thresholding`, `rescale_betas_zero_snr`, ...) are rejected, and their
/// diffusers defaults (off) are what this implementation computes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfig {
    /// Number of diffusion steps the model was trained with (N). Default 100.
    pub num_train_timesteps: usize,
    /// First beta of the `linear` / `scaled_linear` schedules. Default 1e-4.
    pub beta_start: f64,
    /// Last beta of the `linear` / `scaled_linear` schedules. Default 0.02.
    pub beta_end: f64,
    /// Default `squaredcos_cap_v2`.
    pub beta_schedule: BetaSchedule,
    /// Clip the predicted x0 to `[-clip_sample_range, clip_sample_range]`. Default true.
    pub clip_sample: bool,
    /// Default 1.0 (the network works in [-1, 1]).
    pub clip_sample_range: f64,
    /// Default `epsilon`.
    pub prediction_type: PredictionType,
    /// DDPM only. Default `fixed_small`.
    pub variance_type: VarianceType,
    /// DDIM only: ᾱ before the first training step is 1 (true) or ᾱ_0 (false). Default true.
    pub set_alpha_to_one: bool,
    /// Added to the `leading` timesteps. Default 0.
    pub steps_offset: usize,
    /// Default `leading`.
    pub timestep_spacing: TimestepSpacing,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            num_train_timesteps: 100,
            beta_start: 1e-4,
            beta_end: 0.02,
            beta_schedule: BetaSchedule::SquaredcosCapV2,
            clip_sample: true,
            clip_sample_range: 1.0,
            prediction_type: PredictionType::Epsilon,
            variance_type: VarianceType::FixedSmall,
            set_alpha_to_one: true,
            steps_offset: 0,
            timestep_spacing: TimestepSpacing::Leading,
        }
    }
}

/// Timesteps are passed to networks as `u32`; this keeps every index representable.
pub const MAX_TRAIN_TIMESTEPS: usize = 1 << 24;

impl SchedulerConfig {
    /// Checks ranges (NaN-safe: every check is written so that NaN fails it).
    pub fn validate(&self) -> Result<()> {
        let n = self.num_train_timesteps;
        if !(2..=MAX_TRAIN_TIMESTEPS).contains(&n) {
            return Err(Error::config(
                "num_train_timesteps",
                format!("must be in [2, {MAX_TRAIN_TIMESTEPS}], found {n}"),
            ));
        }
        if !(self.beta_start > 0.0 && self.beta_start < 1.0) {
            return Err(Error::config(
                "beta_start",
                format!("must be in (0, 1), found {}", self.beta_start),
            ));
        }
        if !(self.beta_end >= self.beta_start && self.beta_end < 1.0) {
            return Err(Error::config(
                "beta_end",
                format!(
                    "must be in [beta_start = {}, 1), found {}",
                    self.beta_start, self.beta_end
                ),
            ));
        }
        if !(self.clip_sample_range > 0.0 && self.clip_sample_range.is_finite()) {
            return Err(Error::config(
                "clip_sample_range",
                format!("must be finite and > 0, found {}", self.clip_sample_range),
            ));
        }
        if self.steps_offset >= n {
            return Err(Error::config(
                "steps_offset",
                format!(
                    "must be < num_train_timesteps = {n}, found {}",
                    self.steps_offset
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_diffusion_policys() {
        let c = SchedulerConfig::default();
        assert_eq!(c.num_train_timesteps, 100);
        assert_eq!(c.beta_schedule, BetaSchedule::SquaredcosCapV2);
        assert!(c.clip_sample && c.set_alpha_to_one);
        assert_eq!(c.steps_offset, 0);
        c.validate().unwrap();
    }

    #[test]
    fn yaml_uses_diffusers_names_and_rejects_unknown_keys() {
        let c: SchedulerConfig = serde_yaml::from_str(
            "beta_schedule: scaled_linear\nprediction_type: sample\nvariance_type: fixed_large\n\
             timestep_spacing: trailing\nnum_train_timesteps: 1000\n",
        )
        .unwrap();
        assert_eq!(c.beta_schedule, BetaSchedule::ScaledLinear);
        assert_eq!(c.prediction_type, PredictionType::Sample);
        assert_eq!(c.variance_type, VarianceType::FixedLarge);
        assert_eq!(c.timestep_spacing, TimestepSpacing::Trailing);
        assert_eq!(c.num_train_timesteps, 1000);
        assert!(serde_yaml::from_str::<SchedulerConfig>("thresholding: true\n").is_err());
        assert!(serde_yaml::from_str::<SchedulerConfig>("beta_schedule: cosine\n").is_err());
        let back: SchedulerConfig =
            serde_yaml::from_str(&serde_yaml::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn from_str_matches_serde_names() {
        for s in BetaSchedule::ALL {
            assert_eq!(s.as_str().parse::<BetaSchedule>().unwrap(), *s);
            let yaml = serde_yaml::to_string(s).unwrap();
            assert_eq!(yaml.trim(), s.as_str());
        }
        for s in TimestepSpacing::ALL {
            assert_eq!(s.to_string().parse::<TimestepSpacing>().unwrap(), *s);
        }
        let err = "cosine".parse::<BetaSchedule>().unwrap_err().to_string();
        assert!(
            err.contains("beta_schedule") && err.contains("cosine"),
            "{err}"
        );
    }

    #[test]
    fn validate_rejects_bad_values() {
        let bad = [
            SchedulerConfig {
                num_train_timesteps: 1,
                ..Default::default()
            },
            SchedulerConfig {
                beta_start: f64::NAN,
                ..Default::default()
            },
            SchedulerConfig {
                beta_end: 1e-5,
                ..Default::default()
            },
            SchedulerConfig {
                clip_sample_range: 0.0,
                ..Default::default()
            },
            SchedulerConfig {
                steps_offset: 100,
                ..Default::default()
            },
        ];
        let keys = [
            "num_train_timesteps",
            "beta_start",
            "beta_end",
            "clip_sample_range",
            "steps_offset",
        ];
        for (c, key) in bad.iter().zip(keys) {
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
    }
}
