//! Optimisation pieces of the training loop: AdamW with state that can be saved and resumed,
//! global-norm gradient clipping, the warm-up + cosine learning-rate schedule, and the EMA of
//! the weights used by Diffusion Policy.
//!
//! Parameters are addressed by name and always visited in sorted name order, so a run is
//! deterministic (no `HashMap` iteration order) and a checkpoint maps state to parameters by name.

use std::collections::{BTreeMap, HashMap};

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// AdamW hyper-parameters (PyTorch's defaults but the weight decay).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdamWConfig {
    /// Peak learning rate (after warm-up).
    pub learning_rate: f64,
    /// First-moment decay.
    #[serde(default = "default_beta1")]
    pub beta1: f64,
    /// Second-moment decay.
    #[serde(default = "default_beta2")]
    pub beta2: f64,
    /// Denominator epsilon.
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// Decoupled weight decay.
    #[serde(default = "default_weight_decay")]
    pub weight_decay: f64,
}

fn default_beta1() -> f64 {
    0.9
}
fn default_beta2() -> f64 {
    0.999
}
fn default_eps() -> f64 {
    1e-8
}
fn default_weight_decay() -> f64 {
    1e-6
}

impl AdamWConfig {
    /// Checks the values (NaN fails).
    pub fn validate(&self) -> Result<()> {
        if !(self.learning_rate > 0.0 && self.learning_rate < 1.0) {
            return Err(Error::config(
                "optimizer.learning_rate",
                "must be in (0, 1)",
            ));
        }
        for (key, v) in [
            ("optimizer.beta1", self.beta1),
            ("optimizer.beta2", self.beta2),
        ] {
            if !(0.0..1.0).contains(&v) {
                return Err(Error::config(key, "must be in [0, 1)"));
            }
        }
        if !(self.eps > 0.0) {
            return Err(Error::config("optimizer.eps", "must be > 0"));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Err(Error::config("optimizer.weight_decay", "must be >= 0"));
        }
        Ok(())
    }
}

/// AdamW (Loshchilov & Hutter) over named variables, as `torch.optim.AdamW` computes it.
pub struct AdamW {
    config: AdamWConfig,
    learning_rate: f64,
    step: u64,
    params: Vec<Param>,
}

struct Param {
    name: String,
    var: Var,
    m: Var,
    v: Var,
}

impl AdamW {
    /// An optimiser over `vars` (name → variable); non-float variables are ignored.
    pub fn new(vars: &HashMap<String, Var>, config: AdamWConfig) -> Result<Self> {
        config.validate()?;
        let sorted: BTreeMap<&String, &Var> = vars.iter().collect();
        let mut params = Vec::with_capacity(sorted.len());
        for (name, var) in sorted {
            if !var.dtype().is_float() {
                continue;
            }
            let zeros = || Var::zeros(var.shape(), var.dtype(), var.device());
            params.push(Param {
                name: name.clone(),
                var: var.clone(),
                m: zeros()?,
                v: zeros()?,
            });
        }
        Ok(AdamW {
            learning_rate: config.learning_rate,
            config,
            step: 0,
            params,
        })
    }

    /// Optimiser steps taken so far.
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// Sets the learning rate of the next step (the schedule's value).
    pub fn set_learning_rate(&mut self, learning_rate: f64) {
        self.learning_rate = learning_rate;
    }

