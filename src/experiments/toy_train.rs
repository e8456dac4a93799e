//! Training the toy denoiser: MSE on ε (DDPM, Ho et al. 2020) with AdamW.
//!
//! Each step draws a minibatch of training points with replacement, a timestep uniformly in
//! `0..N` and standard-normal noise, all from one seeded `ChaCha8Rng`, forms
//! `x_t = sqrt(ᾱ_t) x0 + sqrt(1 - ᾱ_t) ε` on the CPU and regresses the network output on ε.
//! With labels, each label is replaced by the null label with probability `label_dropout`
//! (classifier-free guidance training, Ho and Salimans 2022). The learning rate warms up
//! linearly for `warmup_steps`, then follows a cosine to zero at `steps`.

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::Serialize;

use super::data::Points;
use super::toy_model::{seeded_init, ToyDenoiser, ToyDenoiserConfig};
use crate::{Error, Result};

/// Optimisation settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToyTrainConfig {
    /// Optimiser steps.
    pub steps: usize,
    /// Points per minibatch.
    pub batch_size: usize,
    /// Peak learning rate of AdamW.
    pub learning_rate: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Probability of replacing a label by the null label (labelled models only).
    pub label_dropout: f64,
    /// Linear warm-up steps before the cosine decay.
    pub warmup_steps: usize,
}

impl ToyTrainConfig {
    /// The learning rate at step `step` (0-based).
    pub fn learning_rate_at(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.learning_rate * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let span = (self.steps - self.warmup_steps).max(1) as f64;
        let progress = (step - self.warmup_steps) as f64 / span;
        0.5 * self.learning_rate * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos())
    }

    fn validate(&self) -> Result<()> {
        if self.steps == 0 || self.batch_size == 0 {
            return Err(Error::config(
                "steps/batch_size",
                format!("must be > 0, found {}/{}", self.steps, self.batch_size),
            ));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return Err(Error::config(
                "learning_rate",
                format!("must be finite and > 0, found {}", self.learning_rate),
            ));
        }
        if !(0.0..1.0).contains(&self.label_dropout) {
            return Err(Error::config(
                "label_dropout",
                format!("must be in [0, 1), found {}", self.label_dropout),
            ));
        }
        if self.warmup_steps >= self.steps {
            return Err(Error::config(
                "warmup_steps",
                format!(
                    "must be < steps = {}, found {}",
                    self.steps, self.warmup_steps
                ),
            ));
        }
        Ok(())
    }
}

/// The mean training loss over a window of steps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LossPoint {
    /// Steps done at the end of the window.
    pub step: usize,
    /// Mean MSE over the window.
    pub loss: f64,
}

/// A trained model with its variables and its loss curve.
pub struct TrainedToy {
    /// The network (its weights live in `varmap`).
    pub model: ToyDenoiser,
    /// The trained variables.
    pub varmap: VarMap,
    /// Mean loss per window of `steps / 20` steps.
    pub losses: Vec<LossPoint>,
    /// Training wall time (seconds), excluding checkpoint callbacks.
    pub train_secs: f64,
}

/// What a training run trains on.
pub struct ToyTrainData<'a> {
    /// Normalised training points: (N, D).
    pub points: &'a Points,
    /// Mode label per point (N,), for a labelled model.
    pub labels: Option<&'a [usize]>,
    /// ᾱ_t for t = 0..N_train of the noise schedule.
    pub alphas_cumprod: &'a [f64],
}

