//! The U-Net's elementwise and normalisation operations (the convolutions are in
//! [`super::conv`]), differentiable on any device: candle ops, or on the CPU one fused custom op
//! with its own backward (`train_ops.rs`), as [`OpImpl`] says. The forward-only CPU kernels of
//! inference are in [`super::cpu`].

use candle_core::{DType, Result, Tensor};
use candle_nn::VarBuilder;

use super::cpu::kernels;
use super::cpu::CpuSlice;
use super::train_ops::{GroupNormOp, MishOp};

/// PyTorch's `nn.GroupNorm` default epsilon.
const GROUP_NORM_EPS: f64 = 1e-5;

/// How the differentiable forward computes Mish, GroupNorm and a convolution's columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpImpl {
    /// f32 on the CPU: the fused custom ops of `train_ops.rs` (each with its own backward);
    /// any other device or dtype: candle's tensor ops.
    Native,
    /// candle's tensor ops on every device: on the CPU exactly the op sequence that runs on
    /// CUDA (none of the CPU's custom ops), so that the CUDA path is testable without a GPU.
    TensorOps,
}

impl OpImpl {
    /// True if `x` goes through the CPU's fused custom ops.
    pub(crate) fn fused_cpu(self, x: &Tensor) -> bool {
        self == OpImpl::Native && x.device().is_cpu() && x.dtype() == DType::F32
    }
}

/// Mish, `x * tanh(softplus(x))` (PyTorch's `nn.Mish`), elementwise on any shape.
///
/// [`OpImpl::Native`] with f32 on the CPU: one fused pass (a custom op whose backward is one
/// more pass, see [`MishOp`]); otherwise [`mish_generic`].
pub(crate) fn mish(x: &Tensor, imp: OpImpl) -> Result<Tensor> {
    if imp.fused_cpu(x) {
        x.contiguous()?.apply_op1(MishOp)
    } else {
        mish_generic(x)
    }
}

