//! A small MLP denoiser for low-dimensional toy data, with an optional mode-label embedding.
//!
//! ```text
//! c  = SiLU(time_proj(sinusoidal(t))) [+ label_embedding(label)]        (B, W)
//! h  = input([x_t, sin(2^j π x_t), cos(2^j π x_t)], j < F)                (B, W)
//! h  = h + block_i(SiLU(h + c))      for i in 0..hidden_layers           (B, W)
//! ε̂  = output(SiLU(h))                                                   (B, D)
//! ```
//! The time condition is added before every block, so every layer sees it. The Fourier
//! features of the input (F octaves, per coordinate; Tancik et al. 2020) let a small MLP
//! represent the sharp changes of ε near narrow modes at small t. The label embedding
//! has `num_labels + 1` rows; the last is the learned null label of classifier-free guidance.
//! Parameter names (`time_proj`, `input`, `blocks.i`, `output`, `label_embedding`) are the
//! `VarBuilder` prefixes.

use candle_core::{DType, Device, Tensor, D};
use candle_nn::{Embedding, Linear, Module, VarBuilder, VarMap};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::Serialize;

use crate::{Error, Result};

/// Sizes of a [`ToyDenoiser`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToyDenoiserConfig {
    /// Data dimension D.
    pub dim: usize,
    /// Hidden width W.
    pub width: usize,
    /// Number of residual blocks.
    pub hidden_layers: usize,
    /// Size of the sinusoidal timestep embedding (even).
    pub time_embed_dim: usize,
    /// Octaves F of Fourier features of the input (0: the raw input only).
    pub input_octaves: usize,
    /// Number of mode labels; `None` for an unconditional model (no embedding).
    pub num_labels: Option<usize>,
}

impl ToyDenoiserConfig {
    /// Width 128, 3 blocks, 64-d time embedding.
    pub fn new(dim: usize, num_labels: Option<usize>) -> ToyDenoiserConfig {
        ToyDenoiserConfig {
            dim,
            width: 128,
            hidden_layers: 3,
            time_embed_dim: 64,
            input_octaves: 6,
            num_labels,
        }
    }

    fn validate(&self) -> Result<()> {
        if self.dim == 0 || self.width == 0 {
            return Err(Error::config(
                "dim/width",
                format!("must be > 0, found {}/{}", self.dim, self.width),
            ));
        }
        if self.time_embed_dim < 2 || self.time_embed_dim % 2 != 0 {
            return Err(Error::config(
                "time_embed_dim",
                format!("must be even and >= 2, found {}", self.time_embed_dim),
            ));
        }
        if self.num_labels == Some(0) {
            return Err(Error::config("num_labels", "must be > 0 when set, found 0"));
        }
        Ok(())
    }
}

/// The MLP denoiser; predicts ε for x_t (B, D) at timesteps t (B,).
#[derive(Debug, Clone)]
pub struct ToyDenoiser {
    config: ToyDenoiserConfig,
    time_proj: Linear,
    input: Linear,
    blocks: Vec<Linear>,
    output: Linear,
    label_embedding: Option<Embedding>,
    /// Frequencies of the sinusoidal embedding: (1, E/2).
    freqs: Tensor,
    /// Input Fourier frequencies 2^j π, repeated per coordinate: (1, D·F), or None when F = 0.
    input_freqs: Option<Tensor>,
}

impl ToyDenoiser {
    /// Creates (or loads, depending on `vb`) the network.
    pub fn new(config: &ToyDenoiserConfig, vb: VarBuilder) -> Result<ToyDenoiser> {
        config.validate()?;
        let w = config.width;
        let time_proj = candle_nn::linear(config.time_embed_dim, w, vb.pp("time_proj"))?;
        let input_dim = config.dim * (1 + 2 * config.input_octaves);
        let input = candle_nn::linear(input_dim, w, vb.pp("input"))?;
        let blocks = (0..config.hidden_layers)
            .map(|i| candle_nn::linear(w, w, vb.pp(format!("blocks.{i}"))))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let output = candle_nn::linear(w, config.dim, vb.pp("output"))?;
        let label_embedding = match config.num_labels {
            Some(k) => Some(candle_nn::embedding(k + 1, w, vb.pp("label_embedding"))?),
            None => None,
        };
        let half = config.time_embed_dim / 2;
        let freqs: Vec<f32> = (0..half)
            .map(|i| (-(10_000f64.ln()) * i as f64 / half as f64).exp() as f32)
            .collect();
        let freqs = Tensor::from_vec(freqs, (1, half), vb.device())?;
        let input_freqs = if config.input_octaves > 0 {
            let values: Vec<f32> = (0..config.dim)
                .flat_map(|_| {
                    (0..config.input_octaves)
                        .map(|j| (2f64.powi(j as i32) * std::f64::consts::PI) as f32)
                })
                .collect();
            Some(Tensor::from_vec(
                values,
                (1, config.dim * config.input_octaves),
                vb.device(),
            )?)
        } else {
            None
        };
        Ok(ToyDenoiser {
            config: config.clone(),
            time_proj,
            input,
            blocks,
            output,
            label_embedding,
            freqs,
            input_freqs,
        })
    }

    /// The sizes this network was built with.
    pub fn config(&self) -> &ToyDenoiserConfig {
        &self.config
    }

    /// The device of the weights.
    pub fn device(&self) -> &Device {
        self.freqs.device()
    }

