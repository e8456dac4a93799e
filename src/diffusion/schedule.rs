//! Noise schedules (betas, ᾱ = alphas_cumprod), inference timesteps and the forward process.
//!
//! Every number is computed as diffusers 0.42 computes it on the CPU, down to the rounding:
//! - `linear` / `scaled_linear`: `torch.linspace(start, end, N, dtype=float32)`. torch's CPU
//!   kernel evaluates `fma(step, i, start)` for the first half and `fma(-step, N-1-i, end)` for
//!   the second, in f32, with `step = (end - start) / (N - 1)` in f32.
//! - `squaredcos_cap_v2`: `betas_for_alpha_bar` in f64 (`ᾱ(t) = cos²((t + 0.008) / 1.008 · π/2)`,
//!   `β_i = min(1 - ᾱ((i+1)/N) / ᾱ(i/N), 0.999)` with float division `i / N`), then cast to f32.
//!   (candle's stable-diffusion code divides integers here, which gives zero betas.)
//! - `alphas_cumprod = cumprod(1 - β)`: `1 - β` in f32, the running product in f64 (torch's CPU
//!   cumprod accumulates in double), each prefix rounded to f32.
//! - timesteps: numpy's `linspace` / `arange` / `round` (ties to even) in f64.
//!
//! `tests/diffusion_golden.rs` checks all of these against `tools/gen_scheduler_fixtures.py`.

use candle_core::{DType, Tensor};

use super::config::{BetaSchedule, SchedulerConfig, TimestepSpacing};
use crate::{Error, Result};

/// The result of one reverse step.
#[derive(Debug, Clone)]
pub struct StepOutput {
    /// x_{t_prev}, the input of the next step; shape of the sample.
    pub prev_sample: Tensor,
    /// The predicted clean sample x0 (after clipping); shape of the sample.
    pub pred_original_sample: Tensor,
}

/// `torch.linspace(start, end, n, dtype=torch.float32)` on the CPU, bit for bit.
fn torch_linspace_f32(start: f64, end: f64, n: usize) -> Vec<f32> {
    let start = start as f32;
    let end = end as f32;
    if n == 1 {
        return vec![start];
    }
    let step = (end - start) / (n - 1) as f32;
    let halfway = n / 2;
    (0..n)
        .map(|i| {
            if i < halfway {
                step.mul_add(i as f32, start)
            } else {
                (-step).mul_add((n - 1 - i) as f32, end)
            }
        })
        .collect()
}

/// diffusers' `betas_for_alpha_bar(n)` with the cosine transform, as f32.
fn squaredcos_cap_v2(n: usize) -> Vec<f32> {
    const MAX_BETA: f64 = 0.999;
    let alpha_bar = |t: f64| {
        ((t + 0.008) / 1.008 * std::f64::consts::PI / 2.0)
            .cos()
            .powi(2)
    };
    (0..n)
        .map(|i| {
            let t1 = i as f64 / n as f64;
            let t2 = (i + 1) as f64 / n as f64;
            (1.0 - alpha_bar(t2) / alpha_bar(t1)).min(MAX_BETA) as f32
        })
        .collect()
}

/// The training betas, shape (N,), as diffusers computes them (see the module docs).
pub fn betas(
    schedule: BetaSchedule,
    num_train_timesteps: usize,
    beta_start: f64,
    beta_end: f64,
) -> Vec<f32> {
    match schedule {
        BetaSchedule::Linear => torch_linspace_f32(beta_start, beta_end, num_train_timesteps),
        BetaSchedule::ScaledLinear => {
            torch_linspace_f32(beta_start.sqrt(), beta_end.sqrt(), num_train_timesteps)
                .into_iter()
                .map(|b| b * b)
                .collect()
        }
        BetaSchedule::SquaredcosCapV2 => squaredcos_cap_v2(num_train_timesteps),
    }
}

/// ᾱ_t = Π_{s ≤ t} (1 - β_s), as torch's CPU `cumprod` on f32 (double accumulator).
pub fn alphas_cumprod(betas: &[f32]) -> Vec<f32> {
    let mut acc = 1.0f64;
    betas
        .iter()
        .map(|&b| {
            acc *= f64::from(1.0f32 - b);
            acc as f32
        })
        .collect()
}

