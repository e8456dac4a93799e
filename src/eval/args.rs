//! `dplan eval`'s arguments and the sampler and planner settings they make.

use std::path::PathBuf;

use clap::Args;

use super::{DEFAULT_GOAL_TOLERANCE_M, DEFAULT_HALLUCINATION_THRESHOLD};
use crate::device::DeviceSpec;
use crate::diffusion::{SamplerKind, SamplerSettings};
use crate::model::ModelSpec;
use crate::planning::PlannerConfig;
use crate::sample_cli::sampler_settings;

/// `dplan eval` arguments.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct EvalArgs {
    /// Model folder (model.yaml + weights).
    #[arg(long)]
    pub model: PathBuf,
    /// Feasible held-out scenes to evaluate.
    #[arg(long, default_value_t = 200)]
    pub scenes: usize,
    /// Seed of the held-out scenes, the expert and the sampler; must differ from the training
    /// data's seed (20261129 for the shipped model).
    #[arg(long)]
    pub seed: u64,
    /// Write a Markdown report with PNG plots to this folder (README.md).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Write the metrics and counts as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Data config whose robot, scene sampler and expert define the task.
    #[arg(long, default_value = "config/data_planar_arm.yaml")]
    pub data_config: PathBuf,
    /// Candidates K per planning call (overrides the planner config).
    #[arg(long, default_value_t = 32)]
    pub num_samples: usize,
    /// Reverse process: `ddim` or `ddpm`.
    #[arg(long, default_value = "ddim")]
    pub sampler: SamplerKind,
    /// Reverse steps; default 10 for DDIM, the model's training timesteps for DDPM.
    #[arg(long)]
    pub steps: Option<usize>,
    /// DDIM eta (0: deterministic given the initial noise).
    #[arg(long, default_value_t = 0.0)]
    pub eta: f64,
    /// Classifier-free guidance scale of mode requests (1: plain conditional).
    #[arg(long, default_value_t = 2.0)]
    pub guidance: f64,
    /// Last reverse steps whose x̂0 enter the hallucination score; default min(5, steps).
    #[arg(long)]
    pub record_last_k: Option<usize>,
    /// Planner settings (YAML, `planning::PlannerConfig` keys) instead of the defaults; the
    /// options below still override it.
    #[arg(long)]
    pub planner: Option<PathBuf>,
    /// The planner's goal tolerance, metres.
    #[arg(long, default_value_t = DEFAULT_GOAL_TOLERANCE_M)]
    pub goal_tolerance_m: f64,
    /// Reject candidates whose x̂0 variance exceeds this (model units).
    #[arg(long, default_value_t = DEFAULT_HALLUCINATION_THRESHOLD)]
    pub hallucination_threshold: f64,
    /// Do not reject by x̂0 variance.
    #[arg(long)]
    pub no_hallucination_filter: bool,
    /// Scenes of the random-weights row (the first ones; 0 skips the row).
    #[arg(long, default_value_t = 200)]
    pub baseline_scenes: usize,
    /// Scenes drawn in the report's gallery.
    #[arg(long, default_value_t = 12)]
    pub gallery: usize,
    /// Device: cpu, cuda:N or auto. Only the CPU is byte-reproducible.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceSpec,
}

impl EvalArgs {
    /// `scenes` scenes of `model` from `seed` with every other argument at its default.
    pub fn new(model: impl Into<PathBuf>, scenes: usize, seed: u64) -> Self {
        EvalArgs {
            model: model.into(),
            scenes,
            seed,
            report: None,
            json: None,
            data_config: PathBuf::from("config/data_planar_arm.yaml"),
            num_samples: 32,
            sampler: SamplerKind::Ddim,
            steps: None,
            eta: 0.0,
            guidance: 2.0,
            record_last_k: None,
            planner: None,
            goal_tolerance_m: DEFAULT_GOAL_TOLERANCE_M,
            hallucination_threshold: DEFAULT_HALLUCINATION_THRESHOLD,
            no_hallucination_filter: false,
            baseline_scenes: 200,
            gallery: 12,
            device: DeviceSpec::Cpu,
        }
    }

    /// The sampler settings for `spec` (defaults filled in).
    pub fn sampler_settings(&self, spec: &ModelSpec) -> SamplerSettings {
        sampler_settings(
            spec,
            self.sampler,
            self.steps,
            self.eta,
            self.guidance,
            self.record_last_k,
        )
    }

    /// The planner settings: `--planner` or the defaults, with the overrides and `seed`.
    pub fn planner_config(&self) -> crate::Result<PlannerConfig> {
        let mut config = match &self.planner {
            None => PlannerConfig::default(),
            Some(path) => PlannerConfig::load(path)?,
        };
        config.seed = self.seed;
        config.num_samples = self.num_samples;
        config.goal_tolerance_m = self.goal_tolerance_m;
        config.hallucination_threshold =
            (!self.no_hallucination_filter).then_some(self.hallucination_threshold);
        config.validate()?;
        Ok(config)
    }
}
