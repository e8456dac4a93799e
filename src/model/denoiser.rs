//! The denoiser: the U-Net plus an optional mode-label embedding for classifier-free guidance.

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::{ConditionalUnet1d, ForwardOptions, UnetConfig};
use crate::diffusion::Denoise;

/// Prefix of the label embedding's tensor (`mode_embedding.weight`).
pub const MODE_EMBEDDING_PREFIX: &str = "mode_embedding";

/// Size of the mode-label embedding: `num_modes + 1` rows (the last is the learned null label)
/// of `embed_dim` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModeEmbeddingConfig {
    /// Number of real modes (labels `0 .. num_modes`); label `num_modes` is the null label.
    pub num_modes: usize,
    /// Embedding size, appended to the observation condition.
    pub embed_dim: usize,
}

/// The U-Net and an optional label embedding. The U-Net's global condition is
/// `[observation condition (C), label embedding (E)]`, so its `global_cond_dim` is `C + E`.
#[derive(Debug, Clone)]
pub struct Denoiser {
    unet: ConditionalUnet1d,
    mode_embedding: Option<(candle_nn::Embedding, ModeEmbeddingConfig)>,
}

impl Denoiser {
    /// Builds the U-Net (tensors `diffusion.unet.*`) and, with `modes`, the embedding
    /// `mode_embedding.weight` of shape `(num_modes + 1, embed_dim)`, both from the root `vb`.
    /// `unet_config.global_cond_dim` includes `embed_dim`.
    pub fn new(
        unet_config: &UnetConfig,
        modes: Option<ModeEmbeddingConfig>,
        vb: VarBuilder,
    ) -> Result<Self> {
        let mode_embedding = match modes {
            None => None,
            Some(m) => {
                if m.num_modes == 0 || m.embed_dim == 0 {
                    candle_core::bail!(
                        "mode embedding: need num_modes > 0 and embed_dim > 0, found {m:?}"
                    );
                }
                if m.embed_dim > unet_config.global_cond_dim {
                    candle_core::bail!(
                        "mode embedding: embed_dim {} exceeds the U-Net's global_cond_dim {}",
                        m.embed_dim,
                        unet_config.global_cond_dim
                    );
                }
                let emb = candle_nn::embedding(
                    m.num_modes + 1,
                    m.embed_dim,
                    vb.pp(MODE_EMBEDDING_PREFIX),
                )?;
                Some((emb, m))
            }
        };
        let unet = ConditionalUnet1d::new(unet_config, vb)?;
        Ok(Self {
            unet,
            mode_embedding,
        })
    }

    /// The U-Net.
    pub fn unet(&self) -> &ConditionalUnet1d {
        &self.unet
    }

    /// Sets how the U-Net's forward pass computes (fused CPU kernels or generic candle ops,
    /// threads); see [`ForwardOptions`].
    pub fn set_forward_options(&mut self, options: ForwardOptions) {
        self.unet.set_forward_options(options);
    }

    /// The label embedding's size, if the model has labels.
    pub fn modes(&self) -> Option<ModeEmbeddingConfig> {
        self.mode_embedding.as_ref().map(|(_, m)| *m)
    }

    /// Size C of the observation condition (the U-Net's `global_cond_dim` minus the embedding).
    pub fn condition_dim(&self) -> usize {
        self.unet.config().global_cond_dim - self.modes().map_or(0, |m| m.embed_dim)
    }

    /// The null label (`num_modes`), if the model has labels.
    pub fn null_label(&self) -> Option<u32> {
        self.modes().map(|m| m.num_modes as u32)
    }

    /// Predicts the network output (epsilon or x0) for a noisy batch.
    ///
    /// - `x_t`: (B, T, D) f32, normalised;
    /// - `timesteps`: (B,) u32 (any numeric dtype works);
    /// - `global_cond`: (B, C) f32, normalised; `None` only when C = 0;
    /// - `labels`: (B,) u32 mode labels in `0 ..= num_modes` (`num_modes` = null); `None` uses
    ///   the null label for every sample. Labels on a model without modes are an error.
    ///
    /// Returns (B, T, D).
    pub fn denoise(
        &self,
        x_t: &Tensor,
        timesteps: &Tensor,
        global_cond: Option<&Tensor>,
        labels: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (b, _, _) = x_t.dims3()?;
        let Some((embedding, modes)) = &self.mode_embedding else {
            if labels.is_some() {
                candle_core::bail!("denoise: labels given, but the model has no mode embedding");
            }
            return self.unet.forward(x_t, timesteps, global_cond);
        };
        let labels = match labels {
            Some(l) => {
                if l.dims() != [b] {
                    candle_core::bail!(
                        "denoise labels: expected shape ({b},), found {:?}",
                        l.dims()
                    );
                }
                let l = l.to_dtype(DType::U32)?;
                let max = l.max(0)?.to_scalar::<u32>()?;
                if max as usize > modes.num_modes {
                    candle_core::bail!(
                        "denoise labels: label {max} out of range 0..={} ({} = null label)",
                        modes.num_modes,
                        modes.num_modes
                    );
                }
                l
            }
            None => Tensor::full(modes.num_modes as u32, b, x_t.device())?,
        };
        // (B, E)
        let label_embed = embedding.forward(&labels)?;
        let cond = match global_cond {
            Some(c) => {
                let c_dim = self.condition_dim();
                if c.dims() != [b, c_dim] {
                    candle_core::bail!(
                        "denoise global_cond: expected shape ({b}, {c_dim}), found {:?}",
                        c.dims()
                    );
                }
                Tensor::cat(&[&c.to_dtype(label_embed.dtype())?, &label_embed], 1)?
            }
            None => label_embed,
        };
        self.unet.forward(x_t, timesteps, Some(&cond))
    }
}

