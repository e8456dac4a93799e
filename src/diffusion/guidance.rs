//! Classifier-free guidance (Ho & Salimans 2022), diffusers' convention:
//! `out = out_null + s (out_label - out_null)`; s = 1 is the plain conditional output, s = 0
//! the unconditional one, s > 1 pushes away from the null label.
//!
//! The conditional and the null halves run as one batch of 2B: rows 0..B carry the requested
//! label, rows B..2B the model's null label.

use candle_core::{Device, Tensor};

use crate::{Error, Result};

/// `out_null + scale (out_label - out_null)` for two tensors of the same shape.
pub fn guided_output(
    out_label: &Tensor,
    out_null: &Tensor,
    scale: f64,
) -> candle_core::Result<Tensor> {
    (out_label - out_null)?.affine(scale, 0.0)? + out_null
}

/// Which labels the network sees during sampling, resolved once per request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LabelConditioning {
    /// The model takes no labels.
    NoLabels,
    /// Every row gets this label (the null label for "no label", or a label at scale 1).
    Single(u32),
    /// Guidance: rows 0..B get `label`, rows B..2B `null_label`, combined with `scale`.
    Guided {
        label: u32,
        null_label: u32,
        scale: f64,
    },
}

impl LabelConditioning {
    /// Resolves a request against a model.
    ///
    /// - `requested = None`: the null label if the model has one, else no labels.
    /// - `requested = Some(l)`: an error if the model has no null label (it cannot take
    ///   labels); `Single(l)` when `guidance_scale` is exactly 1 (the guided formula reduces to
    ///   the conditional output, so the null half is skipped); `Guided` otherwise.
    pub fn resolve(
        requested: Option<u32>,
        null_label: Option<u32>,
        guidance_scale: f64,
    ) -> Result<Self> {
        if !guidance_scale.is_finite() {
            return Err(Error::config(
                "guidance_scale",
                format!("must be finite, found {guidance_scale}"),
            ));
        }
        match (requested, null_label) {
            (None, None) => Ok(LabelConditioning::NoLabels),
            (None, Some(null)) => Ok(LabelConditioning::Single(null)),
            (Some(label), None) => Err(Error::Invalid(format!(
                "label {label} requested, but the model has no null label (it was trained \
                 without mode labels), so it cannot be conditioned on a label"
            ))),
            (Some(label), Some(_)) if guidance_scale == 1.0 => Ok(LabelConditioning::Single(label)),
            (Some(label), Some(null_label)) => Ok(LabelConditioning::Guided {
                label,
                null_label,
                scale: guidance_scale,
            }),
        }
    }

    /// How many network rows one sample needs: 2 when guided, else 1.
    pub fn batch_factor(&self) -> usize {
        match self {
            LabelConditioning::Guided { .. } => 2,
            _ => 1,
        }
    }

    /// The label tensor for `b` samples: `None`, (B,) or (2B,) u32 on `device`.
    pub fn labels(&self, b: usize, device: &Device) -> candle_core::Result<Option<Tensor>> {
        let values = match *self {
            LabelConditioning::NoLabels => return Ok(None),
            LabelConditioning::Single(l) => vec![l; b],
            LabelConditioning::Guided {
                label, null_label, ..
            } => {
                let mut v = vec![label; b];
                v.extend(std::iter::repeat_n(null_label, b));
                v
            }
        };
        let len = values.len();
        Tensor::from_vec(values, len, device).map(Some)
    }

    /// Repeats a network input (B, ...) to the batch the network sees: itself, or (2B, ...).
    pub fn expand_input(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            LabelConditioning::Guided { .. } => Tensor::cat(&[x, x], 0),
            _ => Ok(x.clone()),
        }
    }

    /// Turns the network output (B·factor, ...) into the output for the B samples.
    pub fn combine(&self, output: &Tensor, b: usize) -> candle_core::Result<Tensor> {
        match *self {
            LabelConditioning::Guided { scale, .. } => {
                let with_label = output.narrow(0, 0, b)?;
                let with_null = output.narrow(0, b, b)?;
                guided_output(&with_label, &with_null, scale)
            }
            _ => Ok(output.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_one_is_conditional_and_zero_is_unconditional() {
        let dev = Device::Cpu;
        let c = Tensor::new(&[0.3f32, -1.7, 2.5], &dev).unwrap();
        let u = Tensor::new(&[-0.9f32, 0.4, 1.1], &dev).unwrap();
        let one = guided_output(&c, &u, 1.0)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let zero = guided_output(&c, &u, 0.0)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let two = guided_output(&c, &u, 2.0)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for i in 0..3 {
            let (cv, uv) = (
                c.to_vec1::<f32>().unwrap()[i],
                u.to_vec1::<f32>().unwrap()[i],
            );
            assert!((one[i] - cv).abs() < 1e-6);
            assert_eq!(zero[i], uv);
            assert!((two[i] - (2.0 * cv - uv)).abs() < 1e-6);
        }
    }

    #[test]
    fn resolve_rules() {
        use LabelConditioning::*;
        assert_eq!(
            LabelConditioning::resolve(None, None, 3.0).unwrap(),
            NoLabels
        );
        assert_eq!(
            LabelConditioning::resolve(None, Some(4), 3.0).unwrap(),
            Single(4)
        );
        assert_eq!(
            LabelConditioning::resolve(Some(1), Some(4), 1.0).unwrap(),
            Single(1)
        );
        assert_eq!(
            LabelConditioning::resolve(Some(1), Some(4), 2.0).unwrap(),
            Guided {
                label: 1,
                null_label: 4,
                scale: 2.0
            }
        );
        let err = LabelConditioning::resolve(Some(1), None, 2.0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("null label"), "{err}");
        assert!(LabelConditioning::resolve(None, None, f64::NAN).is_err());
        let labels = Guided {
            label: 1,
            null_label: 4,
            scale: 2.0,
        }
        .labels(2, &Device::Cpu)
        .unwrap()
        .unwrap()
        .to_vec1::<u32>()
        .unwrap();
        assert_eq!(labels, vec![1, 1, 4, 4]);
    }
}
