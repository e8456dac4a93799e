//! The U-Net's elementary operations, in one place so that faster kernels (fused Mish, im2col
//! convolutions, the upsample as a polyphase conv1d; see `reference/cpu-performance.md`) can
//! replace them without touching the network code.
//!
//! Everything here is plain candle tensor ops: it runs on any device (CPU, CUDA) and has
//! gradients, so training uses the same code.

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::VarBuilder;

/// PyTorch's `nn.GroupNorm` default epsilon.
const GROUP_NORM_EPS: f64 = 1e-5;

/// Mish, `x * tanh(softplus(x))` (PyTorch's `nn.Mish`), elementwise on any shape.
///
/// softplus is written as `relu(x) + ln(1 + exp(-|x|))`: no overflow for large `x` and finite
/// gradients everywhere (the textbook `ln(1 + exp(x))` gives NaN gradients above `x` ~ 88).
pub(crate) fn mish(x: &Tensor) -> Result<Tensor> {
    let softplus = (x.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
    x * softplus.tanh()?
}

/// `nn.Conv1d` with bias. Weight `(out, in, k)` and bias `(out,)` under `weight` / `bias`.
#[derive(Debug, Clone)]
pub(crate) struct Conv1d {
    weight: Tensor,
    bias: Tensor,
    padding: usize,
    stride: usize,
}

impl Conv1d {
    /// Loads `weight (out_channels, in_channels, kernel_size)` and `bias (out_channels,)`.
    pub(crate) fn new(
        in_channels: usize,
        out_channels: usize,
        kernel_size: usize,
        stride: usize,
        padding: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let conv = candle_nn::conv1d(
            in_channels,
            out_channels,
            kernel_size,
            candle_nn::Conv1dConfig {
                padding,
                stride,
                ..Default::default()
            },
            vb,
        )?;
        let bias = match conv.bias() {
            Some(b) => b.reshape((1, out_channels, 1))?,
            None => candle_core::bail!("conv1d without bias"),
        };
        Ok(Self {
            weight: conv.weight().clone(),
            bias,
            padding,
            stride,
        })
    }
}

impl Module for Conv1d {
    /// x: (B, in, L) -> (B, out, (L + 2 padding - k) / stride + 1)
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.conv1d(&self.weight, self.padding, self.stride, 1, 1)?
            .broadcast_add(&self.bias)
    }
}

/// `nn.ConvTranspose1d(c, c, 4, stride 2, padding 1)`, the U-Net's upsample: `(B, C, L) ->
/// (B, C, 2L)`. Weight `(in, out, k)` (PyTorch's layout for transposed convolutions).
///
/// candle-core 0.11.1's `conv_transpose1d` is wrong for batch > 1 with padding 0 (see
/// `reference/cpu-performance.md`); padding 1 takes another path and is tested at B = 3 against
/// PyTorch in `tests/unet_golden.rs`.
#[derive(Debug, Clone)]
pub(crate) struct Upsample1d {
    weight: Tensor,
    bias: Tensor,
}

impl Upsample1d {
    const KERNEL: usize = 4;
    const STRIDE: usize = 2;
    const PADDING: usize = 1;

    /// Loads `weight (channels, channels, 4)` and `bias (channels,)`.
    pub(crate) fn new(channels: usize, vb: VarBuilder) -> Result<Self> {
        let conv = candle_nn::conv_transpose1d(
            channels,
            channels,
            Self::KERNEL,
            candle_nn::ConvTranspose1dConfig {
                padding: Self::PADDING,
                stride: Self::STRIDE,
                ..Default::default()
            },
            vb,
        )?;
        let bias = match conv.bias() {
            Some(b) => b.reshape((1, channels, 1))?,
            None => candle_core::bail!("conv_transpose1d without bias"),
        };
        Ok(Self {
            weight: conv.weight().clone(),
            bias,
        })
    }
}

impl Module for Upsample1d {
    /// x: (B, C, L) -> (B, C, 2L)
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.conv_transpose1d(&self.weight, Self::PADDING, 0, Self::STRIDE, 1, 1)?
            .broadcast_add(&self.bias)
    }
}

/// `nn.GroupNorm(n_groups, channels)` (eps 1e-5, affine), on `(B, C, L)`.
pub(crate) fn group_norm(
    n_groups: usize,
    channels: usize,
    vb: VarBuilder,
) -> Result<candle_nn::GroupNorm> {
    candle_nn::group_norm(n_groups, channels, GROUP_NORM_EPS, vb)
}

