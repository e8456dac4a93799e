//! `model.yaml`: everything needed to use a weights file (see `docs/MODEL_FORMAT.md`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::UnetConfig;
use crate::diffusion::SchedulerConfig;
use crate::robot::RobotDescription;
use crate::{Error, Result};

/// The `format_version` this code reads and writes.
pub const MODEL_FORMAT_VERSION: u32 = 1;
/// File name of the model description inside a model folder.
pub const MODEL_YAML: &str = "model.yaml";
/// Default file name of the weights inside a model folder.
pub const MODEL_WEIGHTS: &str = "model.safetensors";
/// The mode name reserved for "no mode requested" (`mode_request: any`).
pub const ANY_MODE: &str = "any";
/// Denominator used by min/max normalisation where `max == min` (LeRobot's `eps`).
const NORM_EPS: f32 = 1e-8;

/// The contents of `model.yaml`. Unknown keys are an error; [`ModelSpec::validate`] checks
/// every value and the consistency between sections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Format of this file; must be [`MODEL_FORMAT_VERSION`].
    pub format_version: u32,
    /// Model name (usually the folder name).
    pub name: String,
    /// Free text for people.
    #[serde(default)]
    pub description: String,
    /// U-Net sizes (the input and condition sizes are derived from `action`, `condition`, `modes`).
    pub network: NetworkSpec,
    /// Waypoints per predicted path (T).
    pub horizon: usize,
    /// The network's output: joint positions, normalised per joint.
    pub action: ActionSpec,
    /// The observation condition vector: ordered terms and their normalisation.
    pub condition: ConditionSpec,
    /// Mode labels for classifier-free guidance; absent for a model without labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modes: Option<ModeSpec>,
    /// Noise schedule the model was trained with (diffusers' names).
    pub scheduler: SchedulerConfig,
    /// The robot the model plans for.
    pub robot: RobotDescription,
    /// Where the weights came from.
    pub training: TrainingProvenance,
    /// The weights file and its checksum.
    pub weights: WeightsSpec,
}

/// The U-Net's sizes as stored in `model.yaml` (LeRobot `DiffusionConfig` names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// Channels per level, e.g. `[256, 512, 1024]`.
    pub down_dims: Vec<usize>,
    /// Temporal kernel size of the residual blocks (odd).
    pub kernel_size: usize,
    /// GroupNorm groups (divides every `down_dims` entry).
    pub n_groups: usize,
    /// Size of the diffusion step embedding (even).
    pub diffusion_step_embed_dim: usize,
    /// FiLM scale and bias (`true`) or bias only.
    pub use_film_scale_modulation: bool,
}

/// The predicted joints and their min/max normalisation to [-1, 1].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionSpec {
    /// Joint names in output order; must equal the robot's joints.
    pub joints: Vec<String>,
    /// Per joint, the value mapped to -1 (radians).
    pub min: Vec<f64>,
    /// Per joint, the value mapped to +1 (radians).
    pub max: Vec<f64>,
}

/// The observation condition: the concatenation of `terms` in order, normalised per entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionSpec {
    /// Ordered terms; the condition vector is their concatenation.
    pub terms: Vec<ConditionTerm>,
    /// Per entry of the condition vector, the value mapped to -1.
    pub min: Vec<f64>,
    /// Per entry of the condition vector, the value mapped to +1.
    pub max: Vec<f64>,
}

/// One named block of the condition vector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionTerm {
    /// Term name, e.g. `q_start`, `goal_xy_m`.
    pub name: String,
    /// Number of entries.
    pub dim: usize,
}

/// Mode labels: label `i` is `names[i]`; label `names.len()` is the learned null label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModeSpec {
    /// Mode names, e.g. `[left, right]` (not `any`, which means "no mode").
    pub names: Vec<String>,
    /// Size of the label embedding appended to the condition.
    pub embed_dim: usize,
}

/// Where the weights came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingProvenance {
    /// Optimiser steps.
    pub steps: u64,
    /// Seed of the generated training data, if generated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_seed: Option<u64>,
    /// Training loss at the end (mean over the last steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_loss: Option<f64>,
    /// sha256 of the training data file (64 hex digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_sha256: Option<String>,
    /// When training finished (ISO 8601, e.g. `2026-05-01T12:00:00Z`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// Free text: command line, commit, anything worth keeping.
    #[serde(default)]
    pub notes: String,
}

/// The weights file (relative to the model folder) and its sha256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightsSpec {
    /// A bare file name in the model folder, normally `model.safetensors`.
    pub file: String,
    /// sha256 of the file, 64 lowercase hex digits (written by `save_model_folder`).
    pub sha256: String,
}

