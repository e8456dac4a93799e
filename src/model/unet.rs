//! The 1-D conditional U-Net of Diffusion Policy (Chi et al. 2023, arXiv 2303.04137), as
//! LeRobot 0.4.4's `DiffusionConditionalUnet1d` (`lerobot/policies/diffusion/modeling_diffusion.py`)
//! computes it, with its tensor names under the prefix `diffusion.unet`, so LeRobot checkpoints
//! load unchanged (see `reference/diffusion-policy.md`).
//!
//! ```text
//! diffusion_step_encoder.{1,3}        Linear(e, 4e), Mish, Linear(4e, e) after the sinusoidal embedding
//! down_modules.i.{0,1}                residual blocks (in -> d_i, d_i -> d_i)
//! down_modules.i.2                    Conv1d(d_i, d_i, 3, stride 2, pad 1), not on the last level
//! mid_modules.{0,1}                   residual blocks on the last level
//! up_modules.j.{0,1}                  residual blocks (2 d -> d', d' -> d') over the skip concat
//! up_modules.j.2                      ConvTranspose1d(d', d', 4, stride 2, pad 1), on every up level
//! final_conv.0 / final_conv.1         Conv1dBlock(d_0, d_0, k), Conv1d(d_0, action_dim, 1)
//! ```

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::VarBuilder;
use rayon::prelude::*;

use super::blocks::{BlockSizes, ConditionalResidualBlock1d, Conv1dBlock};
use super::conv::{Conv1d, Upsample1d};
use super::cpu::kernels::{self, Par};
use super::cpu::{self as cpu, Act, CpuSlice, ForwardOptions, KernelChoice};
use super::ops::{self, OpImpl};
use super::UnetConfig;

/// The prefix of every U-Net tensor in a model file (LeRobot's `DiffusionPolicy.diffusion.unet`).
pub const UNET_PREFIX: &str = "diffusion.unet";

/// GroupNorm groups of `final_conv.0`, fixed by LeRobot (see [`UnetConfig::validate`]).
pub const FINAL_CONV_GROUPS: usize = 8;

#[derive(Debug, Clone)]
struct DownLevel {
    resnet: ConditionalResidualBlock1d,
    resnet2: ConditionalResidualBlock1d,
    downsample: Option<Conv1d>,
}

#[derive(Debug, Clone)]
struct UpLevel {
    resnet: ConditionalResidualBlock1d,
    resnet2: ConditionalResidualBlock1d,
    upsample: Upsample1d,
}

/// LeRobot's `DiffusionConditionalUnet1d`: predicts noise (or the clean sample) for a noisy
/// batch of trajectories, conditioned by FiLM on the diffusion step and a global condition.
#[derive(Debug, Clone)]
pub struct ConditionalUnet1d {
    config: UnetConfig,
    step_linear1: candle_nn::Linear,
    step_linear2: candle_nn::Linear,
    down: Vec<DownLevel>,
    mid: [ConditionalResidualBlock1d; 2],
    up: Vec<UpLevel>,
    final_block: Conv1dBlock,
    final_conv: Conv1d,
    options: ForwardOptions,
    /// Some weight is a `Var` or depends on one (training): the CPU kernels are not used.
    weights_track_grad: bool,
    /// The weights' dtype (f32 unless loaded at another [`super::Precision`]); activations are
    /// computed in it, GroupNorm's statistics in f32.
    dtype: DType,
}

