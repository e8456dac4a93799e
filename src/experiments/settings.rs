//! Every size and setting of `dplan modes`, in one place: `--quick` (CI) and the full run differ
//! only in training length, not in the protocol (2,500 evaluation samples, 3σ rule, seeds).

use serde::Serialize;

use super::data::DatasetKind;
use super::toy_model::ToyDenoiserConfig;
use super::toy_train::ToyTrainConfig;
use crate::diffusion::{
    BetaSchedule, PredictionType, SchedulerConfig, TimestepSpacing, VarianceType,
};

/// The settings of one run (recorded in the report and the JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModesSettings {
    /// True for `--quick`.
    pub quick: bool,
    /// The base seed (`--seed`); every draw derives its own seed from it and a tag.
    pub seed: u64,
    /// Training points per data set.
    pub train_points: usize,
    /// Samples per method and data set for the metrics (VEEGAN protocol: 2,500).
    pub eval_samples: usize,
    /// Network sizes (the dimension and label count are set per data set).
    pub model_width: usize,
    /// Residual blocks of the network.
    pub model_hidden_layers: usize,
    /// Sinusoidal timestep embedding size.
    pub time_embed_dim: usize,
    /// Octaves of input Fourier features.
    pub input_octaves: usize,
    /// Training of the three main data sets' (labelled) models.
    pub train: ToyTrainConfig,
    /// Training of each model of the 1-D distance sweep (unlabelled).
    pub sweep_train: ToyTrainConfig,
    /// Noise schedule shared by training and sampling.
    pub scheduler: SchedulerConfig,
    /// DDPM inference steps (all training timesteps: the full ancestral chain).
    pub ddpm_steps: usize,
    /// DDIM samplers to compare, (inference steps, eta): the node's default (10 steps, eta 0),
    /// the full chain (100, eta 0) and the stochastic variant (10, eta 1).
    pub ddim_variants: Vec<(usize, f64)>,
    /// x̂0-variance window: the last k DDPM steps (Aithal et al.: last 10 of 1000).
    pub x0_variance_last_k: usize,
    /// Fraction of the calibration draw's in-support samples the filter threshold keeps.
    pub filter_keep_in_support: f64,
    /// Classifier-free guidance scales for the conditional experiment (diffusers' convention:
    /// 1 = plain conditional).
    pub guidance_scales: Vec<f64>,
    /// Conditional samples drawn per requested mode, per data set: (1-D, ring, grid).
    pub conditional_samples_per_mode: [usize; 3],
    /// Distances between the two 1-D modes of the sweep (data units; σ stays 0.05).
    pub sweep_distances: Vec<f64>,
    /// Samples per sweep point (more than the 2,500 of the main protocol in the full run: the
    /// fractions there are small, and their confidence intervals are reported).
    pub sweep_samples: usize,
    /// The sweep distance whose training run is also evaluated at intermediate steps.
    pub steps_sweep_distance: f64,
    /// Steps at which that run is evaluated (the last is the end of training).
    pub steps_sweep_checkpoints: Vec<usize>,
    /// Worker threads for independent jobs (data sets, sweep points).
    pub threads: usize,
}

impl ModesSettings {
    /// The settings for `--quick` (true) or the full run (false).
    pub fn new(quick: bool, seed: u64) -> ModesSettings {
        let (steps, sweep_steps) = if quick { (1500, 1200) } else { (4000, 3000) };
        let checkpoints = if quick {
            vec![150, 300, 600, 1200]
        } else {
            vec![375, 750, 1500, 3000]
        };
        let train = |steps: usize, label_dropout: f64| ToyTrainConfig {
            steps,
            batch_size: 512,
            learning_rate: 2e-3,
            weight_decay: 1e-4,
            label_dropout,
            warmup_steps: steps / 20,
        };
        ModesSettings {
            quick,
            seed,
            train_points: 20_000,
            eval_samples: 2_500,
            model_width: 128,
            model_hidden_layers: 3,
            time_embed_dim: 64,
            input_octaves: 6,
            train: train(steps, 0.2),
            sweep_train: train(sweep_steps, 0.0),
            scheduler: SchedulerConfig {
                num_train_timesteps: 100,
                beta_start: 1e-4,
                beta_end: 0.02,
                beta_schedule: BetaSchedule::SquaredcosCapV2,
                clip_sample: false,
                clip_sample_range: 1.0,
                prediction_type: PredictionType::Epsilon,
                variance_type: VarianceType::FixedSmall,
                set_alpha_to_one: true,
                steps_offset: 0,
                timestep_spacing: TimestepSpacing::Leading,
            },
            ddpm_steps: 100,
            ddim_variants: vec![(10, 0.0), (100, 0.0), (10, 1.0)],
            x0_variance_last_k: 10,
            filter_keep_in_support: 0.95,
            guidance_scales: vec![1.0, 3.0],
            conditional_samples_per_mode: [200, 100, 40],
            sweep_distances: if quick {
                vec![0.5, 1.0, 2.0, 3.0]
            } else {
                vec![0.5, 0.75, 1.0, 1.5, 2.0, 3.0]
            },
            sweep_samples: if quick { 2_500 } else { 10_000 },
            steps_sweep_distance: 1.0,
            steps_sweep_checkpoints: checkpoints,
            threads: 2,
        }
    }

    /// The network for a data set of dimension `dim` with `num_labels` labels (or none).
    pub fn model(&self, dim: usize, num_labels: Option<usize>) -> ToyDenoiserConfig {
        ToyDenoiserConfig {
            dim,
            width: self.model_width,
            hidden_layers: self.model_hidden_layers,
            time_embed_dim: self.time_embed_dim,
            input_octaves: self.input_octaves,
            num_labels,
        }
    }

    /// The GMM component counts fitted to a data set: the true count, then fewer.
    pub fn gmm_components(kind: DatasetKind) -> [usize; 2] {
        match kind {
            DatasetKind::Line3 => [3, 2],
            DatasetKind::Ring8 => [8, 4],
            DatasetKind::Grid25 => [25, 9],
        }
    }

    /// Conditional samples per mode for a data set.
    pub fn conditional_samples(&self, kind: DatasetKind) -> usize {
        match kind {
            DatasetKind::Line3 => self.conditional_samples_per_mode[0],
            DatasetKind::Ring8 => self.conditional_samples_per_mode[1],
            DatasetKind::Grid25 => self.conditional_samples_per_mode[2],
        }
    }
}

/// A seed for one draw, derived from the base seed and a tag (SplitMix64 over an FNV-1a hash),
/// so that each draw is independent of the order in which jobs run.
pub fn derive_seed(base: u64, tag: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in tag.bytes() {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = base ^ h;
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_valid_and_seeds_differ_by_tag() {
        for quick in [true, false] {
            let s = ModesSettings::new(quick, 0);
            s.scheduler.validate().unwrap();
            assert_eq!(s.ddpm_steps, s.scheduler.num_train_timesteps);
            assert_eq!(s.steps_sweep_checkpoints.last(), Some(&s.sweep_train.steps));
            assert!(s.sweep_distances.contains(&s.steps_sweep_distance));
        }
        assert_ne!(derive_seed(0, "a"), derive_seed(0, "b"));
        assert_ne!(derive_seed(0, "a"), derive_seed(1, "a"));
        assert_eq!(derive_seed(5, "x"), derive_seed(5, "x"));
    }
}