    /// One AdamW step with `grads` (variables without a gradient are left alone).
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step += 1;
        let c = &self.config;
        let lr = self.learning_rate;
        let bias1 = 1.0 - c.beta1.powi(self.step as i32);
        let bias2 = 1.0 - c.beta2.powi(self.step as i32);
        for p in &self.params {
            let Some(grad) = grads.get(&p.var) else {
                continue;
            };
            let m = ((p.m.as_tensor() * c.beta1)? + (grad * (1.0 - c.beta1))?)?;
            let v = ((p.v.as_tensor() * c.beta2)? + (grad.sqr()? * (1.0 - c.beta2))?)?;
            let m_hat = (&m / bias1)?;
            let v_hat = (&v / bias2)?;
            let decayed = (p.var.as_tensor() * (1.0 - lr * c.weight_decay))?;
            let update = (m_hat / (v_hat.sqrt()? + c.eps)?)?;
            p.var.set(&(decayed - (update * lr)?)?)?;
            p.m.set(&m)?;
            p.v.set(&v)?;
        }
        Ok(())
    }

    /// The optimiser state as named tensors (`adamw.m.<name>`, `adamw.v.<name>`, `adamw.step`).
    pub fn state(&self) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::with_capacity(2 * self.params.len() + 1);
        for p in &self.params {
            out.push((format!("adamw.m.{}", p.name), p.m.as_tensor().clone()));
            out.push((format!("adamw.v.{}", p.name), p.v.as_tensor().clone()));
        }
        let device = self.params.first().map(|p| p.var.device().clone());
        let device = device.unwrap_or(candle_core::Device::Cpu);
        // The step count as two u32 halves: safetensors has no u64 and f32 would lose steps.
        let step = Tensor::new(&[(self.step >> 32) as u32, self.step as u32], &device)?;
        out.push(("adamw.step".to_string(), step));
        Ok(out)
    }

    /// Restores the state written by [`AdamW::state`]; every parameter must be present.
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>) -> Result<()> {
        let get = |key: String| {
            tensors.get(&key).ok_or_else(|| {
                Error::Invalid(format!("optimizer state: tensor `{key}` is missing"))
            })
        };
        for p in &self.params {
            for (key, slot) in [("m", &p.m), ("v", &p.v)] {
                let t = get(format!("adamw.{key}.{}", p.name))?;
                if t.dims() != slot.dims() {
                    return Err(Error::Shape {
                        what: format!("optimizer state adamw.{key}.{}", p.name),
                        expected: slot.dims().to_vec(),
                        found: t.dims().to_vec(),
                    });
                }
                slot.set(&t.to_dtype(slot.dtype())?.to_device(slot.device())?)?;
            }
        }
        let step = get("adamw.step".to_string())?.to_vec1::<u32>()?;
        let [hi, lo] = step[..] else {
            return Err(Error::Invalid(
                "optimizer state: `adamw.step` must hold 2 values".into(),
            ));
        };
        self.step = (u64::from(hi) << 32) | u64::from(lo);
        Ok(())
    }
}

/// Scales `grads` of `vars` so that their global L2 norm is at most `max_norm` (as
/// `torch.nn.utils.clip_grad_norm_`). Returns the norm before clipping.
pub fn clip_grad_norm(vars: &[Var], grads: &mut GradStore, max_norm: f64) -> Result<f64> {
    let mut total = 0.0f64;
    if vars.first().is_none_or(|v| v.device().is_cpu()) {
        for var in vars {
            if let Some(g) = grads.get(var) {
                total += g
                    .to_dtype(DType::F64)?
                    .sqr()?
                    .sum_all()?
                    .to_scalar::<f64>()?;
            }
        }
    } else {
        // On a GPU: one read back to the host for all variables, not one per variable.
        let squares = vars
            .iter()
            .filter_map(|var| grads.get(var))
            .map(|g| g.to_dtype(DType::F64)?.sqr()?.sum_all())
            .collect::<candle_core::Result<Vec<_>>>()?;
        if !squares.is_empty() {
            total = Tensor::stack(&squares, 0)?.sum_all()?.to_scalar::<f64>()?;
        }
    }
    let norm = total.sqrt();
    if norm.is_finite() && norm > max_norm {
        let scale = max_norm / (norm + 1e-6);
        for var in vars {
            if let Some(g) = grads.get(var) {
                let scaled = (g * scale)?;
                grads.insert(var, scaled);
            }
        }
    }
    Ok(norm)
}

/// Linear warm-up from 0 to `peak` over `warmup_steps`, then cosine decay to 0 at `total_steps`
/// (diffusers' `get_cosine_schedule_with_warmup`, as Diffusion Policy uses).
pub fn cosine_with_warmup(step: u64, warmup_steps: u64, total_steps: u64, peak: f64) -> f64 {
    if step < warmup_steps {
        return peak * step as f64 / warmup_steps.max(1) as f64;
    }
    let progress =
        (step - warmup_steps) as f64 / total_steps.saturating_sub(warmup_steps).max(1) as f64;
    peak * 0.5 * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos())
}

/// Cosine with warm restarts (SGDR, Loshchilov & Hutter 2017) after a first warm-up + cosine
/// cycle: the first cycle is [`cosine_with_warmup`] ending at `restarts[0]` (or `total_steps`
/// without restarts); at each restart the learning rate jumps to `restart_peak` and decays along
/// a cosine to 0 at the next restart or at `total_steps`. `restarts` must be increasing and in
/// `(warmup_steps, total_steps)`, so a run extended by a restart repeats the original run's
/// schedule step for step up to the restart.
pub fn cosine_with_restarts(
    step: u64,
    warmup_steps: u64,
    total_steps: u64,
    restarts: &[u64],
    peak: f64,
    restart_peak: f64,
) -> f64 {
    let first_end = restarts.first().copied().unwrap_or(total_steps);
    if step < first_end {
        return cosine_with_warmup(step, warmup_steps, first_end, peak);
    }
    let index = restarts.iter().rposition(|&r| r <= step).unwrap_or(0);
    let start = restarts[index];
    let end = restarts.get(index + 1).copied().unwrap_or(total_steps);
    cosine_with_warmup(step - start, 0, end.saturating_sub(start), restart_peak)
}