impl ConditionalUnet1d {
    /// Builds the network from `vb`, reading every tensor under `diffusion.unet.` (the prefix is
    /// applied here: pass the model file's root `VarBuilder`). The config is validated first.
    pub fn new(config: &UnetConfig, vb: VarBuilder) -> Result<Self> {
        if let Err(e) = config.validate() {
            candle_core::bail!("{e}");
        }
        let vb = vb.pp(UNET_PREFIX);
        let e = config.diffusion_step_embed_dim;
        let enc = vb.pp("diffusion_step_encoder");
        let step_linear1 = candle_nn::linear(e, 4 * e, enc.pp("1"))?;
        let step_linear2 = candle_nn::linear(4 * e, e, enc.pp("3"))?;

        let sizes = BlockSizes {
            cond_dim: config.cond_dim(),
            kernel_size: config.kernel_size,
            n_groups: config.n_groups,
            use_film_scale_modulation: config.use_film_scale_modulation,
        };
        // (in, out) channels per level: (action_dim, d_0), (d_0, d_1), ...
        let mut in_out = vec![(config.action_dim, config.down_dims[0])];
        in_out.extend(config.down_dims.windows(2).map(|w| (w[0], w[1])));

        let mut down = Vec::with_capacity(in_out.len());
        for (i, &(dim_in, dim_out)) in in_out.iter().enumerate() {
            let vb = vb.pp("down_modules").pp(i);
            let is_last = i + 1 == in_out.len();
            down.push(DownLevel {
                resnet: ConditionalResidualBlock1d::new(dim_in, dim_out, sizes, vb.pp("0"))?,
                resnet2: ConditionalResidualBlock1d::new(dim_out, dim_out, sizes, vb.pp("1"))?,
                downsample: if is_last {
                    None
                } else {
                    Some(Conv1d::new(dim_out, dim_out, 3, 2, 1, vb.pp("2"))?)
                },
            });
        }

        let last = config.down_dims[config.down_dims.len() - 1];
        let mid = [
            ConditionalResidualBlock1d::new(last, last, sizes, vb.pp("mid_modules").pp("0"))?,
            ConditionalResidualBlock1d::new(last, last, sizes, vb.pp("mid_modules").pp("1"))?,
        ];

        // LeRobot iterates `reversed(in_out[1:])`; its `is_last` is never true there, so every
        // up level upsamples.
        let mut up = Vec::with_capacity(in_out.len() - 1);
        for (j, &(dim_out, dim_in)) in in_out[1..].iter().rev().enumerate() {
            let vb = vb.pp("up_modules").pp(j);
            up.push(UpLevel {
                resnet: ConditionalResidualBlock1d::new(2 * dim_in, dim_out, sizes, vb.pp("0"))?,
                resnet2: ConditionalResidualBlock1d::new(dim_out, dim_out, sizes, vb.pp("1"))?,
                upsample: Upsample1d::new(dim_out, vb.pp("2"))?,
            });
        }

        let d0 = config.down_dims[0];
        // LeRobot (and Diffusion Policy) build this block without passing `n_groups`, so its
        // GroupNorm always has the class default of 8 groups, whatever `n_groups` says.
        let final_block = Conv1dBlock::new(
            d0,
            d0,
            config.kernel_size,
            FINAL_CONV_GROUPS,
            vb.pp("final_conv").pp("0"),
        )?;
        let final_conv = Conv1d::new(d0, config.action_dim, 1, 1, 0, vb.pp("final_conv").pp("1"))?;

        let mut unet = Self {
            config: config.clone(),
            step_linear1,
            step_linear2,
            down,
            mid,
            up,
            final_block,
            final_conv,
            options: ForwardOptions::default(),
            weights_track_grad: false,
            dtype: DType::F32,
        };
        let mut tracks = false;
        unet.visit(&mut |t| tracks |= t.track_op());
        unet.weights_track_grad = tracks;
        unet.dtype = unet.step_linear1.weight().dtype();
        Ok(unet)
    }

    /// Calls `f` on every parameter tensor.
    fn visit(&self, f: &mut dyn FnMut(&Tensor)) {
        for linear in [&self.step_linear1, &self.step_linear2] {
            f(linear.weight());
            if let Some(b) = linear.bias() {
                f(b);
            }
        }
        for level in &self.down {
            level.resnet.visit(f);
            level.resnet2.visit(f);
            if let Some(conv) = &level.downsample {
                conv.visit(f);
            }
        }
        for block in &self.mid {
            block.visit(f);
        }
        for level in &self.up {
            level.resnet.visit(f);
            level.resnet2.visit(f);
            level.upsample.visit(f);
        }
        self.final_block.visit(f);
        self.final_conv.visit(f);
    }

    /// How [`Self::forward`] computes (fused CPU kernels or generic candle ops, threads).
    pub fn forward_options(&self) -> ForwardOptions {
        self.options
    }

    /// Sets how [`Self::forward`] computes.
    pub fn set_forward_options(&mut self, options: ForwardOptions) {
        self.options = options;
    }

    /// True if [`Self::forward`] with these inputs would run the fused CPU kernels: the
    /// options allow it, `x` and `global_cond` are f32 on the CPU and nothing (inputs or
    /// weights) tracks gradients.
    pub fn uses_cpu_kernels(&self, x: &Tensor, global_cond: Option<&Tensor>) -> bool {
        self.options.kernels == KernelChoice::Auto
            && !self.weights_track_grad
            && self.dtype == DType::F32
            && cpu::readable(x)
            && global_cond.is_none_or(cpu::readable)
    }

    /// The network's sizes.
    pub fn config(&self) -> &UnetConfig {
        &self.config
    }

