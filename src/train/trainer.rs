//! The training loop: epsilon (or x0) regression on noised demonstrations, as Diffusion Policy
//! trains, with AdamW, warm-up + cosine learning rate, gradient clipping, EMA weights and
//! mode-label dropout for classifier-free guidance.
//!
//! Determinism: every random draw (initial weights, batch indices, timesteps, noise, label
//! dropout) comes from ChaCha8 streams derived from `seed` and the step number, so a run is
//! reproducible on the CPU and a resumed run continues exactly as an uninterrupted one would.
//!
//! Files in `output_dir`: `model.yaml` + `model.safetensors` (the EMA weights, a complete model
//! folder, rewritten at every checkpoint), `checkpoint.safetensors` (weights, EMA, optimiser
//! state and the step, for `--resume`) and `loss.csv`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use super::checkpoint::{load_checkpoint, save_checkpoint, utc_now, LossLog};
use super::dataset::Dataset;
use super::optim::{clip_grad_norm, cosine_with_restarts, AdamW, AdamWConfig, Ema};
use crate::device::DeviceSpec;
use crate::diffusion::{standard_normal, NoiseSchedule, SchedulerConfig};
use crate::model::{
    save_model_folder, sha256_file, ActionSpec, ConditionSpec, ConditionTerm, Denoiser,
    ModeEmbeddingConfig, ModeSpec, ModelSpec, NetworkSpec, TrainingProvenance, WeightsSpec,
    MODEL_FORMAT_VERSION, MODEL_WEIGHTS,
};
use crate::{Error, Result};

/// Name of the resumable training state in the output folder.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
/// Name of the loss log in the output folder.
pub const LOSS_FILE: &str = "loss.csv";

/// EMA settings (Diffusion Policy's `EMAModel`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmaConfig {
    /// Warm-up power of the decay `1 − (1 + step)^−power`.
    pub power: f64,
    /// Largest decay.
    pub max_decay: f64,
}

impl Default for EmaConfig {
    fn default() -> Self {
        EmaConfig {
            power: 0.75,
            max_decay: 0.9999,
        }
    }
}

/// `config/train_*.yaml`: everything `dplan train` needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// The data file written by `dplan generate` (relative to the working directory).
    pub data: PathBuf,
    /// Where the model folder, checkpoint and loss log go.
    pub output_dir: PathBuf,
    /// Model name written to model.yaml.
    pub name: String,
    /// Model description written to model.yaml.
    #[serde(default)]
    pub description: String,
    /// U-Net sizes.
    pub network: NetworkSpec,
    /// Size of the mode-label embedding; 0 trains a model without labels.
    pub mode_embed_dim: usize,
    /// Noise schedule (diffusers' names).
    #[serde(default)]
    pub scheduler: SchedulerConfig,
    /// AdamW settings.
    pub optimizer: AdamWConfig,
    /// Samples per step.
    pub batch_size: usize,
    /// Optimiser steps in all.
    pub steps: u64,
    /// Linear warm-up steps of the learning rate.
    pub warmup_steps: u64,
    /// Warm restarts of the cosine schedule (SGDR), increasing steps in `(warmup_steps, steps)`:
    /// the first cycle decays to 0 at the first restart, as a run with `steps` = that restart
    /// would, so a finished run is extended by raising `steps`, adding its old `steps` here and
    /// `--resume`. Empty: one warm-up + cosine cycle over all steps.
    #[serde(default)]
    pub lr_restarts: Vec<u64>,
    /// Learning rate at each restart, as a fraction of `optimizer.learning_rate`.
    #[serde(default = "default_restart_factor")]
    pub lr_restart_factor: f64,
    /// Largest global gradient norm.
    pub grad_clip_norm: f64,
    /// Probability that a sample's mode label is replaced by the null label.
    pub label_dropout: f64,
    /// EMA of the weights.
    #[serde(default)]
    pub ema: EmaConfig,
    /// Steps between checkpoints (and model folder updates).
    pub checkpoint_every: u64,
    /// Steps between loss log lines.
    pub log_every: u64,
    /// Seed of every random draw.
    pub seed: u64,
    /// `cpu`, `cuda:N` or `auto`.
    #[serde(default = "default_device")]
    pub device: String,
    /// A warm start: a model folder whose weights initialise the network instead of the seeded
    /// random draw (same network and number of modes; the optimiser and the EMA start fresh
    /// from them). A checkpoint loaded by `--resume` replaces them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from: Option<PathBuf>,
}