fn check_min_max(section: &str, min: &[f64], max: &[f64], len: usize) -> Result<()> {
    for (key, values) in [("min", min), ("max", max)] {
        if values.len() != len {
            return Err(Error::config(
                format!("{section}.{key}"),
                format!("expected {len} values, found {}", values.len()),
            ));
        }
    }
    for (i, (lo, hi)) in min.iter().zip(max).enumerate() {
        if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
            return Err(Error::config(
                format!("{section}.min[{i}]"),
                format!("need finite min <= max, found {lo} .. {hi}"),
            ));
        }
    }
    Ok(())
}

fn check_names(key: &str, names: &[String]) -> Result<()> {
    for (i, name) in names.iter().enumerate() {
        if name.trim().is_empty() {
            return Err(Error::config(format!("{key}[{i}]"), "empty name"));
        }
        if names[..i].contains(name) {
            return Err(Error::config(
                format!("{key}[{i}]"),
                format!("duplicate name `{name}`"),
            ));
        }
    }
    Ok(())
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// Normalises `values` (any number of rows of `min.len()` entries, row-major) in place:
/// `2 (x - min) / (max - min) - 1`, with `max - min` replaced by 1e-8 where it is 0 (LeRobot's
/// guard: the constant value maps to -1; any other value is amplified by 1e8, as in LeRobot).
fn normalize_rows(what: &str, values: &mut [f32], min: &[f64], max: &[f64]) -> Result<()> {
    map_rows(what, values, min, max, |x, lo, range| {
        2.0 * (x - lo) / range - 1.0
    })
}

/// The inverse of [`normalize_rows`]: `(y + 1) / 2 (max - min) + min`.
fn denormalize_rows(what: &str, values: &mut [f32], min: &[f64], max: &[f64]) -> Result<()> {
    map_rows(what, values, min, max, |y, lo, range| {
        (y + 1.0) / 2.0 * range + lo
    })
}

fn map_rows(
    what: &str,
    values: &mut [f32],
    min: &[f64],
    max: &[f64],
    f: impl Fn(f32, f32, f32) -> f32,
) -> Result<()> {
    let width = min.len();
    if width == 0 || values.len() % width != 0 {
        return Err(Error::Shape {
            what: what.to_string(),
            expected: vec![values.len() / width.max(1), width],
            found: vec![values.len()],
        });
    }
    // In f32 like LeRobot's tensors, so that a value equal to a constant entry's f32 min
    // gives a zero numerator.
    let lo: Vec<f32> = min.iter().map(|v| *v as f32).collect();
    let range: Vec<f32> = min
        .iter()
        .zip(max)
        .map(|(lo, hi)| {
            let r = *hi as f32 - *lo as f32;
            if r == 0.0 {
                NORM_EPS
            } else {
                r
            }
        })
        .collect();
    for row in values.chunks_exact_mut(width) {
        for ((v, lo), range) in row.iter_mut().zip(&lo).zip(&range) {
            *v = f(*v, *lo, *range);
        }
    }
    Ok(())
}

impl ActionSpec {
    /// Number of joints (D).
    pub fn dim(&self) -> usize {
        self.joints.len()
    }

    /// Joint positions (radians), rows of D values, to the network's [-1, 1], in place.
    pub fn normalize(&self, values: &mut [f32]) -> Result<()> {
        normalize_rows("action values", values, &self.min, &self.max)
    }

    /// Network output (rows of D values in [-1, 1]) to joint positions (radians), in place.
    pub fn denormalize(&self, values: &mut [f32]) -> Result<()> {
        denormalize_rows("action values", values, &self.min, &self.max)
    }
}

impl ConditionSpec {
    /// Length of the condition vector (sum of the terms' dims).
    pub fn dim(&self) -> usize {
        self.terms.iter().map(|t| t.dim).sum()
    }

    /// Start offset and length of the term `name` in the condition vector.
    pub fn term_range(&self, name: &str) -> Option<std::ops::Range<usize>> {
        let mut start = 0;
        for term in &self.terms {
            if term.name == name {
                return Some(start..start + term.dim);
            }
            start += term.dim;
        }
        None
    }

    /// Raw condition vectors (rows of `dim()` values) to [-1, 1], in place.
    pub fn normalize(&self, values: &mut [f32]) -> Result<()> {
        normalize_rows("condition values", values, &self.min, &self.max)
    }

    /// Normalised condition vectors back to raw values, in place.
    pub fn denormalize(&self, values: &mut [f32]) -> Result<()> {
        denormalize_rows("condition values", values, &self.min, &self.max)
    }
}

impl ModeSpec {
    /// The label index of mode `name`.
    pub fn label_of(&self, name: &str) -> Option<u32> {
        self.names.iter().position(|n| n == name).map(|i| i as u32)
    }

    /// The null label (`names.len()`), the last row of the embedding.
    pub fn null_label(&self) -> u32 {
        self.names.len() as u32
    }
}

impl ModelSpec {
    /// The U-Net's sizes: `action_dim` = number of joints, `global_cond_dim` = condition dim
    /// plus the mode embedding size.
    pub fn unet_config(&self) -> UnetConfig {
        UnetConfig {
            action_dim: self.action.dim(),
            global_cond_dim: self.condition.dim() + self.modes.as_ref().map_or(0, |m| m.embed_dim),
            down_dims: self.network.down_dims.clone(),
            kernel_size: self.network.kernel_size,
            n_groups: self.network.n_groups,
            diffusion_step_embed_dim: self.network.diffusion_step_embed_dim,
            use_film_scale_modulation: self.network.use_film_scale_modulation,
        }
    }

    /// Checks every value (NaN-safe) and that the sections agree; errors name the key.
    pub fn validate(&self) -> Result<()> {
        if self.format_version != MODEL_FORMAT_VERSION {
            return Err(Error::config(
                "format_version",
                format!(
                    "expected {MODEL_FORMAT_VERSION}, found {}",
                    self.format_version
                ),
            ));
        }
        if self.name.trim().is_empty() {
            return Err(Error::config("name", "empty model name"));
        }
        let unet = self.unet_config();
        unet.validate()?;
        unet.check_horizon(self.horizon)?;

        if self.action.joints.is_empty() {
            return Err(Error::config(
                "action.joints",
                "at least one joint is required",
            ));
        }
        check_names("action.joints", &self.action.joints)?;
        check_min_max(
            "action",
            &self.action.min,
            &self.action.max,
            self.action.dim(),
        )?;

        check_names(
            "condition.terms",
            &self
                .condition
                .terms
                .iter()
                .map(|t| t.name.clone())
                .collect::<Vec<_>>(),
        )?;
        if let Some(i) = self.condition.terms.iter().position(|t| t.dim == 0) {
            return Err(Error::config(
                format!("condition.terms[{i}].dim"),
                "must be > 0",
            ));
        }
        check_min_max(
            "condition",
            &self.condition.min,
            &self.condition.max,
            self.condition.dim(),
        )?;

        if let Some(modes) = &self.modes {
            if modes.names.is_empty() {
                return Err(Error::config(
                    "modes.names",
                    "at least one mode is required",
                ));
            }
            check_names("modes.names", &modes.names)?;
            if let Some(i) = modes.names.iter().position(|n| n == ANY_MODE) {
                return Err(Error::config(
                    format!("modes.names[{i}]"),
                    format!("`{ANY_MODE}` is reserved for \"no mode requested\""),
                ));
            }
            if modes.embed_dim == 0 {
                return Err(Error::config("modes.embed_dim", "must be > 0"));
            }
        }
        if unet.global_cond_dim == 0 {
            return Err(Error::config(
                "condition.terms",
                "the model needs a condition: no condition terms and no modes",
            ));
        }

        self.scheduler.validate().map_err(|e| match e {
            Error::Config { key, reason } => Error::Config {
                key: format!("scheduler.{key}"),
                reason,
            },
            other => other,
        })?;

        self.robot.validate()?;
        let robot_joints = self.robot.joint_names();
        if self.action.joints != robot_joints {
            return Err(Error::config(
                "action.joints",
                format!(
                    "expected the robot's joints {robot_joints:?}, found {:?}",
                    self.action.joints
                ),
            ));
        }

        if let Some(loss) = self.training.final_loss {
            if !loss.is_finite() {
                return Err(Error::config(
                    "training.final_loss",
                    format!("not finite: {loss}"),
                ));
            }
        }
        if let Some(sha) = &self.training.data_sha256 {
            if !is_sha256_hex(sha) {
                return Err(Error::config(
                    "training.data_sha256",
                    "expected 64 lowercase hex digits",
                ));
            }
        }

        let file = &self.weights.file;
        if file.is_empty() || file == "." || file == ".." || file.contains(['/', '\\']) {
            return Err(Error::config(
                "weights.file",
                format!("expected a file name in the model folder, found `{file}`"),
            ));
        }
        if !is_sha256_hex(&self.weights.sha256) {
            return Err(Error::config(
                "weights.sha256",
                format!(
                    "expected 64 lowercase hex digits, found `{}`",
                    self.weights.sha256
                ),
            ));
        }
        Ok(())
    }

    /// Parses and validates `model.yaml` text; `path` is only used in errors.
    pub fn from_yaml_str(text: &str, path: &Path) -> Result<Self> {
        let spec: ModelSpec = serde_yaml::from_str(text).map_err(|source| Error::Yaml {
            path: path.to_path_buf(),
            source,
        })?;
        spec.validate().map_err(|e| match e {
            Error::Config { key, reason } => Error::Config {
                key,
                reason: format!("{reason} (in {})", path.display()),
            },
            other => other,
        })?;
        Ok(spec)
    }

    /// Reads and validates a `model.yaml` file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_yaml_str(&text, path)
    }

    /// The YAML text of this spec.
    pub fn to_yaml_string(&self) -> Result<String> {
        serde_yaml::to_string(self)
            .map_err(|e| Error::Invalid(format!("cannot write model.yaml: {e}")))
    }
}
