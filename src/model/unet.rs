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

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::blocks::{BlockSizes, ConditionalResidualBlock1d, Conv1dBlock};
use super::ops::{self, Conv1d, Upsample1d};
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

        Ok(Self {
            config: config.clone(),
            step_linear1,
            step_linear2,
            down,
            mid,
            up,
            final_block,
            final_conv,
        })
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

        // (B, e): sinusoidal embedding -> Linear -> Mish -> Linear
        let step = ops::sinusoidal_embedding(timesteps, self.config.diffusion_step_embed_dim)?;
        let step = self
            .step_linear2
            .forward(&ops::mish(&self.step_linear1.forward(&step)?)?)?;
        // (B, e + G): the FiLM condition.
        let cond = match (global_cond, self.config.global_cond_dim) {
            (None, 0) => step,
            (Some(g), g_dim) if g.dims() == [b, g_dim] => {
                Tensor::cat(&[&step, &g.to_dtype(step.dtype())?], 1)?
            }
            (Some(g), g_dim) => candle_core::bail!(
                "U-Net global_cond: expected shape ({b}, {g_dim}), found {:?}",
                g.dims()
            ),
            (None, g_dim) => {
                candle_core::bail!("U-Net global_cond: expected shape ({b}, {g_dim}), found none")
            }
        };

        // (B, D, T)
        let mut h = x.transpose(1, 2)?.contiguous()?;
        let mut skips = Vec::with_capacity(self.down.len());
        for level in &self.down {
            h = level.resnet.forward(&h, &cond)?;
            h = level.resnet2.forward(&h, &cond)?;
            skips.push(h.clone());
            if let Some(downsample) = &level.downsample {
                h = downsample.forward(&h)?;
            }
        }
        for block in &self.mid {
            h = block.forward(&h, &cond)?;
        }
        for level in &self.up {
            let Some(skip) = skips.pop() else {
                candle_core::bail!("U-Net: missing skip connection");
            };
            h = Tensor::cat(&[&h, &skip], 1)?;
            h = level.resnet.forward(&h, &cond)?;
            h = level.resnet2.forward(&h, &cond)?;
            h = level.upsample.forward(&h)?;
        }
        let h = self.final_conv.forward(&self.final_block.forward(&h)?)?;
        // (B, D, T) -> (B, T, D)
        h.transpose(1, 2)?.contiguous()
    }
}
