//! The batched, seeded sampling loop.
//!
//! One call draws B samples in one batch. All randomness comes from one `ChaCha8Rng` seeded
//! with the request's seed, as standard normal f32 (`rand_distr::StandardNormal`) drawn on the
//! CPU and then moved to the device, in this order:
//! 1. x_T: `prod(shape)` values, row-major over `shape` = (B, ...);
//! 2. then, for each inference step in order, only if that step adds noise (DDPM: t > 0;
//!    DDIM: eta > 0), another `prod(shape)` values, row-major.
//!
//! So the same seed gives the same bytes on the CPU and the same noise on any device. Sample i
//! of a batch depends on B (the draws are row-major over the whole batch).

use std::fmt;
use std::str::FromStr;

use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use super::config::SchedulerConfig;
use super::ddim::DdimScheduler;
use super::ddpm::DdpmScheduler;
use super::guidance::LabelConditioning;
use super::schedule::StepOutput;
use super::Denoise;
use crate::{Error, Result};

/// Which reverse process to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SamplerKind {
    /// Stochastic, one network call per step; usually as many steps as training timesteps.
    Ddpm,
    /// Deterministic at eta = 0; few steps (Diffusion Policy uses 8 to 16).
    Ddim,
}

impl SamplerKind {
    /// The config name: `ddpm` or `ddim`.
    pub fn as_str(self) -> &'static str {
        match self {
            SamplerKind::Ddpm => "ddpm",
            SamplerKind::Ddim => "ddim",
        }
    }
}

impl fmt::Display for SamplerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SamplerKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "ddpm" => Ok(SamplerKind::Ddpm),
            "ddim" => Ok(SamplerKind::Ddim),
            other => Err(Error::config(
                "sampler",
                format!("unknown sampler `{other}`, expected `ddpm` or `ddim`"),
            )),
        }
    }
}

/// How to sample (independent of the request).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplerSettings {
    /// Default `ddim`.
    pub kind: SamplerKind,
    /// Network evaluations (inference timesteps), 1..=num_train_timesteps. Default 10.
    pub inference_steps: usize,
    /// DDIM noise weight, finite, ≥ 0 (0: deterministic); ignored by DDPM. Default 0.
    pub eta: f64,
    /// Classifier-free guidance scale s (diffusers' convention, 1 = plain conditional); used
    /// only when a label is requested. Default 1.
    pub guidance_scale: f64,
    /// How many of the last steps' predicted x0 to keep (0..=inference_steps). Default 0.
    pub record_last_k: usize,
}

impl Default for SamplerSettings {
    fn default() -> Self {
        SamplerSettings {
            kind: SamplerKind::Ddim,
            inference_steps: 10,
            eta: 0.0,
            guidance_scale: 1.0,
            record_last_k: 0,
        }
    }
}

impl SamplerSettings {
    /// Checks ranges (NaN-safe). `inference_steps` ≤ N is checked against the scheduler.
    pub fn validate(&self) -> Result<()> {
        if self.inference_steps == 0 {
            return Err(Error::config(
                "inference_steps",
                "must be at least 1, found 0",
            ));
        }
        if !(self.eta >= 0.0 && self.eta.is_finite()) {
            return Err(Error::config(
                "eta",
                format!("must be finite and >= 0, found {}", self.eta),
            ));
        }
        if !self.guidance_scale.is_finite() {
            return Err(Error::config(
                "guidance_scale",
                format!("must be finite, found {}", self.guidance_scale),
            ));
        }
        if self.record_last_k > self.inference_steps {
            return Err(Error::config(
                "record_last_k",
                format!(
                    "must be <= inference_steps = {}, found {}",
                    self.inference_steps, self.record_last_k
                ),
            ));
        }
        Ok(())
    }
}

/// What to sample.
#[derive(Debug, Clone)]
pub struct SampleRequest {
    /// (B, ...): e.g. (B, T, D) trajectories or (B, D) points. Every dimension ≥ 1.
    pub shape: Vec<usize>,
    /// (1, G), broadcast to every sample, or (B, G); f32. Moved to `device`.
    pub global_cond: Option<Tensor>,
    /// `None`: no label (the model's null label if it has one). `Some(l)`: condition on label
    /// l with classifier-free guidance at `SamplerSettings::guidance_scale`.
    pub label: Option<u32>,
    /// Seeds the `ChaCha8Rng` that draws all noise.
    pub seed: u64,
    /// Where the network runs; the noise is drawn on the CPU and moved here.
    pub device: Device,
}

