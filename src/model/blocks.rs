//! The U-Net's building blocks, named as LeRobot's `DiffusionConv1dBlock` and
//! `DiffusionConditionalResidualBlock1d` (`lerobot/policies/diffusion/modeling_diffusion.py`).

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::conv::Conv1d;
use super::cpu::kernels::{self, Film};
use super::cpu::{Act, CpuSlice, Par};
use super::ops::{self, OpImpl};

/// `Conv1d(k, padding k/2) -> GroupNorm -> Mish`; tensors `block.0.{weight,bias}` (conv) and
/// `block.1.{weight,bias}` (GroupNorm).
#[derive(Debug, Clone)]
pub(crate) struct Conv1dBlock {
    conv: Conv1d,
    norm: ops::GroupNorm,
}

impl Conv1dBlock {
    pub(crate) fn new(
        in_channels: usize,
        out_channels: usize,
        kernel_size: usize,
        n_groups: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let vb = vb.pp("block");
        let conv = Conv1d::new(
            in_channels,
            out_channels,
            kernel_size,
            1,
            kernel_size / 2,
            vb.pp("0"),
        )?;
        let norm = ops::GroupNorm::new(n_groups, out_channels, vb.pp("1"))?;
        Ok(Self { conv, norm })
    }
}

impl Conv1dBlock {
    /// Calls `f` on every parameter tensor.
    pub(crate) fn visit(&self, f: &mut dyn FnMut(&Tensor)) {
        self.conv.visit(f);
        self.norm.visit(f);
    }

    /// The CPU kernels' forward, with FiLM after the Mish:
    /// x (in, B, T) -> (out, B, T).
    fn forward_cpu_film(&self, x: &Act, film: Film, par: Par) -> Result<Act> {
        let mut h = self.conv.forward_cpu(x, false, par)?;
        let d = h.d;
        self.norm.with_params(self.conv.bias(), |p| {
            kernels::norm_mish_film(&mut h.data, d, p, film, par)
        })?;
        Ok(h)
    }

    /// The CPU kernels' forward: x (in, B, T) -> (out, B, T).
    pub(crate) fn forward_cpu(&self, x: &Act, par: Par) -> Result<Act> {
        self.forward_cpu_film(x, Film::None, par)
    }
}

impl Conv1dBlock {
    /// x: (B, in, T) -> (B, out, T)
    pub(crate) fn forward(&self, x: &Tensor, imp: OpImpl) -> Result<Tensor> {
        ops::mish(&self.norm.forward(&self.conv.forward(x, imp)?, imp)?, imp)
    }
}

/// Residual block with FiLM conditioning: `conv1`, `cond_encoder.1` (Linear after a Mish),
/// `conv2`, and `residual_conv` (1x1 conv, only when the channel count changes).
#[derive(Debug, Clone)]
pub(crate) struct ConditionalResidualBlock1d {
    conv1: Conv1dBlock,
    cond_encoder: candle_nn::Linear,
    conv2: Conv1dBlock,
    residual_conv: Option<Conv1d>,
    out_channels: usize,
    use_film_scale_modulation: bool,
}

/// Sizes shared by every residual block of one U-Net.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockSizes {
    pub(crate) cond_dim: usize,
    pub(crate) kernel_size: usize,
    pub(crate) n_groups: usize,
    pub(crate) use_film_scale_modulation: bool,
}

