//! DDPM reverse step (Ho et al. 2020), as diffusers' `DDPMScheduler` computes it.
//!
//! After `set_timesteps(n)` the step from t goes to the *next timestep in the list* (not
//! t - N/n), and to "before the start" (ᾱ = 1) from the last one, exactly as diffusers'
//! `previous_timestep`. Without `set_timesteps` the list is N-1 .. 0.
//!
//! Scalars (ᾱ, coefficients) are f32 and combined in diffusers' order, so results match
//! diffusers to float rounding (see `tests/diffusion_golden.rs`).

use candle_core::Tensor;

use super::config::{PredictionType, SchedulerConfig, VarianceType};
use super::schedule::{check_same_shape, clip, divide, scale, NoiseSchedule, StepOutput};
use crate::{Error, Result};

/// DDPM scheduler: a [`NoiseSchedule`] plus the current inference timesteps.
#[derive(Debug, Clone)]
pub struct DdpmScheduler {
    schedule: NoiseSchedule,
    timesteps: Vec<usize>,
    /// `num_inference_steps` of the last `set_timesteps`, `None` before any.
    num_inference_steps: Option<usize>,
}

impl DdpmScheduler {
    /// Validates `config`; the timesteps are all N training steps until [`Self::set_timesteps`].
    pub fn new(config: &SchedulerConfig) -> Result<Self> {
        let schedule = NoiseSchedule::new(config)?;
        let timesteps = (0..schedule.num_train_timesteps()).rev().collect();
        Ok(DdpmScheduler {
            schedule,
            timesteps,
            num_inference_steps: None,
        })
    }

    /// The betas and ᾱ.
    pub fn schedule(&self) -> &NoiseSchedule {
        &self.schedule
    }

    /// The validated configuration.
    pub fn config(&self) -> &SchedulerConfig {
        self.schedule.config()
    }

    /// Chooses `num_inference_steps` timesteps with the config's spacing.
    pub fn set_timesteps(&mut self, num_inference_steps: usize) -> Result<()> {
        self.timesteps = self.schedule.inference_timesteps(num_inference_steps)?;
        self.num_inference_steps = Some(num_inference_steps);
        Ok(())
    }

    /// The timesteps to step through, descending.
    pub fn timesteps(&self) -> &[usize] {
        &self.timesteps
    }

    /// The timestep a step from `t` lands on: the next one in [`Self::timesteps`], `None` after
    /// the last (ᾱ = 1 there). Errors when `t` is not in the list.
    pub fn previous_timestep(&self, t: usize) -> Result<Option<usize>> {
        if self.num_inference_steps.is_none() {
            return Ok(t.checked_sub(1));
        }
        let index = self.timesteps.iter().position(|&s| s == t).ok_or_else(|| {
            Error::Invalid(format!(
                "DDPM step: timestep {t} is not one of the inference timesteps {:?}",
                self.timesteps
            ))
        })?;
        Ok(self.timesteps.get(index + 1).copied())
    }

    /// Whether a step from `t` adds noise (diffusers: `t > 0`), i.e. needs `noise`.
    pub fn step_adds_noise(&self, t: usize) -> bool {
        t > 0
    }

    /// One reverse step from `t`.
    ///
    /// - `model_output`: the network output (ε or x0 per `prediction_type`), shape of `sample`.
    /// - `sample`: x_t, (B, ...) f32.
    /// - `noise`: standard normal, shape of `sample`; required when [`Self::step_adds_noise`],
    ///   ignored otherwise.
    pub fn step(
        &self,
        model_output: &Tensor,
        t: usize,
        sample: &Tensor,
        noise: Option<&Tensor>,
    ) -> Result<StepOutput> {
        check_same_shape("DDPM step: model_output", sample, model_output)?;
        let config = self.schedule.config();
        let prev_t = self.previous_timestep(t)?;
        let alpha_prod_t = self.schedule.alpha_cumprod(t)?;
        let alpha_prod_t_prev = match prev_t {
            Some(p) => self.schedule.alpha_cumprod(p)?,
            None => 1.0,
        };
        let beta_prod_t = 1.0 - alpha_prod_t;
        let beta_prod_t_prev = 1.0 - alpha_prod_t_prev;
        let current_alpha_t = alpha_prod_t / alpha_prod_t_prev;
        let current_beta_t = 1.0 - current_alpha_t;

        // Formula (15) of the DDPM paper.
        let pred_original_sample = match config.prediction_type {
            PredictionType::Epsilon => divide(
                &(sample - scale(model_output, beta_prod_t.sqrt())?)?,
                alpha_prod_t.sqrt(),
            )?,
            PredictionType::Sample => model_output.clone(),
        };
        let pred_original_sample = clip(pred_original_sample, config)?;

        // Formula (7): the posterior mean.
        let x0_coeff = (alpha_prod_t_prev.sqrt() * current_beta_t) / beta_prod_t;
        let sample_coeff = current_alpha_t.sqrt() * beta_prod_t_prev / beta_prod_t;
        let mut prev_sample =
            (scale(&pred_original_sample, x0_coeff)? + scale(sample, sample_coeff)?)?;

        if self.step_adds_noise(t) {
            let noise = noise.ok_or_else(|| {
                Error::Invalid(format!(
                    "DDPM step from timestep {t} adds noise: `noise` is required"
                ))
            })?;
            check_same_shape("DDPM step: noise", sample, noise)?;
            let variance =
                ((1.0 - alpha_prod_t_prev) / (1.0 - alpha_prod_t) * current_beta_t).max(1e-20);
            let std = match config.variance_type {
                VarianceType::FixedSmall => variance.sqrt(),
                VarianceType::FixedSmallLog => (0.5 * variance.ln()).exp(),
                VarianceType::FixedLarge => current_beta_t.sqrt(),
            };
            prev_sample = (prev_sample + scale(noise, std)?)?;
        }
        Ok(StepOutput {
            prev_sample,
            pred_original_sample,
        })
    }

    /// The forward process, see [`NoiseSchedule::add_noise`].
    pub fn add_noise(&self, x0: &Tensor, noise: &Tensor, timesteps: &Tensor) -> Result<Tensor> {
        self.schedule.add_noise(x0, noise, timesteps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn previous_timestep_follows_the_list() {
        let mut s = DdpmScheduler::new(&SchedulerConfig::default()).unwrap();
        assert_eq!(s.timesteps().len(), 100);
        assert_eq!(s.previous_timestep(0).unwrap(), None);
        assert_eq!(s.previous_timestep(57).unwrap(), Some(56));
        s.set_timesteps(10).unwrap();
        assert_eq!(s.previous_timestep(90).unwrap(), Some(80));
        assert_eq!(s.previous_timestep(0).unwrap(), None);
        assert!(s.previous_timestep(57).is_err());
    }

    #[test]
    fn noise_is_required_when_the_step_adds_it() {
        let mut s = DdpmScheduler::new(&SchedulerConfig::default()).unwrap();
        s.set_timesteps(10).unwrap();
        let x = Tensor::zeros((2, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert!(s.step(&x, 90, &x, None).is_err());
        assert!(s.step(&x, 0, &x, None).is_ok());
        let wrong = Tensor::zeros((2, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
        let err = s.step(&wrong, 0, &x, None).unwrap_err().to_string();
        assert!(
            err.contains("model_output") && err.contains("[2, 4]"),
            "{err}"
        );
    }
}