/// Exponential moving average of the weights with Diffusion Policy's warm-up decay
/// `1 − (1 + step / inv_gamma)^−power`, clamped to `[0, max_decay]`.
pub struct Ema {
    power: f64,
    max_decay: f64,
    updates: u64,
    shadow: Vec<(String, Var, Var)>,
}

impl Ema {
    /// An EMA that starts as a copy of `vars`.
    pub fn new(vars: &HashMap<String, Var>, power: f64, max_decay: f64) -> Result<Self> {
        let sorted: BTreeMap<&String, &Var> = vars.iter().collect();
        let mut shadow = Vec::with_capacity(sorted.len());
        for (name, var) in sorted {
            let copy = Var::from_tensor(&var.as_tensor().copy()?)?;
            shadow.push((name.clone(), var.clone(), copy));
        }
        Ok(Ema {
            power,
            max_decay,
            updates: 0,
            shadow,
        })
    }

    /// The decay used for the next update.
    pub fn decay(&self) -> f64 {
        let step = self.updates.saturating_sub(1) as f64;
        if step <= 0.0 {
            return 0.0;
        }
        (1.0 - (1.0 + step).powf(-self.power)).clamp(0.0, self.max_decay)
    }

    /// Moves the averages toward the current weights.
    pub fn update(&mut self) -> Result<()> {
        self.updates += 1;
        let decay = self.decay();
        for (_, var, avg) in &self.shadow {
            let next = ((avg.as_tensor() * decay)? + (var.as_tensor() * (1.0 - decay))?)?;
            avg.set(&next)?;
        }
        Ok(())
    }

    /// The averaged weights by name.
    pub fn weights(&self) -> Vec<(String, Tensor)> {
        self.shadow
            .iter()
            .map(|(name, _, avg)| (name.clone(), avg.as_tensor().clone()))
            .collect()
    }

