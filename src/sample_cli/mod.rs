//! `dplan sample`: the whole planning pipeline once, on a scene file, with a trained model
//! folder — for looking at what the model proposes and what the planner makes of it.
//!
//! [`run_sample`] loads the model as a [`DiffusionSource`], builds a [`Planner`] with the
//! reference task's [`GeometricLabeller`] (the [`LabelScheme`] whose names are the model's mode
//! names; none if no scheme matches), validates the scene's observation, plans once and returns
//! a [`SampleReport`]: every candidate with its run-time mode, geometric label, scores and
//! rejection reasons, the modes, the choice, the plan and the timings. The report is written
//! as JSON (`--json`) and drawn by [`figure::draw_figure`] (`--png`).
//!
//! Reproducible: on the CPU a seeded run gives the same report; the JSON is byte-identical
//! with `--omit-timings` (wall-clock times differ between runs) and the PNG always is.

pub mod figure;
mod report;

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use crate::device::DeviceSpec;
use crate::diffusion::{SamplerKind, SamplerSettings};
use crate::model::{ForwardOptions, KernelChoice, ModelSpec, Precision, MODEL_YAML};
use crate::planning::{
    DiffusionSource, ModeRequest, ObservationError, PlanError, Planner, PlannerConfig,
};
use crate::robot::PlanarArm;
use crate::task::{GeometricLabeller, LabelScheme, Scene};

pub use report::{CandidateEntry, ModelInfo, SampleReport, SampleTimings};

/// Default DDIM steps (DESIGN.md §6).
pub const DEFAULT_DDIM_STEPS: usize = 10;
/// Default number of last reverse steps whose x̂0 is recorded for the hallucination score
/// (clamped to the number of steps).
pub const DEFAULT_RECORD_LAST_K: usize = 5;

/// `dplan sample` arguments.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct SampleArgs {
    /// Model folder (model.yaml + weights).
    #[arg(long)]
    pub model: PathBuf,
    /// Scene file (YAML: start_rad, goal_m, obstacles), e.g. config/scenes/blocked.yaml.
    #[arg(long)]
    pub scene: PathBuf,
    /// Requested mode: `any` or one of the model's mode names (classifier-free guidance).
    #[arg(long, default_value = "any")]
    pub mode: String,
    /// Base seed of the sampler (overrides the planner config's `seed`; default 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Candidates K (overrides the planner config's `num_samples`; default 32).
    #[arg(long)]
    pub num_samples: Option<usize>,
    /// Reverse process: `ddim` or `ddpm`.
    #[arg(long, default_value = "ddim")]
    pub sampler: SamplerKind,
    /// Reverse steps; default 10 for DDIM, the model's training timesteps for DDPM.
    #[arg(long)]
    pub steps: Option<usize>,
    /// DDIM eta (0: deterministic given the initial noise).
    #[arg(long, default_value_t = 0.0)]
    pub eta: f64,
    /// Classifier-free guidance scale for a requested mode (1: plain conditional).
    #[arg(long, default_value_t = 2.0)]
    pub guidance: f64,
    /// Last reverse steps whose predicted x̂0 enter the hallucination score; default
    /// min(5, steps).
    #[arg(long)]
    pub record_last_k: Option<usize>,
    /// Reject candidates whose x̂0 variance (normalised units) exceeds this (overrides the
    /// planner config; default: no check).
    #[arg(long)]
    pub hallucination_threshold: Option<f64>,
    /// Planner settings (YAML, `planning::PlannerConfig` keys); default: its defaults.
    #[arg(long)]
    pub planner: Option<PathBuf>,
    /// Device: cpu, cuda:N or auto. Only the CPU is byte-reproducible.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceSpec,
    /// The network's implementation: `auto` (the fused CPU kernels on the CPU), `generic`
    /// (candle ops; on the CPU with fused custom ops) or `tensor-ops` (candle's tensor ops
    /// only: on the CPU the computation that runs on CUDA).
    #[arg(long, value_enum, default_value = "auto")]
    pub kernels: KernelChoice,
    /// The network's float type: `f32`, or `f16` / `bf16` (generic candle ops; inputs,
    /// outputs and GroupNorm statistics stay f32).
    #[arg(long, value_enum, default_value = "f32")]
    pub precision: Precision,
    /// Write the two-panel figure (workspace, configuration space) to this PNG.
    #[arg(long)]
    pub png: Option<PathBuf>,
    /// Write the report (every candidate, modes, choice, plan, timings) to this JSON file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Leave the wall-clock timings out of the report, so that the JSON of a seeded CPU run
    /// is byte-identical across runs.
    #[arg(long)]
    pub omit_timings: bool,
}