/// The descending timesteps of `set_timesteps(num_inference_steps)` for N training steps.
///
/// One deliberate difference: for `trailing`, numpy's float `arange` sometimes yields one
/// element too many (e.g. N = 100, n = 29), and diffusers then ends with the invalid timestep
/// -1. Only the first `num_inference_steps` are kept here.
///
/// Errors when `num_inference_steps` is 0 or above N, or when a `leading` timestep plus
/// `steps_offset` reaches N (diffusers would fail later, indexing ᾱ out of range).
pub fn inference_timesteps(
    num_train_timesteps: usize,
    num_inference_steps: usize,
    spacing: TimestepSpacing,
    steps_offset: usize,
) -> Result<Vec<usize>> {
    let big_n = num_train_timesteps;
    let n = num_inference_steps;
    if n == 0 || n > big_n {
        return Err(Error::config(
            "inference_steps",
            format!("must be in [1, num_train_timesteps = {big_n}], found {n}"),
        ));
    }
    let timesteps: Vec<usize> = match spacing {
        TimestepSpacing::Leading => {
            let ratio = big_n / n;
            (0..n).rev().map(|k| k * ratio + steps_offset).collect()
        }
        TimestepSpacing::Linspace => {
            if n == 1 {
                vec![0]
            } else {
                // numpy: y = arange(n) * step + start, then y[-1] = stop.
                let stop = (big_n - 1) as f64;
                let step = stop / (n - 1) as f64;
                (0..n)
                    .rev()
                    .map(|i| {
                        let y = if i == n - 1 {
                            stop
                        } else {
                            i as f64 * step + 0.0
                        };
                        y.round_ties_even() as usize
                    })
                    .collect()
            }
        }
        TimestepSpacing::Trailing => {
            // numpy's arange(N, 0, -r): buffer[0] = N, buffer[1] = N - r, then
            // buffer[i] = N + i * (buffer[1] - N); round (ties to even), minus 1.
            let start = big_n as f64;
            let ratio = big_n as f64 / n as f64;
            let second = start - ratio;
            let delta = second - start;
            (0..n)
                .map(|i| {
                    let y = match i {
                        0 => start,
                        1 => second,
                        _ => start + i as f64 * delta,
                    };
                    // y > 0.5 for i < n (it is about (n - i) r >= r >= 1), so this is >= 0.
                    (y.round_ties_even() as usize).saturating_sub(1)
                })
                .collect()
        }
    };
    if let Some(&first) = timesteps.first() {
        if first >= big_n {
            return Err(Error::config(
                "steps_offset",
                format!(
                    "timestep {first} (leading spacing, steps_offset {steps_offset}, {n} steps) \
                     is not below num_train_timesteps = {big_n}"
                ),
            ));
        }
    }
    Ok(timesteps)
}

/// A validated config with its betas and ᾱ. Shared by [`super::DdpmScheduler`],
/// [`super::DdimScheduler`] and training code.
#[derive(Debug, Clone, PartialEq)]
pub struct NoiseSchedule {
    config: SchedulerConfig,
    betas: Vec<f32>,
    alphas_cumprod: Vec<f32>,
}

impl NoiseSchedule {
    /// Validates `config` and computes the schedule.
    pub fn new(config: &SchedulerConfig) -> Result<Self> {
        config.validate()?;
        let betas = betas(
            config.beta_schedule,
            config.num_train_timesteps,
            config.beta_start,
            config.beta_end,
        );
        let alphas_cumprod = alphas_cumprod(&betas);
        if let Some(t) = alphas_cumprod.iter().position(|&a| a.is_nan() || a <= 0.0) {
            return Err(Error::config(
                "beta_end",
                format!(
                    "the {} schedule drives alphas_cumprod to 0 at timestep {t} of {}; \
                     lower beta_end or num_train_timesteps",
                    config.beta_schedule, config.num_train_timesteps
                ),
            ));
        }
        Ok(NoiseSchedule {
            config: config.clone(),
            betas,
            alphas_cumprod,
        })
    }

    /// The validated configuration.
    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    /// N, the number of training timesteps.
    pub fn num_train_timesteps(&self) -> usize {
        self.config.num_train_timesteps
    }

    /// β_t for t in 0..N, f32.
    pub fn betas(&self) -> &[f32] {
        &self.betas
    }