fn default_restart_factor() -> f64 {
    0.3
}

fn default_device() -> String {
    "auto".to_string()
}

impl TrainConfig {
    /// Reads and validates a YAML config (unknown keys are errors).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let config: TrainConfig = serde_yaml::from_str(&text).map_err(|source| Error::Yaml {
            path: path.to_path_buf(),
            source,
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every value (NaN fails).
    pub fn validate(&self) -> Result<()> {
        self.optimizer.validate()?;
        self.scheduler.validate()?;
        self.device.parse::<DeviceSpec>()?;
        if self.batch_size == 0 {
            return Err(Error::config("batch_size", "must be > 0"));
        }
        if self.steps == 0 {
            return Err(Error::config("steps", "must be > 0"));
        }
        if self.warmup_steps > self.steps {
            return Err(Error::config("warmup_steps", "must be <= steps"));
        }
        let mut previous = self.warmup_steps;
        for &restart in &self.lr_restarts {
            if restart <= previous || restart >= self.steps {
                return Err(Error::config(
                    "lr_restarts",
                    format!(
                        "{restart}: restarts must increase and lie between warmup_steps ({}) and steps ({})",
                        self.warmup_steps, self.steps
                    ),
                ));
            }
            previous = restart;
        }
        if !(self.lr_restart_factor > 0.0 && self.lr_restart_factor <= 1.0) {
            return Err(Error::config("lr_restart_factor", "must be in (0, 1]"));
        }
        if !(self.grad_clip_norm > 0.0) {
            return Err(Error::config("grad_clip_norm", "must be > 0"));
        }
        if !(0.0..1.0).contains(&self.label_dropout) {
            return Err(Error::config("label_dropout", "must be in [0, 1)"));
        }
        if !(self.ema.power > 0.0 && (0.0..1.0).contains(&self.ema.max_decay)) {
            return Err(Error::config(
                "ema",
                "need power > 0 and max_decay in [0, 1)",
            ));
        }
        if self.checkpoint_every == 0 || self.log_every == 0 {
            return Err(Error::config(
                "checkpoint_every",
                "and log_every must be > 0",
            ));
        }
        Ok(())
    }
}

/// What a training run ended with.
#[derive(Debug, Clone, Serialize)]
pub struct TrainSummary {
    /// Steps done in all (including those before a resume).
    pub steps: u64,
    /// Mean loss over the last log window.
    pub final_loss: f64,
    /// Wall time of this run, seconds.
    pub elapsed_secs: f64,
    /// The model folder written.
    pub model_dir: PathBuf,
}

/// Progress callback: `(step, total, loss)` after every step; returning `false` stops the run
/// after a checkpoint at that step (e.g. on Ctrl-C), to be continued with `resume`.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64, f64) -> bool;