    /// One denoising evaluation.
    ///
    /// - `x`: (B, T, D) f32, D = `action_dim`, T a multiple of
    ///   [`UnetConfig::horizon_multiple`];
    /// - `timesteps`: (B,) any numeric dtype (u32, i64, f32), the diffusion step of each sample;
    /// - `global_cond`: (B, G) f32 with G = `global_cond_dim`; `None` only when G = 0.
    ///
    /// Returns (B, T, D).
    ///
    /// Runs the fused CPU kernels (forward-only) when [`Self::uses_cpu_kernels`] says so, and
    /// the generic, differentiable candle ops otherwise (training, CUDA,
    /// [`KernelChoice::Generic`], [`KernelChoice::TensorOps`]).
    pub fn forward(
        &self,
        x: &Tensor,
        timesteps: &Tensor,
        global_cond: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        if d != self.config.action_dim {
            candle_core::bail!(
                "U-Net input x: (B, T, D) with D = {}, found {:?}",
                self.config.action_dim,
                x.dims()
            );
        }
        let multiple = self.config.horizon_multiple();
        if t == 0 || t % multiple != 0 {
            candle_core::bail!(
                "U-Net input x: horizon T must be a positive multiple of {multiple} (2^(levels-1)), found {t}"
            );
        }
        if timesteps.dims() != [b] {
            candle_core::bail!(
                "U-Net timesteps: expected shape ({b},), found {:?}",
                timesteps.dims()
            );
        }

        let g_dim = self.config.global_cond_dim;
        match global_cond {
            Some(g) if g.dims() != [b, g_dim] => candle_core::bail!(
                "U-Net global_cond: expected shape ({b}, {g_dim}), found {:?}",
                g.dims()
            ),
            None if g_dim != 0 => {
                candle_core::bail!("U-Net global_cond: expected shape ({b}, {g_dim}), found none")
            }
            _ => {}
        }
        if self.uses_cpu_kernels(x, global_cond) && timesteps.device().is_cpu() {
            return self.forward_cpu(x, timesteps, global_cond);
        }

        let imp = match self.options.kernels {
            KernelChoice::TensorOps => OpImpl::TensorOps,
            KernelChoice::Auto | KernelChoice::Generic => OpImpl::Native,
        };
        // (B, e): sinusoidal embedding -> Linear -> Mish -> Linear
        let step = ops::sinusoidal_embedding(timesteps, self.config.diffusion_step_embed_dim)?
            .to_dtype(self.dtype)?;
        let step = self
            .step_linear2
            .forward(&ops::mish(&self.step_linear1.forward(&step)?, imp)?)?;
        // (B, e + G): the FiLM condition (shape checked above).
        let cond = match global_cond {
            None => step,
            Some(g) => Tensor::cat(&[&step, &g.to_dtype(step.dtype())?], 1)?,
        };
        // Every block's cond_encoder starts with Mish: once here, not once per block (the same
        // values; on CUDA 9 kernel launches per block fewer).
        let cond = ops::mish(&cond, imp)?;

        // (B, D, T)
        let mut h = x.transpose(1, 2)?.contiguous()?.to_dtype(self.dtype)?;
        let mut skips = Vec::with_capacity(self.down.len());
        for level in &self.down {
            h = level.resnet.forward(&h, &cond, imp)?;
            h = level.resnet2.forward(&h, &cond, imp)?;
            skips.push(h.clone());
            if let Some(downsample) = &level.downsample {
                h = downsample.forward(&h, imp)?;
            }
        }
        for block in &self.mid {
            h = block.forward(&h, &cond, imp)?;
        }
        for level in &self.up {
            let Some(skip) = skips.pop() else {
                candle_core::bail!("U-Net: missing skip connection");
            };
            h = Tensor::cat(&[&h, &skip], 1)?;
            h = level.resnet.forward(&h, &cond, imp)?;
            h = level.resnet2.forward(&h, &cond, imp)?;
            h = level.upsample.forward(&h, imp)?;
        }
        let h = self
            .final_conv
            .forward(&self.final_block.forward(&h, imp)?, imp)?;
        // (B, D, T) -> (B, T, D), in the input's dtype.
        h.transpose(1, 2)?.contiguous()?.to_dtype(x.dtype())
    }

    /// Batch x horizon columns of one part of the fused forward pass: larger batches run in
    /// parts of at most this many columns, one after the other, so that each part's working
    /// set (im2col columns, activations) stays in the core's cache.
    const CPU_PART_COLUMNS: usize = 1024;

