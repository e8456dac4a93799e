//! The sampling loop with small analytic denoisers: determinism, guidance, x0 history, shapes.

// Test helpers outside #[test] functions unwrap too (clippy.toml allows it only inside).
#![allow(clippy::unwrap_used)]

use std::cell::RefCell;

use candle_core::{DType, Device, Tensor};
use diffusion_planner::diffusion::{
    sample, Denoise, NoiseSchedule, SampleRequest, SamplerKind, SamplerSettings, SchedulerConfig,
};

/// Predicts the exact ε for a known x0: ε = (x_t - sqrt(ᾱ_t) x0) / sqrt(1 - ᾱ_t).
struct ExactEpsilon {
    x0: Tensor,
    alphas_cumprod: Vec<f32>,
}

impl Denoise for ExactEpsilon {
    fn denoise(
        &self,
        x_t: &Tensor,
        timesteps: &Tensor,
        _global_cond: Option<&Tensor>,
        _labels: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let ts = timesteps.to_vec1::<u32>()?;
        let mut coef_shape = vec![1usize; x_t.rank()];
        coef_shape[0] = ts.len();
        let a: Vec<f32> = ts
            .iter()
            .map(|&t| self.alphas_cumprod[t as usize])
            .collect();
        let sa = Tensor::from_vec(
            a.iter().map(|a| a.sqrt()).collect::<Vec<_>>(),
            coef_shape.as_slice(),
            x_t.device(),
        )?;
        let s1a = Tensor::from_vec(
            a.iter().map(|a| (1.0 - a).sqrt()).collect::<Vec<_>>(),
            coef_shape.as_slice(),
            x_t.device(),
        )?;
        (x_t - self.x0.broadcast_mul(&sa)?)?.broadcast_div(&s1a)
    }

    fn null_label(&self) -> Option<u32> {
        None
    }
}

/// ε = 0.3 x_t + 0.01 t + sum(cond) + 0.2 label, per row; records the labels it saw.
struct Analytic {
    null: Option<u32>,
    seen_labels: RefCell<Vec<Vec<u32>>>,
}

impl Analytic {
    fn new(null: Option<u32>) -> Self {
        Analytic {
            null,
            seen_labels: RefCell::new(Vec::new()),
        }
    }
}

/// A (B,) per-row value as (B, 1, ..., 1) for broadcasting over `like`.
fn per_row(values: Tensor, like: &Tensor) -> candle_core::Result<Tensor> {
    let mut shape = vec![1usize; like.rank()];
    shape[0] = like.dims()[0];
    values.reshape(shape)
}

impl Denoise for Analytic {
    fn denoise(
        &self,
        x_t: &Tensor,
        timesteps: &Tensor,
        global_cond: Option<&Tensor>,
        labels: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let mut offset = timesteps.to_dtype(DType::F32)?.affine(0.01, 0.0)?;
        if let Some(c) = global_cond {
            offset = (offset + c.sum(1)?)?;
        }
        if let Some(l) = labels {
            self.seen_labels.borrow_mut().push(l.to_vec1::<u32>()?);
            offset = (offset + l.to_dtype(DType::F32)?.affine(0.2, 0.0)?)?;
        }
        x_t.affine(0.3, 0.0)?.broadcast_add(&per_row(offset, x_t)?)
    }

    fn null_label(&self) -> Option<u32> {
        self.null
    }
}

/// Forwards to `inner` with a fixed label (or the guided mix of label and null), so a request
/// without a label on this model is the reference for a labelled request on `inner`.
struct FixedLabel<'a> {
    inner: &'a Analytic,
    label: u32,
    /// `Some(s)`: apply guidance by hand with scale s.
    guided: Option<f32>,
}

impl Denoise for FixedLabel<'_> {
    fn denoise(
        &self,
        x_t: &Tensor,
        t: &Tensor,
        cond: Option<&Tensor>,
        _: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let b = x_t.dims()[0];
        let with = Tensor::full(self.label, b, x_t.device())?;
        let out = self.inner.denoise(x_t, t, cond, Some(&with))?;
        match self.guided {
            None => Ok(out),
            Some(s) => {
                let null = Tensor::full(self.inner.null.unwrap(), b, x_t.device())?;
                let out_null = self.inner.denoise(x_t, t, cond, Some(&null))?;
                // diffusers: uncond + s (cond - uncond)
                (out - &out_null)?.affine(f64::from(s), 0.0)? + out_null
            }
        }
    }

    fn null_label(&self) -> Option<u32> {
        None
    }
}

fn request(shape: &[usize], seed: u64) -> SampleRequest {
    SampleRequest {
        shape: shape.to_vec(),
        global_cond: None,
        label: None,
        seed,
        device: Device::Cpu,
    }
}