/// Trains a model on `config.data`, resuming from the checkpoint when `resume` is set.
pub fn train(config: &TrainConfig, resume: bool, progress: Progress<'_>) -> Result<TrainSummary> {
    config.validate()?;
    let device = config.device.parse::<DeviceSpec>()?.open()?;
    let data = Dataset::load(&config.data)?;
    if data.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: no samples",
            config.data.display()
        )));
    }
    let data_sha256 = sha256_file(&config.data)?;
    let mut spec = model_spec(config, &data, &data_sha256)?;
    let tensors = TrainingData::new(&data, &spec, &device)?;

    let modes = (config.mode_embed_dim > 0).then_some(ModeEmbeddingConfig {
        num_modes: data.info.mode_names.len(),
        embed_dim: config.mode_embed_dim,
    });
    let null_label = modes.map(|m| m.num_modes as u32);
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
    let denoiser = Denoiser::new(&spec.unet_config(), modes, vb)?;
    let vars: HashMap<String, Var> = lock(&varmap)?.clone();
    init_weights(&vars, config.seed)?;
    if let Some(dir) = &config.init_from {
        let sha = warm_start(dir, config, &spec, &vars, &device)?;
        spec.training.notes.push_str(&format!(
            ", warm start from {} (weights sha256 {sha})",
            dir.display()
        ));
    }
    let var_list: Vec<Var> = sorted(&vars).into_iter().map(|(_, v)| v).collect();

    let mut optimizer = AdamW::new(&vars, config.optimizer.clone())?;
    let mut ema = Ema::new(&vars, config.ema.power, config.ema.max_decay)?;
    let schedule = NoiseSchedule::new(&config.scheduler)?;
    std::fs::create_dir_all(&config.output_dir).map_err(|e| Error::io(&config.output_dir, e))?;
    let checkpoint = config.output_dir.join(CHECKPOINT_FILE);
    let mut step = 0u64;
    if resume && checkpoint.exists() {
        step = load_checkpoint(&checkpoint, &vars, &mut optimizer, &mut ema, &data_sha256)?;
    }
    let mut log = LossLog::open(&config.output_dir.join(LOSS_FILE), step)?;

    let started = Instant::now();
    let mut window = Vec::new();
    let mut final_loss = f64::NAN;
    while step < config.steps {
        let lr = cosine_with_restarts(
            step,
            config.warmup_steps,
            config.steps,
            &config.lr_restarts,
            config.optimizer.learning_rate,
            config.optimizer.learning_rate * config.lr_restart_factor,
        );
        optimizer.set_learning_rate(lr);
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        rng.set_stream(step + 1);
        let batch = tensors.batch(&mut rng, config, &schedule, null_label, &device)?;
        let pred = candle_core::Module::forward(&DenoiseFn(&denoiser, &batch), &batch.x_t)?;
        let loss = (pred - &batch.target)?.sqr()?.mean_all()?;
        let loss_value = f64::from(loss.to_scalar::<f32>()?);
        if !loss_value.is_finite() {
            return Err(Error::Invalid(format!(
                "training diverged at step {step}: loss {loss_value}"
            )));
        }
        let mut grads = loss.backward()?;
        let grad_norm = clip_grad_norm(&var_list, &mut grads, config.grad_clip_norm)?;
        optimizer.step(&grads)?;
        ema.update()?;
        step += 1;
        window.push(loss_value);
        let keep_going = progress(step, config.steps, loss_value);
        let last = step == config.steps || !keep_going;
        if step % config.log_every == 0 || last {
            final_loss = window.iter().sum::<f64>() / window.len() as f64;
            log.write(
                step,
                final_loss,
                lr,
                grad_norm,
                started.elapsed().as_secs_f64(),
            )?;
            window.clear();
        }
        if step % config.checkpoint_every == 0 || last {
            save_checkpoint(&checkpoint, &vars, &optimizer, &ema, step, &data_sha256)?;
            spec.training.steps = step;
            spec.training.final_loss = final_loss.is_finite().then_some(final_loss);
            spec.training.date = Some(utc_now());
            let weights: HashMap<String, Tensor> = ema.weights().into_iter().collect();
            spec = save_model_folder(&config.output_dir, &spec, &weights)?;
        }
        if !keep_going {
            break;
        }
    }
    Ok(TrainSummary {
        steps: step,
        final_loss,
        elapsed_secs: started.elapsed().as_secs_f64(),
        model_dir: config.output_dir.clone(),
    })
}

/// Adapts the denoiser call to `Module` so the forward reads as one expression.
struct DenoiseFn<'a>(&'a Denoiser, &'a Batch);

impl candle_core::Module for DenoiseFn<'_> {
    fn forward(&self, x_t: &Tensor) -> candle_core::Result<Tensor> {
        let b = self.1;
        self.0
            .denoise(x_t, &b.timesteps, Some(&b.condition), b.labels.as_ref())
    }
}

/// One training batch on the device.
struct Batch {
    x_t: Tensor,
    timesteps: Tensor,
    condition: Tensor,
    labels: Option<Tensor>,
    target: Tensor,
}

/// The normalised data set on the device.
struct TrainingData {
    /// (N, T, D) in [-1, 1].
    paths: Tensor,
    /// (N, C) in [-1, 1].
    conditions: Tensor,
    labels: Vec<u32>,
    horizon: usize,
    dof: usize,
}