/// Trains a fresh network. After the steps listed in `checkpoints`, `on_checkpoint(step, model)`
/// is called (e.g. to sample from the partly trained model).
pub fn train_toy(
    model_config: &ToyDenoiserConfig,
    data: &ToyTrainData<'_>,
    config: &ToyTrainConfig,
    seed: u64,
    device: &Device,
    checkpoints: &[usize],
    on_checkpoint: &mut dyn FnMut(usize, &ToyDenoiser) -> Result<()>,
) -> Result<TrainedToy> {
    config.validate()?;
    let points = data.points;
    let d = points.dim();
    if d != model_config.dim {
        return Err(Error::Shape {
            what: "training points".into(),
            expected: vec![points.len(), model_config.dim],
            found: vec![points.len(), d],
        });
    }
    if points.is_empty() || data.alphas_cumprod.is_empty() {
        return Err(Error::Invalid(
            "training needs at least one point and one timestep".into(),
        ));
    }
    let null_label = match (model_config.num_labels, data.labels) {
        (Some(k), Some(labels)) => {
            if labels.len() != points.len() {
                return Err(Error::Shape {
                    what: "training labels".into(),
                    expected: vec![points.len()],
                    found: vec![labels.len()],
                });
            }
            if let Some(bad) = labels.iter().find(|&&l| l >= k) {
                return Err(Error::config(
                    "labels",
                    format!("label {bad} is out of range for {k} labels"),
                ));
            }
            Some(k as u32)
        }
        (None, None) => None,
        (expected, _) => {
            return Err(Error::config(
                "labels",
                format!(
                    "model has {expected:?} labels but labels were {}given",
                    if data.labels.is_some() { "" } else { "not " }
                ),
            ))
        }
    };

    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let model = ToyDenoiser::new(model_config, vb)?;
    seeded_init(&varmap, &mut rng)?;
    let mut optimiser = AdamW::new(
        varmap.all_vars(),
        ParamsAdamW {
            lr: config.learning_rate,
            weight_decay: config.weight_decay,
            ..ParamsAdamW::default()
        },
    )?;

    let n = points.len();
    let timesteps = data.alphas_cumprod.len();
    let b = config.batch_size;
    let window = (config.steps / 20).max(1);
    let mut losses = Vec::new();
    let mut window_sum = 0.0;
    let mut window_len = 0usize;
    let mut train_secs = 0.0;
    let mut x_t = vec![0f32; b * d];
    let mut eps = vec![0f32; b * d];
    let mut t_batch = vec![0u32; b];
    let mut label_batch = vec![0u32; b];

    for step in 0..config.steps {
        let started = Instant::now();
        for i in 0..b {
            let idx = rng.random_range(0..n);
            let t = rng.random_range(0..timesteps);
            t_batch[i] = t as u32;
            let ab = data.alphas_cumprod[t];
            let (sa, sn) = (ab.sqrt(), (1.0 - ab).sqrt());
            for (c, &x0) in points.row(idx).iter().enumerate() {
                let e: f64 = rng.sample(StandardNormal);
                eps[i * d + c] = e as f32;
                x_t[i * d + c] = (sa * x0 + sn * e) as f32;
            }
            if let (Some(null), Some(labels)) = (null_label, data.labels) {
                let drop = rng.random::<f64>() < config.label_dropout;
                label_batch[i] = if drop { null } else { labels[idx] as u32 };
            }
        }
        let x = Tensor::from_slice(&x_t, (b, d), device)?;
        let target = Tensor::from_slice(&eps, (b, d), device)?;
        let t = Tensor::from_slice(&t_batch, b, device)?;
        let labels = match null_label {
            Some(_) => Some(Tensor::from_slice(&label_batch, b, device)?),
            None => None,
        };
        let pred = model.forward(&x, &t, labels.as_ref())?;
        let loss = candle_nn::loss::mse(&pred, &target)?;
        optimiser.set_learning_rate(config.learning_rate_at(step));
        optimiser.backward_step(&loss)?;
        window_sum += f64::from(loss.to_scalar::<f32>()?);
        window_len += 1;
        train_secs += started.elapsed().as_secs_f64();
        if window_len == window || step + 1 == config.steps {
            losses.push(LossPoint {
                step: step + 1,
                loss: window_sum / window_len as f64,
            });
            window_sum = 0.0;
            window_len = 0;
        }
        if checkpoints.contains(&(step + 1)) {
            on_checkpoint(step + 1, &model)?;
        }
    }
    if let Some(last) = losses.last() {
        if !last.loss.is_finite() {
            return Err(Error::Invalid(format!(
                "training diverged: loss {} at step {}",
                last.loss, last.step
            )));
        }
    }
    Ok(TrainedToy {
        model,
        varmap,
        losses,
        train_secs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiments::data::Mixture;

    fn linear_alphas_cumprod(n: usize) -> Vec<f64> {
        let mut acc = 1.0;
        (0..n)
            .map(|i| {
                let beta = 1e-4 + (0.02 - 1e-4) * i as f64 / (n - 1) as f64;
                acc *= 1.0 - beta;
                acc
            })
            .collect()
    }

    #[test]
    fn schedule_warms_up_then_decays_to_zero() {
        let c = ToyTrainConfig {
            steps: 100,
            batch_size: 1,
            learning_rate: 1.0,
            weight_decay: 0.0,
            label_dropout: 0.0,
            warmup_steps: 10,
        };
        assert!((c.learning_rate_at(0) - 0.1).abs() < 1e-12);
        assert!((c.learning_rate_at(10) - 1.0).abs() < 1e-12);
        assert!(c.learning_rate_at(99) < 0.01);
    }

    #[test]
    fn loss_falls_and_training_is_seeded() {
        let data = Mixture::line(&[-1.0, 1.0], 0.05).sample(512, &mut ChaCha8Rng::seed_from_u64(0));
        let ac = linear_alphas_cumprod(100);
        let mut config = ToyTrainConfig {
            steps: 150,
            batch_size: 128,
            learning_rate: 2e-3,
            weight_decay: 0.0,
            label_dropout: 0.1,
            warmup_steps: 10,
        };
        let mut model_config = ToyDenoiserConfig::new(1, Some(2));
        model_config.width = 32;
        let train_data = ToyTrainData {
            points: &data.points,
            labels: Some(&data.labels),
            alphas_cumprod: &ac,
        };
        let mut seen = Vec::new();
        let mut record = |step: usize, _: &ToyDenoiser| {
            seen.push(step);
            Ok(())
        };
        let a = train_toy(
            &model_config,
            &train_data,
            &config,
            3,
            &Device::Cpu,
            &[50, 150],
            &mut record,
        )
        .unwrap();
        assert_eq!(seen, vec![50, 150]);
        let first = a.losses.first().unwrap().loss;
        let last = a.losses.last().unwrap().loss;
        assert!(last < 0.7 * first, "loss {first} -> {last}");
        config.steps = 20;
        let mut none = |_: usize, _: &ToyDenoiser| Ok(());
        let b1 = train_toy(
            &model_config,
            &train_data,
            &config,
            9,
            &Device::Cpu,
            &[],
            &mut none,
        )
        .unwrap();
        let b2 = train_toy(
            &model_config,
            &train_data,
            &config,
            9,
            &Device::Cpu,
            &[],
            &mut none,
        )
        .unwrap();
        assert_eq!(b1.losses, b2.losses);
    }

    #[test]
    fn labels_must_match_the_model() {
        let data = Mixture::line(&[0.0], 0.1).sample(8, &mut ChaCha8Rng::seed_from_u64(0));
        let ac = linear_alphas_cumprod(10);
        let config = ToyTrainConfig {
            steps: 2,
            batch_size: 4,
            learning_rate: 1e-3,
            weight_decay: 0.0,
            label_dropout: 0.0,
            warmup_steps: 0,
        };
        let train_data = ToyTrainData {
            points: &data.points,
            labels: None,
            alphas_cumprod: &ac,
        };
        let mut none = |_: usize, _: &ToyDenoiser| Ok(());
        let err = train_toy(
            &ToyDenoiserConfig::new(1, Some(2)),
            &train_data,
            &config,
            0,
            &Device::Cpu,
            &[],
            &mut none,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("labels"), "{err}");
    }
}