    /// ᾱ_t for t in 0..N, f32, strictly decreasing, in (0, 1).
    pub fn alphas_cumprod(&self) -> &[f32] {
        &self.alphas_cumprod
    }

    /// ᾱ_t, or an error naming t when t ≥ N.
    pub fn alpha_cumprod(&self, t: usize) -> Result<f32> {
        self.alphas_cumprod.get(t).copied().ok_or_else(|| {
            Error::Invalid(format!(
                "timestep {t} is out of range: num_train_timesteps is {}",
                self.alphas_cumprod.len()
            ))
        })
    }

    /// The inference timesteps for `num_inference_steps` with this config's spacing and offset.
    pub fn inference_timesteps(&self, num_inference_steps: usize) -> Result<Vec<usize>> {
        inference_timesteps(
            self.config.num_train_timesteps,
            num_inference_steps,
            self.config.timestep_spacing,
            self.config.steps_offset,
        )
    }

    /// The forward process `x_t = sqrt(ᾱ_t) x0 + sqrt(1 - ᾱ_t) noise` (diffusers' `add_noise`).
    ///
    /// - `x0`, `noise`: (B, ...) f32, same shape and device.
    /// - `timesteps`: (B,) integer tensor (u8, u32 or i64), each < N.
    ///
    /// Returns x_t with the shape of `x0`. Reads `timesteps` back to the CPU.
    pub fn add_noise(&self, x0: &Tensor, noise: &Tensor, timesteps: &Tensor) -> Result<Tensor> {
        if x0.dims() != noise.dims() {
            return Err(Error::Shape {
                what: "add_noise: noise".into(),
                expected: x0.dims().to_vec(),
                found: noise.dims().to_vec(),
            });
        }
        let Some(&b) = x0.dims().first() else {
            return Err(Error::Invalid(
                "add_noise: x0 must be (B, ...), found a scalar".to_string(),
            ));
        };
        if timesteps.dims() != [b] {
            return Err(Error::Shape {
                what: "add_noise: timesteps".into(),
                expected: vec![b],
                found: timesteps.dims().to_vec(),
            });
        }
        let ts = timesteps_to_vec(timesteps)?;
        let mut sqrt_alpha = Vec::with_capacity(b);
        let mut sqrt_one_minus_alpha = Vec::with_capacity(b);
        for t in ts {
            let a = self.alpha_cumprod(t)?;
            sqrt_alpha.push(a.sqrt());
            sqrt_one_minus_alpha.push((1.0 - a).sqrt());
        }
        // (B, 1, ..., 1) so the coefficients broadcast over the sample dimensions.
        let mut coef_shape = vec![1usize; x0.rank()];
        coef_shape[0] = b;
        let device = x0.device();
        let sa = Tensor::from_vec(sqrt_alpha, coef_shape.as_slice(), device)?;
        let s1a = Tensor::from_vec(sqrt_one_minus_alpha, coef_shape.as_slice(), device)?;
        Ok((x0.broadcast_mul(&sa)? + noise.broadcast_mul(&s1a)?)?)
    }
}

/// A (B,) integer tensor as `usize` values on the CPU.
fn timesteps_to_vec(timesteps: &Tensor) -> Result<Vec<usize>> {
    match timesteps.dtype() {
        DType::U32 => Ok(timesteps
            .to_vec1::<u32>()?
            .into_iter()
            .map(|t| t as usize)
            .collect()),
        DType::U8 => Ok(timesteps
            .to_vec1::<u8>()?
            .into_iter()
            .map(usize::from)
            .collect()),
        DType::I64 => timesteps
            .to_vec1::<i64>()?
            .into_iter()
            .map(|t| {
                usize::try_from(t)
                    .map_err(|_| Error::Invalid(format!("add_noise: negative timestep {t}")))
            })
            .collect(),
        other => Err(Error::Invalid(format!(
            "add_noise: timesteps must be u8, u32 or i64, found {other:?}"
        ))),
    }
}

/// `x * c` in f32 (exact f32 product: candle's affine multiplies in the tensor's dtype).
pub(crate) fn scale(x: &Tensor, c: f32) -> candle_core::Result<Tensor> {
    x.affine(f64::from(c), 0.0)
}

/// `x / c` as a true f32 division, as torch divides by a 0-dim tensor.
pub(crate) fn divide(x: &Tensor, c: f32) -> candle_core::Result<Tensor> {
    x.broadcast_div(&Tensor::new(c, x.device())?)
}