impl TrainingData {
    fn new(data: &Dataset, spec: &ModelSpec, device: &Device) -> Result<Self> {
        let n = data.len();
        let (t, d, c) = (
            data.info.horizon,
            data.info.joints.len(),
            data.info.condition_dim(),
        );
        let mut paths = data.paths.clone();
        for chunk in paths.chunks_mut(d) {
            spec.action.normalize(chunk)?;
        }
        let mut conditions = data.conditions.clone();
        for chunk in conditions.chunks_mut(c) {
            spec.condition.normalize(chunk)?;
        }
        Ok(TrainingData {
            paths: Tensor::from_vec(paths, (n, t, d), device)?,
            conditions: Tensor::from_vec(conditions, (n, c), device)?,
            labels: data.labels.clone(),
            horizon: t,
            dof: d,
        })
    }

    /// Draws a batch: indices, timesteps, noise and label dropout, in this order, from `rng`.
    fn batch(
        &self,
        rng: &mut ChaCha8Rng,
        config: &TrainConfig,
        schedule: &NoiseSchedule,
        null_label: Option<u32>,
        device: &Device,
    ) -> Result<Batch> {
        let b = config.batch_size;
        let n = self.labels.len();
        let indices: Vec<u32> = (0..b).map(|_| rng.random_range(0..n) as u32).collect();
        let steps = schedule.num_train_timesteps() as u32;
        let timesteps: Vec<u32> = (0..b).map(|_| rng.random_range(0..steps)).collect();
        let noise = standard_normal(rng, &[b, self.horizon, self.dof], device)?;
        let labels = null_label.map(|null| {
            indices
                .iter()
                .map(|&i| {
                    let drop: f64 = rng.random();
                    if drop < config.label_dropout {
                        null
                    } else {
                        self.labels[i as usize]
                    }
                })
                .collect::<Vec<u32>>()
        });
        let index = Tensor::from_vec(indices, b, device)?;
        let x0 = self.paths.index_select(&index, 0)?;
        let condition = self.conditions.index_select(&index, 0)?;
        let timesteps = Tensor::from_vec(timesteps, b, device)?;
        let x_t = schedule.add_noise(&x0, &noise, &timesteps)?;
        let target = config
            .scheduler
            .prediction_type
            .training_target(&x0, &noise)
            .clone();
        let labels = labels.map(|l| Tensor::from_vec(l, b, device)).transpose()?;
        Ok(Batch {
            x_t,
            timesteps,
            condition,
            labels,
            target,
        })
    }
}

/// The model.yaml of a run: sizes from the config, normalisation from the data (min/max per
/// joint over every waypoint, and per condition entry), provenance filled in as training goes.
fn model_spec(config: &TrainConfig, data: &Dataset, data_sha256: &str) -> Result<ModelSpec> {
    let info = &data.info;
    let d = info.joints.len();
    let c = info.condition_dim();
    let (action_min, action_max) = column_range(&data.paths, d);
    let (cond_min, cond_max) = column_range(&data.conditions, c);
    let modes = (config.mode_embed_dim > 0).then(|| ModeSpec {
        names: info.mode_names.clone(),
        embed_dim: config.mode_embed_dim,
    });
    let spec = ModelSpec {
        format_version: MODEL_FORMAT_VERSION,
        name: config.name.clone(),
        description: config.description.clone(),
        network: config.network.clone(),
        horizon: info.horizon,
        action: ActionSpec {
            joints: info.joints.clone(),
            min: action_min,
            max: action_max,
        },
        condition: ConditionSpec {
            terms: info
                .condition_terms
                .iter()
                .map(|t| ConditionTerm {
                    name: t.name.clone(),
                    dim: t.dim,
                })
                .collect(),
            min: cond_min,
            max: cond_max,
        },
        modes,
        scheduler: config.scheduler.clone(),
        robot: info.robot.clone(),
        training: TrainingProvenance {
            steps: 0,
            data_seed: Some(info.seed),
            final_loss: None,
            data_sha256: Some(data_sha256.to_string()),
            date: None,
            notes: format!(
                "dplan train: batch {}, lr {}, {} steps, label dropout {}, seed {}",
                config.batch_size,
                config.optimizer.learning_rate,
                config.steps,
                config.label_dropout,
                config.seed
            ),
        },
        weights: WeightsSpec {
            file: MODEL_WEIGHTS.to_string(),
            sha256: "0".repeat(64),
        },
    };
    Ok(spec)
}