fn settings(kind: SamplerKind, steps: usize) -> SamplerSettings {
    SamplerSettings {
        kind,
        inference_steps: steps,
        eta: 0.5,
        guidance_scale: 1.0,
        record_last_k: 3,
    }
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .into_iter()
        .map(f32::to_bits)
        .collect()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

#[test]
fn exact_epsilon_recovers_x0_for_trajectories_and_points() {
    let config = SchedulerConfig::default();
    let schedule = NoiseSchedule::new(&config).unwrap();
    for shape in [vec![3usize, 8, 2], vec![5, 2], vec![4, 1]] {
        let n: usize = shape.iter().product();
        let x0: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.37).sin() * 0.9).collect();
        let x0 = Tensor::from_vec(x0, shape.as_slice(), &Device::Cpu).unwrap();
        let model = ExactEpsilon {
            x0: x0.clone(),
            alphas_cumprod: schedule.alphas_cumprod().to_vec(),
        };
        for (kind, steps, eta) in [
            (SamplerKind::Ddim, 10, 0.0),
            (SamplerKind::Ddim, 10, 1.0),
            (SamplerKind::Ddpm, 100, 0.0),
        ] {
            let s = SamplerSettings {
                kind,
                inference_steps: steps,
                eta,
                guidance_scale: 1.0,
                record_last_k: 4,
            };
            let out = sample(&model, &config, &s, &request(&shape, 11)).unwrap();
            assert_eq!(out.sample.dims(), shape.as_slice());
            let err = max_abs_diff(&out.sample, &x0);
            assert!(
                err < 1e-4,
                "{kind} eta {eta} shape {shape:?}: |x - x0| = {err}"
            );
            for x0_pred in &out.x0_history {
                assert!(max_abs_diff(x0_pred, &x0) < 1e-4);
            }
            let var = out.x0_variance().unwrap();
            assert_eq!(var.len(), shape[0]);
            assert!(var.iter().all(|&v| (0.0..1e-7).contains(&v)), "{var:?}");
        }
    }
}

#[test]
fn same_seed_same_bytes_different_seed_different() {
    let config = SchedulerConfig::default();
    let model = Analytic::new(None);
    for kind in [SamplerKind::Ddpm, SamplerKind::Ddim] {
        let s = settings(kind, 10);
        let a = sample(&model, &config, &s, &request(&[4, 16, 3], 42)).unwrap();
        let b = sample(&model, &config, &s, &request(&[4, 16, 3], 42)).unwrap();
        let c = sample(&model, &config, &s, &request(&[4, 16, 3], 43)).unwrap();
        assert_eq!(bits(&a.sample), bits(&b.sample), "{kind}");
        for (x, y) in a.x0_history.iter().zip(&b.x0_history) {
            assert_eq!(bits(x), bits(y));
        }
        assert_ne!(bits(&a.sample), bits(&c.sample), "{kind}");
        // The batch's samples differ from each other (independent noise per row).
        let rows = a.sample.flatten_from(1).unwrap();
        assert!(max_abs_diff(&rows.get(0).unwrap(), &rows.get(1).unwrap()) > 1e-3);
    }
}

#[test]
fn guidance_scale_one_equals_the_conditional_output() {
    let config = SchedulerConfig::default();
    let model = Analytic::new(Some(3));
    let reference = FixedLabel {
        inner: &model,
        label: 1,
        guided: None,
    };
    let s = settings(SamplerKind::Ddim, 8);
    let labelled = SampleRequest {
        label: Some(1),
        ..request(&[2, 4, 2], 5)
    };
    let guided = sample(&model, &config, &s, &labelled).unwrap();
    let plain = sample(&reference, &config, &s, &request(&[2, 4, 2], 5)).unwrap();
    assert!(max_abs_diff(&guided.sample, &plain.sample) <= 1e-6);
    // The model saw label 1 on every row, B rows per call (no null half at s = 1).
    assert!(model.seen_labels.borrow().iter().all(|l| l == &vec![1, 1]));
}

#[test]
fn guidance_runs_label_and_null_halves_in_one_batch() {
    let config = SchedulerConfig::default();
    let model = Analytic::new(Some(3));
    let scale = 2.5;
    let s = SamplerSettings {
        guidance_scale: scale,
        ..settings(SamplerKind::Ddpm, 10)
    };
    let req = SampleRequest {
        label: Some(1),
        ..request(&[2, 5], 9)
    };
    let guided = sample(&model, &config, &s, &req).unwrap();
    for labels in model.seen_labels.borrow().iter() {
        assert_eq!(labels, &vec![1, 1, 3, 3]);
    }
    let reference = FixedLabel {
        inner: &model,
        label: 1,
        guided: Some(scale as f32),
    };
    let by_hand = sample(&reference, &config, &s, &request(&[2, 5], 9)).unwrap();
    assert!(max_abs_diff(&guided.sample, &by_hand.sample) <= 1e-5);
    // And guidance changes the result compared with the plain conditional.
    let plain = sample(
        &model,
        &config,
        &SamplerSettings {
            guidance_scale: 1.0,
            ..s.clone()
        },
        &req,
    )
    .unwrap();
    assert!(max_abs_diff(&guided.sample, &plain.sample) > 1e-3);
}