/// Checks that `t` has the sample's shape (used for model outputs and noise).
pub(crate) fn check_same_shape(what: &str, expected: &Tensor, found: &Tensor) -> Result<()> {
    if expected.dims() != found.dims() {
        return Err(Error::Shape {
            what: what.to_string(),
            expected: expected.dims().to_vec(),
            found: found.dims().to_vec(),
        });
    }
    Ok(())
}

/// Clamps x0 to ±`range` (f32) when clipping is on.
pub(crate) fn clip(x0: Tensor, config: &SchedulerConfig) -> candle_core::Result<Tensor> {
    if config.clip_sample {
        let r = config.clip_sample_range as f32;
        x0.clamp(-r, r)
    } else {
        Ok(x0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use proptest::prelude::*;

    #[test]
    fn squaredcos_is_not_integer_divided() {
        let b = betas(BetaSchedule::SquaredcosCapV2, 100, 1e-4, 0.02);
        assert!(b[0] > 1e-5 && b[0] < 1e-3, "{}", b[0]);
        assert!(b.iter().all(|&x| x > 0.0));
        assert_eq!(b[99], 0.999);
    }

    #[test]
    fn leading_timesteps_by_hand() {
        let ts = inference_timesteps(100, 10, TimestepSpacing::Leading, 1).unwrap();
        assert_eq!(ts, vec![91, 81, 71, 61, 51, 41, 31, 21, 11, 1]);
        let ts = inference_timesteps(100, 3, TimestepSpacing::Trailing, 0).unwrap();
        assert_eq!(ts, vec![99, 66, 32]);
        let ts = inference_timesteps(100, 7, TimestepSpacing::Linspace, 0).unwrap();
        assert_eq!(ts, vec![99, 82, 66, 50, 33, 16, 0]);
        assert!(inference_timesteps(100, 0, TimestepSpacing::Leading, 0).is_err());
        assert!(inference_timesteps(100, 101, TimestepSpacing::Leading, 0).is_err());
        assert!(inference_timesteps(100, 100, TimestepSpacing::Leading, 1).is_err());
    }

    #[test]
    fn add_noise_by_hand() {
        let s = NoiseSchedule::new(&SchedulerConfig::default()).unwrap();
        let x0 = Tensor::new(&[[1.0f32, -1.0], [0.5, 0.0]], &Device::Cpu).unwrap();
        let noise = Tensor::new(&[[0.0f32, 2.0], [1.0, 1.0]], &Device::Cpu).unwrap();
        let t = Tensor::new(&[0u32, 50], &Device::Cpu).unwrap();
        let y = s
            .add_noise(&x0, &noise, &t)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let a0 = s.alphas_cumprod()[0];
        let a50 = s.alphas_cumprod()[50];
        assert_eq!(y[0][0], a0.sqrt());
        assert_eq!(y[0][1], -a0.sqrt() + 2.0 * (1.0 - a0).sqrt());
        assert_eq!(y[1][1], (1.0 - a50).sqrt());
        let bad = Tensor::new(&[0u32, 100], &Device::Cpu).unwrap();
        let err = s.add_noise(&x0, &noise, &bad).unwrap_err().to_string();
        assert!(err.contains("100"), "{err}");
        let scalar = Tensor::new(1.0f32, &Device::Cpu).unwrap();
        assert!(s.add_noise(&scalar, &scalar, &t).is_err());
        let err = s
            .add_noise(&x0, &noise, &t.narrow(0, 0, 1).unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("timesteps") && err.contains("[1]"), "{err}");
    }

    proptest! {
        #[test]
        fn alphas_cumprod_monotone_in_unit_interval(
            schedule in prop::sample::select(BetaSchedule::ALL.to_vec()),
            n in 2usize..2000,
            start in 1e-6f64..0.01,
            span in 0.0f64..0.05,
        ) {
            let b = betas(schedule, n, start, start + span);
            let a = alphas_cumprod(&b);
            prop_assert_eq!(a.len(), n);
            prop_assert!(a[0] > 0.0 && a[0] <= 1.0);
            for w in a.windows(2) {
                prop_assert!(w[1] > 0.0 && w[1] <= w[0], "{} then {}", w[0], w[1]);
            }
        }
    }
}