impl Denoise for Denoiser {
    fn denoise(
        &self,
        x_t: &Tensor,
        timesteps: &Tensor,
        global_cond: Option<&Tensor>,
        labels: Option<&Tensor>,
    ) -> Result<Tensor> {
        Denoiser::denoise(self, x_t, timesteps, global_cond, labels)
    }

    fn null_label(&self) -> Option<u32> {
        Denoiser::null_label(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diffusion::Denoise;
    use candle_core::Device;
    use candle_nn::VarMap;

    fn config(global_cond_dim: usize) -> UnetConfig {
        UnetConfig {
            action_dim: 2,
            global_cond_dim,
            down_dims: vec![8, 16],
            kernel_size: 3,
            n_groups: 4,
            diffusion_step_embed_dim: 8,
            use_film_scale_modulation: true,
        }
    }

    #[test]
    fn labels_select_embedding_rows_and_null_is_last() {
        let dev = Device::Cpu;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
        let modes = ModeEmbeddingConfig {
            num_modes: 2,
            embed_dim: 3,
        };
        let denoiser = Denoiser::new(&config(4 + 3), Some(modes), vb).unwrap();
        assert_eq!(denoiser.null_label(), Some(2));
        assert_eq!(denoiser.condition_dim(), 4);
        let model: &dyn Denoise = &denoiser;

        let x = Tensor::randn(0f32, 1.0, (3, 8, 2), &dev).unwrap();
        let t = Tensor::new(&[1u32, 50, 99], &dev).unwrap();
        let c = Tensor::randn(0f32, 1.0, (3, 4), &dev).unwrap();
        let null = Tensor::new(&[2u32, 2, 2], &dev).unwrap();
        let implicit = model.denoise(&x, &t, Some(&c), None).unwrap();
        let explicit = model.denoise(&x, &t, Some(&c), Some(&null)).unwrap();
        assert_eq!(implicit.dims(), &[3, 8, 2]);
        let diff = (implicit - &explicit)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap();
        assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0);

        let labelled = model
            .denoise(
                &x,
                &t,
                Some(&c),
                Some(&Tensor::new(&[0u32, 1, 2], &dev).unwrap()),
            )
            .unwrap();
        let per_sample = (labelled - explicit)
            .unwrap()
            .abs()
            .unwrap()
            .max(2)
            .unwrap()
            .max(1)
            .unwrap();
        let per_sample = per_sample.to_vec1::<f32>().unwrap();
        assert!(
            per_sample[0] > 0.0 && per_sample[1] > 0.0 && per_sample[2] == 0.0,
            "{per_sample:?}"
        );

        let bad = Tensor::new(&[0u32, 3, 1], &dev).unwrap();
        let err = model
            .denoise(&x, &t, Some(&c), Some(&bad))
            .unwrap_err()
            .to_string();
        assert!(err.contains("label 3"), "{err}");
        let err = model
            .denoise(&x, &t, Some(&c.narrow(1, 0, 3).unwrap()), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("(3, 4)") && err.contains("[3, 3]"), "{err}");
    }

    #[test]
    fn labels_without_modes_are_an_error() {
        let dev = Device::Cpu;
        let vb = VarBuilder::from_varmap(&VarMap::new(), DType::F32, &dev);
        let denoiser = Denoiser::new(&config(4), None, vb).unwrap();
        assert_eq!(Denoise::null_label(&denoiser), None);
        let x = Tensor::zeros((1, 4, 2), DType::F32, &dev).unwrap();
        let t = Tensor::new(&[3u32], &dev).unwrap();
        let c = Tensor::zeros((1, 4), DType::F32, &dev).unwrap();
        let l = Tensor::new(&[0u32], &dev).unwrap();
        assert!(denoiser.denoise(&x, &t, Some(&c), None).is_ok());
        let err = denoiser
            .denoise(&x, &t, Some(&c), Some(&l))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no mode embedding"), "{err}");
    }
}