/// The samples and the recorded predictions of x0.
#[derive(Debug, Clone)]
pub struct SampleOutput {
    /// The final samples x_0, (B, ...) f32 on the request's device.
    pub sample: Tensor,
    /// The predicted (clipped) x0 of the last `record_last_k` steps, oldest first, each
    /// (B, ...).
    pub x0_history: Vec<Tensor>,
}

impl SampleOutput {
    /// Per sample: the variance over the recorded steps (population variance, divided by k) of
    /// each element of the predicted x0, averaged over all other dimensions (Aithal et al.
    /// 2024, "Understanding hallucinations in diffusion models through mode interpolation").
    /// Zeros when fewer than two steps were recorded. Returns B values.
    pub fn x0_variance(&self) -> Result<Vec<f32>> {
        let b = self.sample.dims().first().copied().unwrap_or(0);
        if self.x0_history.len() < 2 {
            return Ok(vec![0.0; b]);
        }
        let k = self.x0_history.len();
        let per_sample = self.sample.elem_count() / b.max(1);
        // (k, B, M) on the CPU.
        let stacked = Tensor::stack(&self.x0_history, 0)?
            .reshape((k, b, per_sample))?
            .to_device(&Device::Cpu)?
            .to_dtype(DType::F32)?
            .to_vec3::<f32>()?;
        let mut out = Vec::with_capacity(b);
        for i in 0..b {
            let mut total = 0.0f64;
            for m in 0..per_sample {
                let values = stacked.iter().map(|step| f64::from(step[i][m]));
                let mean = values.clone().sum::<f64>() / k as f64;
                let var = values.map(|v| (v - mean) * (v - mean)).sum::<f64>() / k as f64;
                total += var;
            }
            out.push((total / per_sample.max(1) as f64) as f32);
        }
        Ok(out)
    }
}

/// `prod(shape)` standard normal f32 values from `rng`, row-major, as a tensor on `device`.
pub fn standard_normal(rng: &mut ChaCha8Rng, shape: &[usize], device: &Device) -> Result<Tensor> {
    let n = shape.iter().product::<usize>();
    let values: Vec<f32> = (0..n).map(|_| rng.sample(StandardNormal)).collect();
    Ok(Tensor::from_vec(values, shape, device)?)
}

/// The scheduler chosen by [`SamplerSettings::kind`].
enum Reverse {
    Ddpm(DdpmScheduler),
    Ddim(DdimScheduler, f64),
}

impl Reverse {
    fn new(config: &SchedulerConfig, settings: &SamplerSettings) -> Result<Self> {
        let mut reverse = match settings.kind {
            SamplerKind::Ddpm => Reverse::Ddpm(DdpmScheduler::new(config)?),
            SamplerKind::Ddim => Reverse::Ddim(DdimScheduler::new(config)?, settings.eta),
        };
        match &mut reverse {
            Reverse::Ddpm(s) => s.set_timesteps(settings.inference_steps)?,
            Reverse::Ddim(s, _) => s.set_timesteps(settings.inference_steps)?,
        }
        Ok(reverse)
    }

    fn timesteps(&self) -> &[usize] {
        match self {
            Reverse::Ddpm(s) => s.timesteps(),
            Reverse::Ddim(s, _) => s.timesteps(),
        }
    }

    fn adds_noise(&self, t: usize) -> bool {
        match self {
            Reverse::Ddpm(s) => s.step_adds_noise(t),
            Reverse::Ddim(s, eta) => s.step_adds_noise(*eta),
        }
    }

    fn step(
        &self,
        out: &Tensor,
        t: usize,
        x: &Tensor,
        noise: Option<&Tensor>,
    ) -> Result<StepOutput> {
        match self {
            Reverse::Ddpm(s) => s.step(out, t, x, noise),
            Reverse::Ddim(s, eta) => s.step(out, t, x, *eta, noise),
        }
    }
}

/// Checks and broadcasts the global condition to (B·factor, G) on `device`.
fn prepare_global_cond(
    cond: Option<&Tensor>,
    b: usize,
    labels: &LabelConditioning,
    device: &Device,
) -> Result<Option<Tensor>> {
    let Some(cond) = cond else { return Ok(None) };
    let (rows, g) = match cond.dims() {
        &[rows, g] if rows == 1 || rows == b => (rows, g),
        other => {
            return Err(Error::Shape {
                what: "global_cond".into(),
                expected: vec![b, cond.dims().last().copied().unwrap_or(0)],
                found: other.to_vec(),
            })
        }
    };
    if cond.dtype() != DType::F32 {
        return Err(Error::Invalid(format!(
            "global_cond: expected dtype f32, found {:?}",
            cond.dtype()
        )));
    }
    let cond = cond.to_device(device)?;
    let cond = if rows == 1 && b > 1 {
        cond.broadcast_as((b, g))?.contiguous()?
    } else {
        cond
    };
    Ok(Some(labels.expand_input(&cond)?))
}