/// Mish from candle's elementwise ops (any device, differentiable). softplus is written as
/// `relu(x) + ln(1 + exp(-|x|))`: no overflow for large `x` and finite gradients everywhere
/// (the textbook `ln(1 + exp(x))` gives NaN gradients above `x` ~ 88).
pub(crate) fn mish_generic(x: &Tensor) -> Result<Tensor> {
    let softplus = (x.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
    x * softplus.tanh()?
}

/// `nn.GroupNorm(n_groups, channels)` (eps 1e-5, affine) on `(B, C, L)`: tensors `weight (C,)`
/// and `bias (C,)`. [`OpImpl::Native`] with f32 on the CPU: one op with its own backward
/// ([`GroupNormOp`]); otherwise the arithmetic of `candle_nn::GroupNorm` (mean, then the mean of
/// the squared deviations) in candle ops.
#[derive(Debug, Clone)]
pub(crate) struct GroupNorm {
    weight: Tensor,
    bias: Tensor,
    groups: usize,
}

impl GroupNorm {
    pub(crate) fn new(groups: usize, channels: usize, vb: VarBuilder) -> Result<Self> {
        if groups == 0 || channels % groups != 0 {
            candle_core::bail!("GroupNorm: {groups} groups do not divide {channels} channels");
        }
        let weight = vb.get_with_hints(channels, "weight", candle_nn::Init::Const(1.))?;
        let bias = vb.get_with_hints(channels, "bias", candle_nn::Init::Const(0.))?;
        Ok(Self {
            weight,
            bias,
            groups,
        })
    }

    /// Runs `f` with the fused kernels' parameters of this norm after a convolution whose
    /// bias is `conv_bias (1, C, 1)`.
    pub(crate) fn with_params<R>(
        &self,
        conv_bias: &Tensor,
        f: impl FnOnce(&kernels::NormParams) -> Result<R>,
    ) -> Result<R> {
        let gamma = CpuSlice::new(&self.weight, "group norm weight")?;
        let beta = CpuSlice::new(&self.bias, "group norm bias")?;
        let conv_bias = CpuSlice::new(conv_bias, "conv1d bias")?;
        f(&kernels::NormParams {
            groups: self.groups,
            conv_bias: conv_bias.get(),
            gamma: gamma.get(),
            beta: beta.get(),
            eps: GROUP_NORM_EPS as f32,
        })
    }

    /// Calls `f` on every parameter tensor.
    pub(crate) fn visit(&self, f: &mut dyn FnMut(&Tensor)) {
        f(&self.weight);
        f(&self.bias);
    }
}

impl GroupNorm {
    /// x: (B, C, L) -> (B, C, L)
    pub(crate) fn forward(&self, x: &Tensor, imp: OpImpl) -> Result<Tensor> {
        let (_, c, _) = x.dims3()?;
        if c != self.weight.dim(0)? {
            candle_core::bail!(
                "GroupNorm: input {:?} has {c} channels, the norm {}",
                x.dims(),
                self.weight.dim(0)?
            );
        }
        if imp.fused_cpu(x) {
            let op = GroupNormOp {
                groups: self.groups,
                eps: GROUP_NORM_EPS as f32,
            };
            return x.contiguous()?.apply_op3(&self.weight, &self.bias, op);
        }
        group_norm_generic(x, &self.weight, &self.bias, self.groups)
    }
}

/// GroupNorm from candle ops (any device), the arithmetic of `candle_nn::GroupNorm`:
/// x (B, C, L), weight and bias (C,).
pub(crate) fn group_norm_generic(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    groups: usize,
) -> Result<Tensor> {
    if x.dtype() != DType::F32 {
        // f16 / bf16 inference: the statistics and the affine in f32.
        let f32 = |t: &Tensor| t.to_dtype(DType::F32);
        return group_norm_generic(&f32(x)?, &f32(weight)?, &f32(bias)?, groups)?
            .to_dtype(x.dtype());
    }
    let (b, c, l) = x.dims3()?;
    let n = (c / groups * l) as f64;
    let xg = x.reshape((b, groups, c / groups * l))?;
    let centred = xg.broadcast_sub(&(xg.sum_keepdim(2)? / n)?)?;
    let var = (centred.sqr()?.sum_keepdim(2)? / n)?;
    centred
        .broadcast_div(&(var + GROUP_NORM_EPS)?.sqrt()?)?
        .reshape((b, c, l))?
        .broadcast_mul(&weight.reshape((1, c, 1))?)?
        .broadcast_add(&bias.reshape((1, c, 1))?)
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
    use crate::model::test_util::max_diff;
    use candle_core::Device;

    #[test]
    fn mish_matches_the_definition() {
        let xs = [-100.0f32, -20.0, -3.0, -0.5, 0.0, 0.7, 4.0, 30.0, 100.0];
        let t = Tensor::new(&xs[..], &Device::Cpu).unwrap();
        let got = mish(&t, OpImpl::Native).unwrap().to_vec1::<f32>().unwrap();
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
    fn fused_mish_op_matches_the_generic_ops_and_their_gradient() {
        let x: Vec<f32> = (0..200).map(|i| (i as f32 - 100.0) * 0.23).collect();
        let var = candle_core::Var::new(&x[..], &Device::Cpu).unwrap();
        let xs = var.as_tensor().reshape((4, 50)).unwrap();
        // A non-contiguous input, and a weighted sum so the incoming gradient is not all ones.
        let xt = xs.t().unwrap();
        let w = Tensor::arange(0f32, 200.0, &Device::Cpu)
            .unwrap()
            .reshape((50, 4))
            .unwrap();
        let fused = mish(&xt, OpImpl::Native).unwrap();
        assert!(max_diff(&mish(&xt, OpImpl::TensorOps).unwrap(), &fused) < 1e-5);
        let generic = mish_generic(&xt).unwrap();
        assert!(max_diff(&fused, &generic) < 1e-5);
        let g_fused = (fused * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let g_generic = (generic * &w)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let (a, b) = (g_fused.get(&var).unwrap(), g_generic.get(&var).unwrap());
        assert!(max_diff(a, b) < 2e-4, "{}", max_diff(a, b));
    }

    #[test]
    fn mish_gradient_is_finite_for_large_inputs() {
        let var = candle_core::Var::new(&[-200.0f32, 0.0, 200.0][..], &Device::Cpu).unwrap();
        for imp in [OpImpl::Native, OpImpl::TensorOps] {
            let grads = mish(var.as_tensor(), imp)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let g = grads.get(&var).unwrap().to_vec1::<f32>().unwrap();
            assert!(g.iter().all(|v| v.is_finite()), "{imp:?}: {g:?}");
            assert!(
                (g[1] - 0.6).abs() < 1e-3 && (g[2] - 1.0).abs() < 1e-6,
                "{imp:?}: {g:?}"
            );
        }
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
}