    /// Predicted ε: (B, D).
    /// - `x_t`: (B, D) f32
    /// - `timesteps`: (B,) any numeric dtype (training-step indices)
    /// - `labels`: (B,) u32 label indices, `num_labels` meaning null; `None` uses the null label
    ///   when the model has labels.
    pub fn forward(
        &self,
        x_t: &Tensor,
        timesteps: &Tensor,
        labels: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let (b, _d) = x_t.dims2()?;
        let t = timesteps.to_dtype(DType::F32)?.reshape((b, 1))?;
        let args = t.broadcast_mul(&self.freqs)?;
        let emb = Tensor::cat(&[args.sin()?, args.cos()?], D::Minus1)?;
        let mut c = candle_nn::ops::silu(&self.time_proj.forward(&emb)?)?;
        if let Some(table) = &self.label_embedding {
            let labels = match labels {
                Some(l) => l.to_dtype(DType::U32)?,
                None => {
                    let null = self.config.num_labels.unwrap_or(0) as u32;
                    Tensor::full(null, b, x_t.device())?
                }
            };
            c = (c + table.forward(&labels)?)?;
        }
        let features = match &self.input_freqs {
            Some(f) => {
                // (B, D) -> (B, D·F): coordinate c times every frequency, c-major.
                let octaves = self.config.input_octaves;
                let repeated = x_t
                    .unsqueeze(2)?
                    .broadcast_as((b, self.config.dim, octaves))?
                    .reshape((b, self.config.dim * octaves))?;
                let args = repeated.broadcast_mul(f)?;
                Tensor::cat(&[x_t, &args.sin()?, &args.cos()?], D::Minus1)?
            }
            None => x_t.clone(),
        };
        let mut h = self.input.forward(&features)?;
        for block in &self.blocks {
            let z = candle_nn::ops::silu(&(&h + &c)?)?;
            h = (h + block.forward(&z)?)?;
        }
        self.output.forward(&candle_nn::ops::silu(&h)?)
    }

    /// The null label index, when the model has labels.
    pub fn null_label_index(&self) -> Option<u32> {
        self.config.num_labels.map(|k| k as u32)
    }
}

/// Re-initialises every variable of `varmap` from `rng` with PyTorch's default initialisation
/// (candle cannot seed its CPU generator): `nn.Linear` weights (out, in) and biases uniform in
/// ±1/√in, `nn.Embedding` tables standard normal. Variables are visited in name order, and
/// values are drawn on the CPU and then moved, so the same seed gives the same weights on every
/// device.
pub fn seeded_init(varmap: &VarMap, rng: &mut ChaCha8Rng) -> Result<()> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| Error::Invalid("variable map lock poisoned".into()))?;
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    for name in names {
        let var = &data[name];
        let dims = var.dims().to_vec();
        let count: usize = dims.iter().product();
        let values: Vec<f32> = if name.ends_with("label_embedding.weight") {
            (0..count)
                .map(|_| rng.sample::<f32, _>(StandardNormal))
                .collect()
        } else {
            // A bias takes the fan-in of its layer's weight.
            let fan_in = match name.strip_suffix(".bias") {
                Some(prefix) => data
                    .get(&format!("{prefix}.weight"))
                    .and_then(|w| w.dims().get(1).copied()),
                None => dims.get(1).copied(),
            }
            .unwrap_or(1);
            let bound = 1.0 / (fan_in as f64).sqrt();
            (0..count)
                .map(|_| rng.random_range(-bound..bound) as f32)
                .collect()
        };
        let tensor = Tensor::from_vec(values, dims, &Device::Cpu)?.to_device(var.device())?;
        var.set(&tensor)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use candle_nn::VarMap;

    use super::*;

    #[test]
    fn shapes_and_label_handling() {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let model = ToyDenoiser::new(&ToyDenoiserConfig::new(2, Some(3)), vb).unwrap();
        let x = Tensor::zeros((5, 2), DType::F32, &Device::Cpu).unwrap();
        let t = Tensor::new(&[0u32, 1, 10, 100, 999], &Device::Cpu).unwrap();
        let out = model.forward(&x, &t, None).unwrap();
        assert_eq!(out.dims(), &[5, 2]);
        // No label means the null label.
        let null = Tensor::new(&[3u32; 5], &Device::Cpu).unwrap();
        let with_null = model.forward(&x, &t, Some(&null)).unwrap();
        let diff = (out - &with_null)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap();
        assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0);
        // A real label changes the output.
        let zero = Tensor::new(&[0u32; 5], &Device::Cpu).unwrap();
        let with_zero = model.forward(&x, &t, Some(&zero)).unwrap();
        let diff = (with_zero - with_null)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() > 0.0);
        assert_eq!(model.null_label_index(), Some(3));
        // 3 blocks + time_proj + input + output (weight and bias each) + the label table.
        assert_eq!(varmap.all_vars().len(), 13);
    }

    #[test]
    fn seeded_init_is_reproducible() {
        use rand::SeedableRng;
        let make = |seed| {
            let varmap = VarMap::new();
            let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
            let model = ToyDenoiser::new(&ToyDenoiserConfig::new(2, Some(2)), vb).unwrap();
            seeded_init(&varmap, &mut ChaCha8Rng::seed_from_u64(seed)).unwrap();
            let x = Tensor::ones((3, 2), DType::F32, &Device::Cpu).unwrap();
            let t = Tensor::new(&[1u32, 50, 500], &Device::Cpu).unwrap();
            model
                .forward(&x, &t, None)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap()
        };
        assert_eq!(make(1), make(1));
        assert_ne!(make(1), make(2));
    }

    #[test]
    fn odd_time_embedding_is_rejected() {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let mut config = ToyDenoiserConfig::new(1, None);
        config.time_embed_dim = 7;
        let err = ToyDenoiser::new(&config, vb).unwrap_err().to_string();
        assert!(err.contains("time_embed_dim"), "{err}");
    }
}
