//! Diffusion: noise schedules, DDPM and DDIM steps as diffusers 0.42 computes them,
//! classifier-free guidance and the batched, seeded sampler. Knows nothing of the U-Net: any
//! network that implements [`Denoise`] can be sampled.
//!
//! - [`config`]: [`SchedulerConfig`] (diffusers' keys, Diffusion Policy's defaults) and its enums.
//! - [`schedule`]: betas, ᾱ (`alphas_cumprod`), inference timesteps, the forward process.
//! - [`ddpm`], [`ddim`]: the reverse steps.
//! - [`guidance`]: classifier-free guidance.
//! - [`sampler`]: [`sample`], the whole reverse process for a batch.
//!
//! References: Ho et al. 2020 (DDPM), Song et al. 2021 (DDIM), Nichol & Dhariwal 2021 (cosine
//! schedule), Ho & Salimans 2022 (classifier-free guidance), Chi et al. 2023 (Diffusion
//! Policy); diffusers' `scheduling_ddpm.py` and `scheduling_ddim.py`.
//!
//! Training uses [`NoiseSchedule::add_noise`] (or the schedulers' `add_noise`),
//! [`NoiseSchedule::alphas_cumprod`] and [`PredictionType::training_target`].

use candle_core::Tensor;

pub mod config;
pub mod ddim;
pub mod ddpm;
pub mod guidance;
pub mod sampler;
pub mod schedule;

pub use config::{BetaSchedule, PredictionType, SchedulerConfig, TimestepSpacing, VarianceType};
pub use ddim::DdimScheduler;
pub use ddpm::DdpmScheduler;
pub use guidance::{guided_output, LabelConditioning};
pub use sampler::{
    sample, standard_normal, SampleOutput, SampleRequest, SamplerKind, SamplerSettings,
};
pub use schedule::{NoiseSchedule, StepOutput};

/// Anything that predicts the network output (ε or x0, per the scheduler's `prediction_type`)
/// for a noisy batch.
pub trait Denoise {
    /// - `x_t`: (B, ...) f32, the noisy samples;
    /// - `timesteps`: (B,) u32, the training timestep of each row;
    /// - `global_cond`: (B, G) f32 or `None`;
    /// - `labels`: (B,) u32 or `None` (`None` only when [`Denoise::null_label`] is `None`).
    ///
    /// Returns (B, ...) f32, the shape of `x_t`.
    fn denoise(
        &self,
        x_t: &Tensor,
        timesteps: &Tensor,
        global_cond: Option<&Tensor>,
        labels: Option<&Tensor>,
    ) -> candle_core::Result<Tensor>;

    /// The label index meaning "no label" (classifier-free guidance), if labels are supported.
    fn null_label(&self) -> Option<u32>;
}
