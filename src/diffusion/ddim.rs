//! DDIM reverse step (Song et al. 2021), as diffusers' `DDIMScheduler` computes it.
//!
//! The step from t goes to `t - N / n` (integer division), whatever the spacing, exactly as
//! diffusers; below 0 it uses ᾱ = 1 (`set_alpha_to_one`) or ᾱ_0. `eta` = 0 is deterministic
//! DDIM, `eta` = 1 has DDPM's variance. `use_clipped_model_output` is off (diffusers' default):
//! with epsilon prediction the direction term uses the unclipped network output.

use candle_core::Tensor;

use super::config::{PredictionType, SchedulerConfig};
use super::schedule::{check_same_shape, clip, divide, scale, NoiseSchedule, StepOutput};
use crate::{Error, Result};

/// DDIM scheduler: a [`NoiseSchedule`] plus the current inference timesteps.
#[derive(Debug, Clone)]
pub struct DdimScheduler {
    schedule: NoiseSchedule,
    /// ᾱ used when the step goes below timestep 0.
    final_alpha_cumprod: f32,
    timesteps: Vec<usize>,
    num_inference_steps: Option<usize>,
}

impl DdimScheduler {
    /// Validates `config`. [`Self::set_timesteps`] must be called before [`Self::step`].
    pub fn new(config: &SchedulerConfig) -> Result<Self> {
        let schedule = NoiseSchedule::new(config)?;
        let final_alpha_cumprod = if config.set_alpha_to_one {
            1.0
        } else {
            schedule.alpha_cumprod(0)?
        };
        let timesteps = (0..schedule.num_train_timesteps()).rev().collect();
        Ok(DdimScheduler {
            schedule,
            final_alpha_cumprod,
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

    /// The timestep a step from `t` lands on, `t - N / n`; `None` when that is below 0.
    pub fn previous_timestep(&self, t: usize) -> Result<Option<usize>> {
        let n = self.num_inference_steps.ok_or_else(|| {
            Error::Invalid("DDIM step: call set_timesteps before step".to_string())
        })?;
        Ok(t.checked_sub(self.schedule.num_train_timesteps() / n))
    }

    /// Whether a step adds noise (`eta > 0`), i.e. needs `noise`.
    pub fn step_adds_noise(&self, eta: f64) -> bool {
        eta > 0.0
    }

    /// One reverse step from `t`.
    ///
    /// - `model_output`: the network output (ε or x0 per `prediction_type`), shape of `sample`.
    /// - `sample`: x_t, (B, ...) f32.
    /// - `eta`: finite, ≥ 0; the weight of the added noise.
    /// - `noise`: standard normal, shape of `sample`; required when `eta > 0`, ignored otherwise.
    pub fn step(
        &self,
        model_output: &Tensor,
        t: usize,
        sample: &Tensor,
        eta: f64,
        noise: Option<&Tensor>,
    ) -> Result<StepOutput> {
        if !(eta >= 0.0 && eta.is_finite()) {
            return Err(Error::config(
                "eta",
                format!("must be finite and >= 0, found {eta}"),
            ));
        }
        check_same_shape("DDIM step: model_output", sample, model_output)?;
        let config = self.schedule.config();
        let prev_t = self.previous_timestep(t)?;
        let alpha_prod_t = self.schedule.alpha_cumprod(t)?;
        let alpha_prod_t_prev = match prev_t {
            Some(p) => self.schedule.alpha_cumprod(p)?,
            None => self.final_alpha_cumprod,
        };
        let beta_prod_t = 1.0 - alpha_prod_t;

        // Formula (12) of the DDIM paper: x0 and ε from the network output.
        let (pred_original_sample, pred_epsilon) = match config.prediction_type {
            PredictionType::Epsilon => {
                let x0 = divide(
                    &(sample - scale(model_output, beta_prod_t.sqrt())?)?,
                    alpha_prod_t.sqrt(),
                )?;
                (x0, model_output.clone())
            }
            PredictionType::Sample => {
                let eps = divide(
                    &(sample - scale(model_output, alpha_prod_t.sqrt())?)?,
                    beta_prod_t.sqrt(),
                )?;
                (model_output.clone(), eps)
            }
        };
        let pred_original_sample = clip(pred_original_sample, config)?;

        // Formula (16): σ_t = eta sqrt((1 - ᾱ_prev) / (1 - ᾱ_t)) sqrt(1 - ᾱ_t / ᾱ_prev).
        let beta_prod_t_prev = 1.0 - alpha_prod_t_prev;
        let variance = (beta_prod_t_prev / beta_prod_t) * (1.0 - alpha_prod_t / alpha_prod_t_prev);
        let std_dev_t = eta as f32 * variance.sqrt();

        let direction_coeff = (1.0 - alpha_prod_t_prev - std_dev_t * std_dev_t).sqrt();
        let direction = scale(&pred_epsilon, direction_coeff)?;
        let mut prev_sample =
            (scale(&pred_original_sample, alpha_prod_t_prev.sqrt())? + direction)?;

        if self.step_adds_noise(eta) {
            let noise = noise.ok_or_else(|| {
                Error::Invalid(format!(
                    "DDIM step with eta = {eta} adds noise: `noise` is required"
                ))
            })?;
            check_same_shape("DDIM step: noise", sample, noise)?;
            prev_sample = (prev_sample + scale(noise, std_dev_t)?)?;
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
    use candle_core::{DType, Device};

    #[test]
    fn step_requires_set_timesteps_and_noise_when_eta_positive() {
        let mut s = DdimScheduler::new(&SchedulerConfig::default()).unwrap();
        let x = Tensor::zeros((2, 3), DType::F32, &Device::Cpu).unwrap();
        assert!(s.step(&x, 90, &x, 0.0, None).is_err());
        s.set_timesteps(10).unwrap();
        assert_eq!(s.previous_timestep(90).unwrap(), Some(80));
        assert_eq!(s.previous_timestep(0).unwrap(), None);
        assert!(s.step(&x, 90, &x, 0.0, None).is_ok());
        assert!(s.step(&x, 90, &x, 0.5, None).is_err());
        assert!(s.step(&x, 90, &x, f64::NAN, None).is_err());
    }
}