/// Sinusoidal embedding of the diffusion step, as LeRobot's `DiffusionSinusoidalPosEmb`:
/// `half = dim/2`, `f_i = exp(-i ln(10000) / (half - 1))`, output `[sin(t f), cos(t f)]`
/// (sin first).
///
/// timesteps: (B,) any numeric dtype -> (B, dim) f32
pub(crate) fn sinusoidal_embedding(timesteps: &Tensor, dim: usize) -> Result<Tensor> {
    let half = dim / 2;
    let scale = -(10000f64.ln()) / (half as f64 - 1.0);
    // Computed like PyTorch: f32 arange times the f32-rounded scale, then exp in f32.
    let freqs: Vec<f32> = (0..half).map(|i| (i as f32 * scale as f32).exp()).collect();
    let freqs = Tensor::from_vec(freqs, (1, half), timesteps.device())?;
    let t = timesteps.to_dtype(DType::F32)?.unsqueeze(1)?;
    let args = t.broadcast_mul(&freqs)?;
    Tensor::cat(&[args.sin()?, args.cos()?], 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn mish_matches_the_definition() {
        let xs = [-100.0f32, -20.0, -3.0, -0.5, 0.0, 0.7, 4.0, 30.0, 100.0];
        let t = Tensor::new(&xs[..], &Device::Cpu).unwrap();
        let got = mish(&t).unwrap().to_vec1::<f32>().unwrap();
        for (x, y) in xs.iter().zip(got) {
            let x = f64::from(*x);
            let want = x * (x.exp().ln_1p()).tanh();
            assert!(
                (want - f64::from(y)).abs() < 1e-6 * (1.0 + want.abs()),
                "{x}: {y} vs {want}"
            );
        }
    }

    #[test]
    fn mish_gradient_is_finite_for_large_inputs() {
        let var = candle_core::Var::new(&[-200.0f32, 0.0, 200.0][..], &Device::Cpu).unwrap();
        let grads = mish(var.as_tensor())
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let g = grads.get(&var).unwrap().to_vec1::<f32>().unwrap();
        assert!(g.iter().all(|v| v.is_finite()), "{g:?}");
        assert!(
            (g[1] - 0.6).abs() < 1e-3 && (g[2] - 1.0).abs() < 1e-6,
            "{g:?}"
        );
    }

    #[test]
    fn sinusoidal_embedding_is_sin_first() {
        let t = Tensor::new(&[0u32, 10], &Device::Cpu).unwrap();
        let emb = sinusoidal_embedding(&t, 8)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        // t = 0: sin 0 = 0 in the first half, cos 0 = 1 in the second.
        assert_eq!(emb[0], vec![0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]);
        // f_0 = 1, f_3 = 1e-4.
        assert!((emb[1][0] - 10f32.sin()).abs() < 1e-6);
        assert!((emb[1][3] - (10.0f32 * 1e-4).sin()).abs() < 1e-6);
        assert!((emb[1][4] - 10f32.cos()).abs() < 1e-6);
    }

    #[test]
    fn upsample_doubles_the_length_at_batch_3() {
        // Against a direct evaluation of the transposed convolution:
        // y[o, 2l + k - 1] += sum_i x[i, l] w[i, o, k], for 0 <= 2l + k - 1 < 2L.
        let dev = Device::Cpu;
        let (b, c, l) = (3usize, 2usize, 5usize);
        let x: Vec<f32> = (0..b * c * l).map(|v| (v as f32 * 0.37).sin()).collect();
        let w: Vec<f32> = (0..c * c * 4).map(|v| (v as f32 * 0.91).cos()).collect();
        let bias = [0.1f32, -0.2];
        let mut map = std::collections::HashMap::new();
        map.insert(
            "weight".to_string(),
            Tensor::from_vec(w.clone(), (c, c, 4), &dev).unwrap(),
        );
        map.insert("bias".to_string(), Tensor::new(&bias[..], &dev).unwrap());
        let up = Upsample1d::new(c, VarBuilder::from_tensors(map, DType::F32, &dev)).unwrap();
        let xt = Tensor::from_vec(x.clone(), (b, c, l), &dev).unwrap();
        let y = up.forward(&xt).unwrap().to_vec3::<f32>().unwrap();
        for bi in 0..b {
            for o in 0..c {
                let mut want = vec![bias[o]; 2 * l];
                for i in 0..c {
                    for li in 0..l {
                        for k in 0..4 {
                            let pos = 2 * li + k;
                            if (1..=2 * l).contains(&pos) {
                                want[pos - 1] += x[(bi * c + i) * l + li] * w[(i * c + o) * 4 + k];
                            }
                        }
                    }
                }
                for (p, v) in want.iter().enumerate() {
                    assert!((y[bi][o][p] - v).abs() < 1e-5, "b{bi} o{o} p{p}");
                }
            }
        }
    }
}