/// Why `dplan sample` failed.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// Loading the model, scene or planner config, or writing an output.
    #[error(transparent)]
    Core(#[from] crate::Error),
    /// The scene is not a valid observation for the model's robot (e.g. goal out of reach).
    #[error("scene {scene} is not a valid observation for the model")]
    Observation {
        scene: PathBuf,
        #[source]
        source: ObservationError,
    },
    /// The pipeline failed.
    #[error(transparent)]
    Plan(#[from] PlanError),
}

/// The label scheme whose names are exactly `mode_names` (in order), if any.
pub fn matching_label_scheme(mode_names: &[String]) -> Option<LabelScheme> {
    [
        LabelScheme::Side,
        LabelScheme::Elbow,
        LabelScheme::SideElbow,
    ]
    .into_iter()
    .find(|s| s.names() == mode_names)
}

impl SampleArgs {
    /// A run of `model` on `scene` with every other argument at its default.
    pub fn new(model: impl Into<PathBuf>, scene: impl Into<PathBuf>) -> Self {
        SampleArgs {
            model: model.into(),
            scene: scene.into(),
            mode: "any".into(),
            seed: None,
            num_samples: None,
            sampler: SamplerKind::Ddim,
            steps: None,
            eta: 0.0,
            guidance: 2.0,
            record_last_k: None,
            hallucination_threshold: None,
            planner: None,
            device: DeviceSpec::Cpu,
            kernels: KernelChoice::Auto,
            precision: Precision::F32,
            png: None,
            json: None,
            omit_timings: false,
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

    /// The planner settings: the `--planner` file or the defaults, with the overrides.
    pub fn planner_config(&self) -> crate::Result<PlannerConfig> {
        let mut config = match &self.planner {
            None => PlannerConfig::default(),
            Some(path) => PlannerConfig::load(path)?,
        };
        if let Some(seed) = self.seed {
            config.seed = seed;
        }
        if let Some(k) = self.num_samples {
            config.num_samples = k;
        }
        if let Some(threshold) = self.hallucination_threshold {
            config.hallucination_threshold = Some(threshold);
        }
        config.validate()?;
        Ok(config)
    }
}

/// The sampler settings of the command-line options (`dplan sample`, `dplan eval`): `steps`
/// defaults to [`DEFAULT_DDIM_STEPS`] for DDIM and the model's training timesteps for DDPM,
/// `record_last_k` to [`DEFAULT_RECORD_LAST_K`] (at most `steps`).
pub fn sampler_settings(
    spec: &ModelSpec,
    kind: SamplerKind,
    steps: Option<usize>,
    eta: f64,
    guidance_scale: f64,
    record_last_k: Option<usize>,
) -> SamplerSettings {
    let steps = steps.unwrap_or(match kind {
        SamplerKind::Ddim => DEFAULT_DDIM_STEPS,
        SamplerKind::Ddpm => spec.scheduler.num_train_timesteps,
    });
    SamplerSettings {
        kind,
        inference_steps: steps,
        eta,
        guidance_scale,
        record_last_k: record_last_k.unwrap_or(DEFAULT_RECORD_LAST_K.min(steps)),
    }
}

/// Runs the pipeline once (see the module docs), writes `--json` and `--png` when given, and
/// returns the report.
pub fn run_sample(args: &SampleArgs) -> Result<SampleReport, SampleError> {
    let started = Instant::now();
    let scene = Scene::load(&args.scene)?;
    let spec = ModelSpec::load(&args.model.join(MODEL_YAML))?;
    let settings = args.sampler_settings(&spec);
    let config = args.planner_config()?;
    let mut source = DiffusionSource::load_with_precision(
        &args.model,
        args.device,
        settings.clone(),
        args.precision,
    )?;
    source.set_forward_options(ForwardOptions {
        kernels: args.kernels,
        ..ForwardOptions::default()
    });
    let spec = source.spec().clone();
    let arm = PlanarArm::new(spec.robot.clone())?;
    let mode_names = spec.modes.as_ref().map_or(Vec::new(), |m| m.names.clone());
    let scheme = matching_label_scheme(&mode_names);
    let mut planner = Planner::new(arm, Box::new(source), config.clone())?;
    if let Some(scheme) = scheme {
        planner = planner.with_labeller(Box::new(GeometricLabeller { scheme }));
    }
    let loaded = Instant::now();

    let request = ModeRequest::parse(&args.mode);
    let observation = scene
        .observation(planner.arm(), request.clone(), planner.mode_names())
        .map_err(|source| SampleError::Observation {
            scene: args.scene.clone(),
            source,
        })?;
    let outcome = planner.plan(&observation)?;
    let timings = SampleTimings {
        load_secs: loaded.duration_since(started).as_secs_f64(),
        plan: outcome.timings,
    };

    let report = SampleReport::new(report::ReportInputs {
        spec: &spec,
        model_dir: &args.model,
        scene: &scene,
        scene_file: &args.scene,
        mode_request: request.name().unwrap_or(crate::model::ANY_MODE),
        label_scheme: scheme,
        sampler: settings,
        planner: config,
        outcome: &outcome,
        timings: (!args.omit_timings).then_some(timings),
    });
    if let Some(path) = &args.json {
        report.write_json(path)?;
    }
    if let Some(path) = &args.png {
        figure::draw_figure(path, planner.arm(), &report)?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests;