/// Runs the reverse process: B samples of `request.shape` from `model`.
///
/// The scheduler is built from `scheduler` and `settings.kind`, with
/// `settings.inference_steps` timesteps. The network sees x_t (B, ...) — or (2B, ...) when
/// guided, the labelled half first — the timestep as a (B,) / (2B,) u32 tensor, the global
/// condition and the labels (see [`LabelConditioning::resolve`]).
pub fn sample(
    model: &dyn Denoise,
    scheduler: &SchedulerConfig,
    settings: &SamplerSettings,
    request: &SampleRequest,
) -> Result<SampleOutput> {
    settings.validate()?;
    let shape = request.shape.as_slice();
    let b = match shape.first() {
        Some(&b) if shape.iter().all(|&d| d > 0) => b,
        _ => {
            return Err(Error::Invalid(format!(
                "sample: shape must be (B, ...) with every dimension >= 1, found {shape:?}"
            )))
        }
    };
    let reverse = Reverse::new(scheduler, settings)?;
    let labels =
        LabelConditioning::resolve(request.label, model.null_label(), settings.guidance_scale)?;
    let device = &request.device;
    let global_cond = prepare_global_cond(request.global_cond.as_ref(), b, &labels, device)?;
    let label_tensor = labels.labels(b, device)?;
    let rows = b * labels.batch_factor();

    let mut rng = ChaCha8Rng::seed_from_u64(request.seed);
    let mut x = standard_normal(&mut rng, shape, device)?;
    let timesteps = reverse.timesteps().to_vec();
    let first_recorded = timesteps.len() - settings.record_last_k;
    let mut x0_history = Vec::with_capacity(settings.record_last_k);

    for (i, &t) in timesteps.iter().enumerate() {
        let t_u32 = u32::try_from(t)
            .map_err(|_| Error::Invalid(format!("timestep {t} does not fit in u32")))?;
        let t_tensor = Tensor::full(t_u32, rows, device)?;
        let input = labels.expand_input(&x)?;
        let output = model.denoise(
            &input,
            &t_tensor,
            global_cond.as_ref(),
            label_tensor.as_ref(),
        )?;
        if output.dims() != input.dims() {
            return Err(Error::Shape {
                what: format!("denoiser output at timestep {t}"),
                expected: input.dims().to_vec(),
                found: output.dims().to_vec(),
            });
        }
        let output = labels.combine(&output, b)?;
        let noise = if reverse.adds_noise(t) {
            Some(standard_normal(&mut rng, shape, device)?)
        } else {
            None
        };
        let step = reverse.step(&output, t, &x, noise.as_ref())?;
        if i >= first_recorded {
            x0_history.push(step.pred_original_sample);
        }
        x = step.prev_sample;
    }
    Ok(SampleOutput {
        sample: x,
        x0_history,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampler_kind_names() {
        assert_eq!("ddpm".parse::<SamplerKind>().unwrap(), SamplerKind::Ddpm);
        assert_eq!(SamplerKind::Ddim.to_string(), "ddim");
        assert!("DDIM".parse::<SamplerKind>().is_err());
        let s: SamplerSettings =
            serde_yaml::from_str("kind: ddpm\ninference_steps: 100\n").unwrap();
        assert_eq!(s.kind, SamplerKind::Ddpm);
        assert!(serde_yaml::from_str::<SamplerSettings>("steps: 3\n").is_err());
    }

    #[test]
    fn settings_validation_names_the_key() {
        let bad = [
            (
                SamplerSettings {
                    inference_steps: 0,
                    record_last_k: 0,
                    ..Default::default()
                },
                "inference_steps",
            ),
            (
                SamplerSettings {
                    eta: -0.1,
                    ..Default::default()
                },
                "eta",
            ),
            (
                SamplerSettings {
                    guidance_scale: f64::INFINITY,
                    ..Default::default()
                },
                "guidance_scale",
            ),
            (
                SamplerSettings {
                    record_last_k: 11,
                    ..Default::default()
                },
                "record_last_k",
            ),
        ];
        for (s, key) in bad {
            let err = s.validate().unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn noise_is_row_major_from_one_stream() {
        let mut a = ChaCha8Rng::seed_from_u64(7);
        let mut b = ChaCha8Rng::seed_from_u64(7);
        let t = standard_normal(&mut a, &[2, 3], &Device::Cpu).unwrap();
        let first: Vec<f32> = (0..6).map(|_| b.sample(StandardNormal)).collect();
        assert_eq!(t.flatten_all().unwrap().to_vec1::<f32>().unwrap(), first);
    }
}