/// Per-column min and max of row-major values with `width` columns.
fn column_range(values: &[f32], width: usize) -> (Vec<f64>, Vec<f64>) {
    let mut min = vec![f64::INFINITY; width];
    let mut max = vec![f64::NEG_INFINITY; width];
    for row in values.chunks(width) {
        for (j, &v) in row.iter().enumerate() {
            min[j] = min[j].min(f64::from(v));
            max[j] = max[j].max(f64::from(v));
        }
    }
    (min, max)
}

fn lock(varmap: &VarMap) -> Result<std::sync::MutexGuard<'_, HashMap<String, Var>>> {
    varmap
        .data()
        .lock()
        .map_err(|_| Error::Invalid("VarMap lock poisoned".into()))
}

pub(super) fn sorted(vars: &HashMap<String, Var>) -> Vec<(String, Var)> {
    let map: BTreeMap<&String, &Var> = vars.iter().collect();
    map.into_iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Seeded initialisation, as PyTorch initialises these layers: weights of convolutions and
/// linear layers (rank >= 2) and their biases ~ U(±1/sqrt(fan_in)), the label embedding
/// ~ N(0, 1), normalisation layers unchanged (ones and zeros). candle's own initialisers draw
/// from an unseeded CPU generator, so they are replaced here.
fn init_weights(vars: &HashMap<String, Var>, seed: u64) -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for (name, var) in sorted(vars) {
        let dims = var.dims().to_vec();
        let n: usize = dims.iter().product();
        let values: Vec<f32> = if name.starts_with(crate::model::MODE_EMBEDDING_PREFIX) {
            (0..n).map(|_| rng.sample(StandardNormal)).collect()
        } else if dims.len() >= 2 {
            uniform(&mut rng, n, fan_in(&dims))
        } else if let Some(weight) = name
            .strip_suffix(".bias")
            .and_then(|stem| vars.get(&format!("{stem}.weight")))
            .filter(|w| w.rank() >= 2)
        {
            uniform(&mut rng, n, fan_in(weight.dims()))
        } else {
            continue;
        };
        var.set(&Tensor::from_vec(values, dims, var.device())?)?;
    }
    Ok(())
}

/// Sets every variable from the weights of the model folder `dir` (see
/// [`TrainConfig::init_from`]); returns the weights' sha256.
fn warm_start(
    dir: &Path,
    config: &TrainConfig,
    spec: &ModelSpec,
    vars: &HashMap<String, Var>,
    device: &Device,
) -> Result<String> {
    let from = ModelSpec::load(&dir.join(crate::model::MODEL_YAML))?;
    let same_modes =
        from.modes.as_ref().map(|m| m.names.len()) == spec.modes.as_ref().map(|m| m.names.len());
    if from.network != config.network || !same_modes || from.horizon != spec.horizon {
        return Err(Error::config(
            "init_from",
            format!(
                "{}: the model's network, horizon or number of modes differs from this config's",
                dir.display()
            ),
        ));
    }
    let file = dir.join(&from.weights.file);
    let weights = candle_core::safetensors::load(&file, device)?;
    for (name, var) in sorted(vars) {
        let tensor = weights.get(&name).ok_or_else(|| {
            Error::config(
                "init_from",
                format!("{}: no tensor `{name}`", file.display()),
            )
        })?;
        if tensor.dims() != var.dims() {
            return Err(Error::config(
                "init_from",
                format!(
                    "{}: `{name}` has shape {:?}, the network needs {:?}",
                    file.display(),
                    tensor.dims(),
                    var.dims()
                ),
            ));
        }
        var.set(tensor)?;
    }
    Ok(from.weights.sha256)
}

fn fan_in(dims: &[usize]) -> usize {
    dims[1..].iter().product::<usize>().max(1)
}

fn uniform(rng: &mut ChaCha8Rng, n: usize, fan_in: usize) -> Vec<f32> {
    let bound = 1.0 / (fan_in as f32).sqrt();
    (0..n).map(|_| rng.random_range(-bound..bound)).collect()
}