impl ConditionalResidualBlock1d {
    pub(crate) fn new(
        in_channels: usize,
        out_channels: usize,
        sizes: BlockSizes,
        vb: VarBuilder,
    ) -> Result<Self> {
        let conv1 = Conv1dBlock::new(
            in_channels,
            out_channels,
            sizes.kernel_size,
            sizes.n_groups,
            vb.pp("conv1"),
        )?;
        let cond_channels = if sizes.use_film_scale_modulation {
            2 * out_channels
        } else {
            out_channels
        };
        let cond_encoder =
            candle_nn::linear(sizes.cond_dim, cond_channels, vb.pp("cond_encoder").pp("1"))?;
        let conv2 = Conv1dBlock::new(
            out_channels,
            out_channels,
            sizes.kernel_size,
            sizes.n_groups,
            vb.pp("conv2"),
        )?;
        let residual_conv = if in_channels != out_channels {
            Some(Conv1d::new(
                in_channels,
                out_channels,
                1,
                1,
                0,
                vb.pp("residual_conv"),
            )?)
        } else {
            None
        };
        Ok(Self {
            conv1,
            cond_encoder,
            conv2,
            residual_conv,
            out_channels,
            use_film_scale_modulation: sizes.use_film_scale_modulation,
        })
    }

    /// Calls `f` on every parameter tensor.
    pub(crate) fn visit(&self, f: &mut dyn FnMut(&Tensor)) {
        self.conv1.visit(f);
        f(self.cond_encoder.weight());
        if let Some(b) = self.cond_encoder.bias() {
            f(b);
        }
        self.conv2.visit(f);
        if let Some(conv) = &self.residual_conv {
            conv.visit(f);
        }
    }

    /// The CPU kernels' forward: x (in, B, T) and `mish_cond`, Mish of the condition
    /// (B, cond_dim) row-major, -> (out, B, T). Same arithmetic as [`Self::forward`]. Takes `x`
    /// to reuse it as the output buffer when the residual branch is the identity.
    pub(crate) fn forward_cpu(&self, x: Act, mish_cond: &[f32], par: Par) -> Result<Act> {
        let film = {
            let w = CpuSlice::new(self.cond_encoder.weight(), "cond_encoder weight")?;
            let Some(bias) = self.cond_encoder.bias() else {
                candle_core::bail!("cond_encoder without bias");
            };
            let bias = CpuSlice::new(bias, "cond_encoder bias")?;
            kernels::linear(mish_cond, x.d.b, w.get(), bias.get(), par)?
        };
        let film = if self.use_film_scale_modulation {
            Film::ScaleBias(&film)
        } else {
            Film::Bias(&film)
        };
        let h = self.conv1.forward_cpu_film(&x, film, par)?;
        let h2 = self.conv2.conv.forward_cpu(&h, false, par)?;
        let (mut out, residual_bias) = match &self.residual_conv {
            Some(conv) => (
                conv.forward_cpu(&x, false, par)?,
                Some(CpuSlice::new(conv.bias(), "residual_conv bias")?),
            ),
            None => (x, None),
        };
        self.conv2.norm.with_params(self.conv2.conv.bias(), |p| {
            kernels::norm_mish_add(
                &h2.data,
                h2.d,
                p,
                &mut out.data,
                residual_bias.as_ref().map(|b| b.get()),
                par,
            )
        })?;
        Ok(out)
    }

    /// x: (B, in, T), `mish_cond`: Mish of the condition (B, cond_dim), computed once per
    /// forward for all blocks (every block's `cond_encoder` starts with it) -> (B, out, T)
    ///
    /// FiLM: the Linear's output is `[scale (out), bias (out)]`, applied as `scale * h + bias`
    /// (or `h + bias` without scale modulation).
    pub(crate) fn forward(&self, x: &Tensor, mish_cond: &Tensor, imp: OpImpl) -> Result<Tensor> {
        let h = self.conv1.forward(x, imp)?;
        // (B, cond_channels) -> (B, cond_channels, 1)
        let embed = self.cond_encoder.forward(mish_cond)?.unsqueeze(2)?;
        let h = if self.use_film_scale_modulation {
            let scale = embed.narrow(1, 0, self.out_channels)?;
            let bias = embed.narrow(1, self.out_channels, self.out_channels)?;
            h.broadcast_mul(&scale)?.broadcast_add(&bias)?
        } else {
            h.broadcast_add(&embed)?
        };
        let h = self.conv2.forward(&h, imp)?;
        match &self.residual_conv {
            Some(conv) => h + conv.forward(x, imp)?,
            None => h + x,
        }
    }
}