#[test]
fn labels_without_null_label_is_an_error_and_no_label_uses_null() {
    let config = SchedulerConfig::default();
    let s = settings(SamplerKind::Ddim, 4);
    let unlabelled_model = Analytic::new(None);
    let req = SampleRequest {
        label: Some(0),
        ..request(&[2, 3], 1)
    };
    let err = sample(&unlabelled_model, &config, &s, &req)
        .unwrap_err()
        .to_string();
    assert!(err.contains("null label"), "{err}");
    assert!(unlabelled_model.seen_labels.borrow().is_empty());

    let model = Analytic::new(Some(7));
    sample(&model, &config, &s, &request(&[2, 3], 1)).unwrap();
    assert!(model.seen_labels.borrow().iter().all(|l| l == &vec![7, 7]));
}

#[test]
fn x0_history_has_k_entries() {
    let config = SchedulerConfig::default();
    let model = Analytic::new(None);
    for k in [0usize, 1, 3, 6] {
        let s = SamplerSettings {
            record_last_k: k,
            ..settings(SamplerKind::Ddim, 6)
        };
        let out = sample(&model, &config, &s, &request(&[3, 4, 2], 2)).unwrap();
        assert_eq!(out.x0_history.len(), k);
        assert!(out.x0_history.iter().all(|x| x.dims() == [3, 4, 2]));
        let var = out.x0_variance().unwrap();
        assert_eq!(var.len(), 3);
        if k < 2 {
            assert!(var.iter().all(|&v| v == 0.0));
        } else {
            assert!(var.iter().all(|&v| v > 0.0 && v.is_finite()), "{var:?}");
        }
    }
    let s = SamplerSettings {
        record_last_k: 7,
        ..settings(SamplerKind::Ddim, 6)
    };
    let err = sample(&model, &config, &s, &request(&[3, 4, 2], 2))
        .unwrap_err()
        .to_string();
    assert!(err.contains("record_last_k"), "{err}");
}

#[test]
fn x0_variance_by_hand() {
    // Two recorded steps, one sample of two elements: values (0, 2) and (1, 1).
    let dev = Device::Cpu;
    let out = diffusion_planner::diffusion::SampleOutput {
        sample: Tensor::zeros((1, 2), DType::F32, &dev).unwrap(),
        x0_history: vec![
            Tensor::new(&[[0.0f32, 1.0]], &dev).unwrap(),
            Tensor::new(&[[2.0f32, 1.0]], &dev).unwrap(),
        ],
    };
    // Element 0: mean 1, variance 1; element 1: variance 0; average 0.5.
    assert_eq!(out.x0_variance().unwrap(), vec![0.5]);
}

#[test]
fn global_cond_broadcasts_from_one_row() {
    let config = SchedulerConfig::default();
    let model = Analytic::new(None);
    let s = settings(SamplerKind::Ddpm, 5);
    let one = Tensor::new(&[[0.5f32, -0.25, 1.0]], &Device::Cpu).unwrap();
    let three = one.broadcast_as((3, 3)).unwrap().contiguous().unwrap();
    let a = sample(
        &model,
        &config,
        &s,
        &SampleRequest {
            global_cond: Some(one.clone()),
            ..request(&[3, 4], 8)
        },
    )
    .unwrap();
    let b = sample(
        &model,
        &config,
        &s,
        &SampleRequest {
            global_cond: Some(three),
            ..request(&[3, 4], 8)
        },
    )
    .unwrap();
    let none = sample(&model, &config, &s, &request(&[3, 4], 8)).unwrap();
    assert_eq!(bits(&a.sample), bits(&b.sample));
    assert_ne!(bits(&a.sample), bits(&none.sample));
    let wrong = Tensor::zeros((2, 3), DType::F32, &Device::Cpu).unwrap();
    let err = sample(
        &model,
        &config,
        &s,
        &SampleRequest {
            global_cond: Some(wrong),
            ..request(&[3, 4], 8)
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("global_cond") && err.contains("[2, 3]"),
        "{err}"
    );
}

#[test]
fn bad_requests_are_errors() {
    struct WrongShape;
    impl Denoise for WrongShape {
        fn denoise(
            &self,
            x: &Tensor,
            _: &Tensor,
            _: Option<&Tensor>,
            _: Option<&Tensor>,
        ) -> candle_core::Result<Tensor> {
            x.narrow(1, 0, 1)
        }
        fn null_label(&self) -> Option<u32> {
            None
        }
    }
    let config = SchedulerConfig::default();
    let s = settings(SamplerKind::Ddim, 4);
    let err = sample(&WrongShape, &config, &s, &request(&[2, 3], 0))
        .unwrap_err()
        .to_string();
    assert!(err.contains("denoiser output"), "{err}");
    let model = Analytic::new(None);
    assert!(sample(&model, &config, &s, &request(&[], 0)).is_err());
    assert!(sample(&model, &config, &s, &request(&[2, 0], 0)).is_err());
    let too_many = SamplerSettings {
        inference_steps: 101,
        ..s
    };
    let err = sample(&model, &config, &too_many, &request(&[2, 3], 0))
        .unwrap_err()
        .to_string();
    assert!(err.contains("inference_steps"), "{err}");
}