    /// [`Self::forward`] on the fused CPU kernels; inputs already validated. With n > 1 threads
    /// the batch is split into n groups of rows run in parallel, one thread each; each group
    /// runs in parts of at most [`Self::CPU_PART_COLUMNS`] columns.
    fn forward_cpu(
        &self,
        x: &Tensor,
        timesteps: &Tensor,
        global_cond: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        let threads = self.options.cpu_threads.threads(b);
        let groups = threads.min(b).max(1);
        // A single group gets all threads (inside the matrix products), several get one each.
        let par = Par(if groups == 1 { threads } else { 1 });
        let part_rows = (Self::CPU_PART_COLUMNS / t.max(1)).max(1);
        let run_rows = |start: usize, end: usize| -> Result<Vec<f32>> {
            let mut out = Vec::with_capacity((end - start) * t * d);
            let mut s = start;
            while s < end {
                let len = part_rows.min(end - s);
                let cond = match global_cond {
                    Some(g) => Some(g.narrow(0, s, len)?),
                    None => None,
                };
                out.extend(self.forward_cpu_rows(
                    &x.narrow(0, s, len)?,
                    &timesteps.narrow(0, s, len)?,
                    cond.as_ref(),
                    par,
                )?);
                s += len;
            }
            Ok(out)
        };
        let bound = |i: usize| i * b / groups;
        let out = if groups == 1 {
            run_rows(0, b)?
        } else {
            (0..groups)
                .into_par_iter()
                .map(|i| run_rows(bound(i), bound(i + 1)))
                .collect::<Result<Vec<_>>>()?
                .concat()
        };
        Tensor::from_vec(out, (b, t, d), &Device::Cpu)
    }

    /// The fused CPU forward of a batch on `par` threads: (B, T, D) row-major.
    fn forward_cpu_rows(
        &self,
        x: &Tensor,
        timesteps: &Tensor,
        global_cond: Option<&Tensor>,
        par: Par,
    ) -> Result<Vec<f32>> {
        let (b, t, d) = x.dims3()?;
        let e = self.config.diffusion_step_embed_dim;
        // (B, e) sinusoidal embedding, computed as `ops::sinusoidal_embedding` does.
        let steps = timesteps.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        let half = e / 2;
        let scale = (-(10000f64.ln()) / (half as f64 - 1.0)) as f32;
        let freqs: Vec<f32> = (0..half).map(|i| (i as f32 * scale).exp()).collect();
        let mut emb = vec![0f32; b * e];
        for (row, &s) in emb.chunks_mut(e).zip(&steps) {
            for (i, f) in freqs.iter().enumerate() {
                let arg = s * f;
                row[i] = arg.sin();
                row[half + i] = arg.cos();
            }
        }
        let linear = |x: &[f32], layer: &candle_nn::Linear, what: &str| -> Result<Vec<f32>> {
            let w = CpuSlice::new(layer.weight(), what)?;
            let Some(bias) = layer.bias() else {
                candle_core::bail!("{what}: no bias");
            };
            let bias = CpuSlice::new(bias, what)?;
            kernels::linear(x, b, w.get(), bias.get(), par)
        };
        let mut hidden = linear(&emb, &self.step_linear1, "diffusion_step_encoder.1")?;
        kernels::mish_inplace(&mut hidden);
        let step = linear(&hidden, &self.step_linear2, "diffusion_step_encoder.3")?;
        // (B, e + G), then Mish: every block's cond_encoder starts with it.
        let g_dim = self.config.global_cond_dim;
        let mut cond = Vec::with_capacity(b * (e + g_dim));
        let global = match global_cond {
            Some(g) => Some(g.contiguous()?),
            None => None,
        };
        let global = match &global {
            Some(g) => Some(CpuSlice::new(g, "global_cond")?),
            None => None,
        };
        for bi in 0..b {
            cond.extend_from_slice(&step[bi * e..(bi + 1) * e]);
            if let Some(g) = &global {
                cond.extend_from_slice(&g.get()[bi * g_dim..(bi + 1) * g_dim]);
            }
        }
        kernels::mish_inplace(&mut cond);

        let x = x.contiguous()?;
        let x = CpuSlice::new(&x, "U-Net input x")?;
        let mut h = Act::from_btd(x.get(), b, t, d);
        let mut skips = Vec::with_capacity(self.down.len());
        for level in &self.down {
            h = level.resnet.forward_cpu(h, &cond, par)?;
            h = level.resnet2.forward_cpu(h, &cond, par)?;
            if let Some(downsample) = &level.downsample {
                let next = downsample.forward_cpu(&h, true, par)?;
                skips.push(std::mem::replace(&mut h, next));
            } else {
                skips.push(h.clone());
            }
        }
        for block in &self.mid {
            h = block.forward_cpu(h, &cond, par)?;
        }
        for level in &self.up {
            let Some(skip) = skips.pop() else {
                candle_core::bail!("U-Net: missing skip connection");
            };
            h = Act::cat_channels(&h, &skip)?;
            h = level.resnet.forward_cpu(h, &cond, par)?;
            h = level.resnet2.forward_cpu(h, &cond, par)?;
            h = level.upsample.forward_cpu(&h, par)?;
        }
        let h = self.final_block.forward_cpu(&h, par)?;
        let h = self.final_conv.forward_cpu(&h, true, par)?;
        Ok(h.to_btd())
    }
}
