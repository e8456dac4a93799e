//! Sampling the toy denoiser with the project's diffusion engine ([`crate::diffusion::sample`]).

use candle_core::{Device, Tensor};

use super::data::{Normaliser, Points};
use super::toy_model::ToyDenoiser;
use crate::diffusion::{
    sample, Denoise, SampleRequest, SamplerKind, SamplerSettings, SchedulerConfig,
};
use crate::{Error, Result};

impl Denoise for ToyDenoiser {
    /// `x_t`: (B, D); `timesteps`: (B,) u32; `global_cond` must be `None` (toy data have no
    /// observation); `labels`: (B,) u32 or `None` (null label).
    fn denoise(
        &self,
        x_t: &Tensor,
        timesteps: &Tensor,
        global_cond: Option<&Tensor>,
        labels: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        if global_cond.is_some() {
            return Err(candle_core::Error::Msg(
                "the toy denoiser takes no global condition".into(),
            ));
        }
        // Sampling never back-propagates: cut the graph to the trainable weights so the
        // reverse chain does not keep every step's intermediate tensors alive.
        Ok(self.forward(x_t, timesteps, labels)?.detach())
    }

    fn null_label(&self) -> Option<u32> {
        self.null_label_index()
    }
}

/// Samples in data units with the per-sample x̂0 variance.
#[derive(Debug, Clone)]
pub struct Draw {
    /// The samples, denormalised: (N, D).
    pub points: Points,
    /// x̂0 variance over the recorded last steps, in network units² (N,); zeros when fewer than
    /// two steps were recorded.
    pub x0_variance: Vec<f64>,
}

/// How to draw: the scheduler and sampler settings.
#[derive(Debug, Clone)]
pub struct DrawSettings<'a> {
    /// The noise schedule the model was trained with.
    pub scheduler: &'a SchedulerConfig,
    /// Sampler, steps, guidance scale and recorded window.
    pub sampler: SamplerSettings,
}

impl<'a> DrawSettings<'a> {
    /// DDPM over `steps` with the last `record_last_k` x̂0 recorded.
    pub fn ddpm(scheduler: &'a SchedulerConfig, steps: usize, record_last_k: usize) -> Self {
        DrawSettings {
            scheduler,
            sampler: SamplerSettings {
                kind: SamplerKind::Ddpm,
                inference_steps: steps,
                eta: 0.0,
                guidance_scale: 1.0,
                record_last_k,
            },
        }
    }

    /// DDIM over `steps` with noise weight `eta` (0: deterministic).
    pub fn ddim(scheduler: &'a SchedulerConfig, steps: usize, eta: f64) -> Self {
        DrawSettings {
            scheduler,
            sampler: SamplerSettings {
                kind: SamplerKind::Ddim,
                inference_steps: steps,
                eta,
                guidance_scale: 1.0,
                record_last_k: 0,
            },
        }
    }

    /// The same with classifier-free guidance scale `scale`.
    pub fn with_guidance(mut self, scale: f64) -> Self {
        self.sampler.guidance_scale = scale;
        self
    }
}

/// Draws `n` samples (label `None`: unconditional / null label) and maps them back to data
/// units with `normaliser`.
pub fn draw(
    model: &ToyDenoiser,
    settings: &DrawSettings<'_>,
    n: usize,
    label: Option<u32>,
    seed: u64,
    normaliser: &Normaliser,
) -> Result<Draw> {
    let device: Device = model.device().clone();
    let dim = model.config().dim;
    let request = SampleRequest {
        shape: vec![n, dim],
        global_cond: None,
        label,
        seed,
        device,
    };
    let output = sample(model, settings.scheduler, &settings.sampler, &request)?;
    let values: Vec<f64> = output
        .sample
        .to_device(&Device::Cpu)?
        .flatten_all()?
        .to_vec1::<f32>()?
        .into_iter()
        .map(f64::from)
        .collect();
    if values.len() != n * dim {
        return Err(Error::Shape {
            what: "sampler output".into(),
            expected: vec![n, dim],
            found: output.sample.dims().to_vec(),
        });
    }
    let points = normaliser.inverse(&Points::new(dim, values)?);
    let x0_variance = output.x0_variance()?.into_iter().map(f64::from).collect();
    Ok(Draw {
        points,
        x0_variance,
    })
}