    /// Number of updates so far.
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// Restores averages (and the update count) saved from [`Ema::weights`].
    pub fn load(&mut self, tensors: &HashMap<String, Tensor>, updates: u64) -> Result<()> {
        for (name, _, avg) in &self.shadow {
            let t = tensors
                .get(name)
                .ok_or_else(|| Error::Invalid(format!("EMA state: tensor `{name}` is missing")))?;
            avg.set(&t.to_dtype(avg.dtype())?.to_device(avg.device())?)?;
        }
        self.updates = updates;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    /// Checked against PyTorch 2.15:
    /// ```python
    /// import torch
    /// w = torch.nn.Parameter(torch.tensor([1.0, -2.0, 3.0]))
    /// opt = torch.optim.AdamW([w], lr=0.1, weight_decay=0.01)
    /// for _ in range(3):
    ///     opt.zero_grad(); (w ** 2).sum().backward(); opt.step()
    /// print(w.tolist())  # [0.6989112, -1.6949446, 2.6917036]
    /// ```
    #[test]
    fn adamw_matches_pytorch() {
        let var = Var::new(&[1.0f32, -2.0, 3.0], &Device::Cpu).unwrap();
        let vars = HashMap::from([("w".to_string(), var.clone())]);
        let config = AdamWConfig {
            learning_rate: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        };
        let mut opt = AdamW::new(&vars, config).unwrap();
        for _ in 0..3 {
            let loss = var.as_tensor().sqr().unwrap().sum_all().unwrap();
            opt.step(&loss.backward().unwrap()).unwrap();
        }
        let w = var.as_tensor().to_vec1::<f32>().unwrap();
        let expected = [0.698_911_2f32, -1.694_944_6, 2.691_703_6];
        for (a, b) in w.iter().zip(expected) {
            assert!((a - b).abs() < 1e-5, "{w:?} vs {expected:?}");
        }
    }

    #[test]
    fn adamw_state_round_trips() {
        let var = Var::new(&[1.0f32, 2.0], &Device::Cpu).unwrap();
        let vars = HashMap::from([("w".to_string(), var.clone())]);
        let config = AdamWConfig {
            learning_rate: 0.01,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        };
        let mut opt = AdamW::new(&vars, config.clone()).unwrap();
        let loss = var.as_tensor().sqr().unwrap().sum_all().unwrap();
        opt.step(&loss.backward().unwrap()).unwrap();
        let state: HashMap<String, Tensor> = opt.state().unwrap().into_iter().collect();
        let mut restored = AdamW::new(&vars, config).unwrap();
        restored.load_state(&state).unwrap();
        assert_eq!(restored.step_count(), 1);
        let mut missing = state.clone();
        missing.remove("adamw.v.w");
        let err = restored.load_state(&missing).err().unwrap().to_string();
        assert!(err.contains("adamw.v.w"), "{err}");
    }

    #[test]
    fn clipping_bounds_the_norm() {
        let var = Var::new(&[3.0f32, 4.0], &Device::Cpu).unwrap();
        let loss = (var.as_tensor() * 1.0).unwrap().sum_all().unwrap();
        let loss = (loss * 10.0).unwrap();
        let mut grads = loss.backward().unwrap();
        let norm = clip_grad_norm(std::slice::from_ref(&var), &mut grads, 1.0).unwrap();
        assert!((norm - 200f64.sqrt()).abs() < 1e-4);
        let g = grads.get(&var).unwrap().to_vec1::<f32>().unwrap();
        let clipped = (g[0] * g[0] + g[1] * g[1]).sqrt();
        assert!((clipped - 1.0).abs() < 1e-4, "{clipped}");
    }

    #[test]
    fn schedule_warms_up_then_decays() {
        assert_eq!(cosine_with_warmup(0, 10, 110, 1.0), 0.0);
        assert!((cosine_with_warmup(5, 10, 110, 1.0) - 0.5).abs() < 1e-12);
        assert!((cosine_with_warmup(10, 10, 110, 1.0) - 1.0).abs() < 1e-12);
        assert!((cosine_with_warmup(60, 10, 110, 1.0) - 0.5).abs() < 1e-12);
        assert!(cosine_with_warmup(110, 10, 110, 1.0).abs() < 1e-12);
    }

    #[test]
    fn restarts_repeat_the_first_cycle_then_decay_from_the_restart_peak() {
        for step in 0..100 {
            assert_eq!(
                cosine_with_restarts(step, 10, 300, &[100, 200], 1.0, 0.4),
                cosine_with_warmup(step, 10, 100, 1.0)
            );
        }
        assert_eq!(
            cosine_with_restarts(50, 10, 110, &[], 1.0, 0.4),
            cosine_with_warmup(50, 10, 110, 1.0)
        );
        assert!((cosine_with_restarts(100, 10, 300, &[100, 200], 1.0, 0.4) - 0.4).abs() < 1e-12);
        assert!((cosine_with_restarts(150, 10, 300, &[100, 200], 1.0, 0.4) - 0.2).abs() < 1e-12);
        assert!((cosine_with_restarts(200, 10, 300, &[100, 200], 1.0, 0.4) - 0.4).abs() < 1e-12);
        assert!((cosine_with_restarts(250, 10, 300, &[100, 200], 1.0, 0.4) - 0.2).abs() < 1e-12);
        assert!(cosine_with_restarts(300, 10, 300, &[100, 200], 1.0, 0.4).abs() < 1e-12);
    }

    #[test]
    fn ema_tracks_weights() {
        let var = Var::new(&[0.0f32], &Device::Cpu).unwrap();
        let vars = HashMap::from([("w".to_string(), var.clone())]);
        let mut ema = Ema::new(&vars, 0.75, 0.9999).unwrap();
        var.set(&Tensor::new(&[1.0f32], &Device::Cpu).unwrap())
            .unwrap();
        ema.update().unwrap(); // decay 0: copies
        let w = ema.weights()[0].1.to_vec1::<f32>().unwrap()[0];
        assert_eq!(w, 1.0);
        var.set(&Tensor::new(&[2.0f32], &Device::Cpu).unwrap())
            .unwrap();
        let decay = {
            ema.updates += 1;
            let d = ema.decay();
            ema.updates -= 1;
            d
        };
        ema.update().unwrap();
        let w = ema.weights()[0].1.to_vec1::<f32>().unwrap()[0];
        let expected = (1.0 * decay + 2.0 * (1.0 - decay)) as f32;
        assert!((w - expected).abs() < 1e-6);
        assert!(decay > 0.0 && decay < 1.0);
    }
}
