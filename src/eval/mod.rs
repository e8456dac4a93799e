//! `dplan eval`: how well a model folder plans on held-out scenes of the reference task, judged
//! by an oracle that is not the planner's filter, in two columns (the raw network and the
//! pipeline) and three rows (the model, the same network with random weights, the expert).
//!
//! **Held-out scenes.** Scenes are drawn with the data config's scene sampler and robot
//! (`--data-config`, default `config/data_planar_arm.yaml`) from a ChaCha8 stream seeded with
//! `--seed`, which must differ from the data config's seed and the model's recorded
//! `training.data_seed`: the scene distribution is the training distribution, the scenes are
//! new. For each draw the expert ([`crate::task::generate::expert_paths`]) gives every
//! homotopy class's path toward every goal configuration; a path counts when it is
//! collision-free at zero clearance and has a geometric label ([`crate::task::label_path`]: the
//! route around the obstacle and the elbow branch), as `dplan generate` keeps them. A draw with
//! no such path is **infeasible** and skipped; `--scenes N` counts feasible scenes. The
//! **expert modes** of a scene are the distinct labels of its paths; a scene has **both
//! routes** when they include a `left` and a `right` one.
//!
//! **Planning.** Per row one [`Planner`] with the shipped node's settings (K = 32, DDIM 10
//! steps, guidance 2, `goal_tolerance_m` 0.02, the x̂0 filter as `--hallucination-threshold`;
//! everything else [`PlannerConfig::default`] or `--planner FILE`), sampling seed `--seed + n`
//! for call `n`, memory reset before every call. Per scene: one **unconditioned** call, then
//! one call per expert mode requesting it.
//!
//! **Rows.** `model`: the model folder. `random_weights`: the same `model.yaml` with seeded
//! random weights (the floor; on the first `--baseline-scenes` scenes). `expert`: the scene's
//! expert paths as the candidates (those of the requested mode on a request) — the ceiling; its
//! coverage and request accuracy are 1 by construction, its motion ratio is the pipeline's
//! timing of the expert's own path.
//!
//! **Ground truth** is the [`oracle`] (own geometry, continuous swept test, 1 cm goal
//! tolerance, the timed curve checked every 0.5 ms and continuously, velocities, accelerations
//! and jerk from the cubic's exact derivatives). It shares no code with the planner's filter.
//!
//! **Columns** ([`metrics::ColumnMetrics`]): **raw** judges the candidates as the network
//! sampled them (no anchoring at the start, no goal snap, no repair, no filter): a raw sample
//! is valid when the oracle finds it executable as it is (first waypoint within 0.02 rad of
//! the start, last within 1 cm of the goal, collision-free, within limits). **Pipeline** judges
//! what the node executes: candidates after anchoring, snap and repair that the planner keeps
//! and the oracle finds good, and the timed plan it chose. Per column: valid rate, collision
//! rate, goal error (p50, p90), mode coverage (scenes with >= 2 expert modes where every mode
//! is offered by a usable candidate), per-scene coverage on scenes with both routes (mean of
//! the fraction of expert modes offered), per-scene `KL(P_expert || Q)` (mean, p90;
//! [`metrics::scene_mode_kl`], `Q` from all raw samples or from the kept candidates) and
//! request accuracy (raw: fraction of the K samples of a request with the requested label;
//! pipeline: requests whose executed plan succeeds in the requested mode).
//!
//! **Executed plans** ([`metrics::ExecutedMetrics`]): success rate (the unconditioned call's
//! plan succeeds by the oracle; no plan is a failure), chosen collisions, and the **motion
//! ratios**: plan duration over the duration of the fastest expert path of the same label,
//! timed from rest by the same time parameterisation within the same limits, and plan path
//! length over the shortest expert path of that label (median and p90).
//!
//! **The x̂0-variance filter** is studied in [`hallucination`]: how many candidates lie between
//! the expert's modes and what the score, calibrated on half of the scenes, catches beyond the
//! collision check on the other half.
//!
//! Deterministic: on the CPU the same model, arguments and seed give the same report except
//! the latencies.

mod args;
mod evaluator;
mod figures;
pub mod hallucination;
pub mod metrics;
pub mod oracle;
mod report;
mod scenes;
pub mod sources;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::diffusion::SamplerSettings;
use crate::model::{ModelSpec, MODEL_YAML};
use crate::planning::{
    CandidateSource, DiffusionSource, ObservationError, PlanError, Planner, PlannerConfig,
    RejectReason,
};
use crate::robot::{JointPath, PlanarArm};
use crate::sample_cli::matching_label_scheme;
use crate::task::generate::DataConfig;
use crate::task::{GeometricLabeller, LabelScheme, Scene};

pub use args::EvalArgs;
pub use evaluator::{expert_references, ExpertReference};
pub use hallucination::HallucinationStudy;
pub use metrics::{
    auroc, percentile, scene_mode_kl, CandidateOutcome, ChosenOutcome, RequestOutcome, RowMetrics,
    SceneOutcome, KL_SMOOTHING,
};
pub use oracle::{Oracle, ORACLE_GOAL_TOLERANCE_M};
pub use scenes::{held_out_scenes, ExpertMode, HeldOutScene, HeldOutSet};

/// The shipped node's goal tolerance (`config/planar_arm.yaml`), metres.
pub const DEFAULT_GOAL_TOLERANCE_M: f64 = 0.02;
/// The shipped node's hallucination threshold (`config/planar_arm.yaml`), x̂0 variance.
pub const DEFAULT_HALLUCINATION_THRESHOLD: f64 = 0.05;
/// Seed of the random-weights row's weights.
pub const RANDOM_WEIGHTS_SEED: u64 = 1;

/// Why `dplan eval` failed.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// Loading the model or a config, bad arguments, or writing an output.
    #[error(transparent)]
    Core(#[from] crate::Error),
    /// A held-out scene is not a valid observation for the model (a sampler/model mismatch).
    #[error("held-out scene (draw {draw}) is not a valid observation for the model")]
    Observation {
        draw: usize,
        #[source]
        source: ObservationError,
    },
    /// The pipeline failed.
    #[error(transparent)]
    Plan(#[from] PlanError),
}

/// Progress of [`run_with_progress`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvalProgress {
    /// Drawing scenes and running the expert: `feasible` of `target` found in `drawn` draws.
    Scenes {
        drawn: usize,
        feasible: usize,
        target: usize,
    },
    /// Planning row `row`: `done` of `total` scenes evaluated.
    Planning {
        row: String,
        done: usize,
        total: usize,
    },
}

/// The model that was evaluated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalModel {
    pub name: String,
    /// The folder as given.
    pub dir: String,
    /// Optimiser steps of the weights (`training.steps`).
    pub training_steps: u64,
    pub training_data_seed: Option<u64>,
    pub weights_sha256: String,
    pub mode_names: Vec<String>,
}

/// Shares per category (the model's mode names, then "no label"), each the mean over scenes of
/// that scene's fraction (model row).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModeHistogram {
    /// Category names: the mode names, then `no_label`.
    pub names: Vec<String>,
    /// The expert's paths.
    pub expert: Vec<f64>,
    /// The raw samples of the unconditioned calls.
    pub candidates: Vec<f64>,
    /// Kept candidates (fractions of K, so they sum to the kept fraction).
    pub kept_candidates: Vec<f64>,
}

/// Latency percentiles (ms) split by call kind.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySplit {
    pub unconditioned_p50: Option<f64>,
    pub unconditioned_p99: Option<f64>,
    pub requested_p50: Option<f64>,
    pub requested_p99: Option<f64>,
}

/// One candidate in the gallery.
#[derive(Debug, Clone, PartialEq)]
pub struct GalleryCandidate {
    pub path: JointPath,
    pub label: Option<usize>,
    pub kept: bool,
    pub good: bool,
}

/// A scene of the report's gallery: the unconditioned call's candidates and the expert's paths.
#[derive(Debug, Clone, PartialEq)]
pub struct GalleryScene {
    pub draw: usize,
    pub scene: Scene,
    pub expert: Vec<ExpertMode>,
    pub candidates: Vec<GalleryCandidate>,
    pub chosen: Option<usize>,
    pub success: bool,
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowReport {
    /// `model`, `random_weights` or `expert`.
    pub name: String,
    #[serde(flatten)]
    pub metrics: RowMetrics,
    pub latency_split_ms: LatencySplit,
    pub planning_secs: f64,
}

/// The result of an evaluation (the `--json` file).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    pub seed: u64,
    /// Draws skipped because the expert found no path.
    pub infeasible_scenes: usize,
    pub model: EvalModel,
    pub data_config: String,
    pub label_scheme: LabelScheme,
    pub sampler: SamplerSettings,
    pub planner: PlannerConfig,
    /// `model` first, then `random_weights` (when run) and `expert`.
    pub rows: Vec<RowReport>,
    /// The x̂0-variance study on the model row.
    pub hallucination: HallucinationStudy,
    pub mode_histogram: ModeHistogram,
    /// Wall-clock seconds drawing scenes with the expert.
    pub expert_secs: f64,
    /// Per-scene outcomes of the model row, in scene order (not in the JSON: its aggregates
    /// are).
    #[serde(skip)]
    pub per_scene: Vec<SceneOutcome>,
    /// The first `--gallery` scenes of the model row, for the report.
    #[serde(skip)]
    pub gallery: Vec<GalleryScene>,
}

impl EvalReport {
    /// The JSON of the report (pretty).
    pub fn to_json(&self) -> crate::Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| crate::Error::Invalid(e.to_string()))
    }

    /// A short text summary.
    pub fn summary(&self) -> String {
        report::summary(self)
    }

    /// The row called `name`.
    pub fn row(&self, name: &str) -> Option<&RowReport> {
        self.rows.iter().find(|r| r.name == name)
    }

    /// The model row (always present).
    pub fn model_row(&self) -> &RowMetrics {
        &self.rows[0].metrics
    }
}

/// Runs the evaluation (see the module docs) without progress output.
pub fn run(args: &EvalArgs) -> Result<EvalReport, EvalError> {
    run_with_progress(args, &mut |_| {})
}

/// What [`run_row`] returns: the row, its per-scene outcomes and its gallery.
type RowRun = (RowReport, Vec<SceneOutcome>, Vec<GalleryScene>);

/// Everything the rows share.
struct RowContext<'a> {
    arm: &'a PlanarArm,
    oracle: &'a Oracle,
    scheme: LabelScheme,
    mode_names: &'a [String],
    config: &'a PlannerConfig,
    scenes: &'a [HeldOutScene],
    references: &'a [Vec<ExpertReference>],
    gallery: usize,
}

fn run_row(
    name: &str,
    source: Box<dyn CandidateSource>,
    expert_paths: Option<sources::ExpertPaths>,
    count: usize,
    context: &RowContext<'_>,
    progress: &mut dyn FnMut(EvalProgress),
) -> Result<RowRun, EvalError> {
    let (recording, last) = sources::Recording::new(source);
    let labeller = GeometricLabeller {
        scheme: context.scheme,
    };
    let planner = Planner::new(
        context.arm.clone(),
        Box::new(recording),
        context.config.clone(),
    )?
    .with_labeller(Box::new(labeller));
    let mut runner = evaluator::RowRunner {
        arm: context.arm,
        oracle: context.oracle,
        labeller,
        planner,
        last,
        expert_paths,
        mode_names: context.mode_names,
        unconditioned_ms: Vec::new(),
        requested_ms: Vec::new(),
    };
    let started = Instant::now();
    let count = count.min(context.scenes.len());
    let mut per_scene = Vec::with_capacity(count);
    let mut gallery = Vec::new();
    for (i, scene) in context.scenes.iter().take(count).enumerate() {
        let (outcome, shown) = runner.scene(scene, &context.references[i], i < context.gallery)?;
        per_scene.push(outcome);
        gallery.extend(shown);
        progress(EvalProgress::Planning {
            row: name.to_string(),
            done: i + 1,
            total: count,
        });
    }
    let (u, r) = (&runner.unconditioned_ms, &runner.requested_ms);
    let row = RowReport {
        name: name.to_string(),
        metrics: RowMetrics::compute(&per_scene),
        latency_split_ms: LatencySplit {
            unconditioned_p50: percentile(u, 0.5),
            unconditioned_p99: percentile(u, 0.99),
            requested_p50: percentile(r, 0.5),
            requested_p99: percentile(r, 0.99),
        },
        planning_secs: started.elapsed().as_secs_f64(),
    };
    Ok((row, per_scene, gallery))
}

/// Runs the evaluation, calling `progress` after each scene draw and each evaluated scene;
/// writes `--json` and `--report` when given.
pub fn run_with_progress(
    args: &EvalArgs,
    progress: &mut dyn FnMut(EvalProgress),
) -> Result<EvalReport, EvalError> {
    if args.scenes == 0 {
        return Err(crate::Error::config("scenes", "must be >= 1, found 0").into());
    }
    let data_config = DataConfig::load(&args.data_config)?;
    let spec = ModelSpec::load(&args.model.join(MODEL_YAML))?;
    check_seed(args.seed, &data_config, &spec)?;
    if spec.robot != data_config.robot {
        return Err(crate::Error::config(
            "data_config.robot",
            format!(
                "{} describes another robot than the model's model.yaml ({} vs {})",
                args.data_config.display(),
                data_config.robot.name,
                spec.robot.name
            ),
        )
        .into());
    }
    let mode_names = spec.modes.as_ref().map_or(Vec::new(), |m| m.names.clone());
    let scheme = matching_label_scheme(&mode_names).ok_or_else(|| {
        crate::Error::config(
            "modes.names",
            format!(
                "eval needs a model whose mode names are a label scheme's (e.g. {:?}), found \
                 {mode_names:?}",
                LabelScheme::SideElbow.names()
            ),
        )
    })?;
    let settings = args.sampler_settings(&spec);
    let config = args.planner_config()?;

    let started = Instant::now();
    let held_out = held_out_scenes(&data_config, scheme, args.seed, args.scenes, &mut |set| {
        progress(EvalProgress::Scenes {
            drawn: set.scenes.len() + set.infeasible,
            feasible: set.scenes.len(),
            target: args.scenes,
        })
    })?;
    let expert_secs = started.elapsed().as_secs_f64();

    let arm = PlanarArm::new(spec.robot.clone())?;
    let oracle = Oracle::new(&spec.robot);
    let references: Vec<Vec<ExpertReference>> = held_out
        .scenes
        .iter()
        .map(|s| expert_references(&arm, s, &config.timing))
        .collect();
    let context = RowContext {
        arm: &arm,
        oracle: &oracle,
        scheme,
        mode_names: &mode_names,
        config: &config,
        scenes: &held_out.scenes,
        references: &references,
        gallery: args.gallery,
    };
    let all = held_out.scenes.len();
    let source = DiffusionSource::load(&args.model, args.device, settings.clone())?;
    let terms = source.condition_terms().to_vec();
    let (model_row, per_scene, gallery) =
        run_row("model", Box::new(source), None, all, &context, progress)?;
    let mut rows = vec![model_row];
    if args.baseline_scenes > 0 {
        let dir = std::env::temp_dir().join(format!(
            "dplan-eval-random-weights-{}-{}",
            std::process::id(),
            args.seed
        ));
        sources::random_weights_copy(&args.model, &dir, RANDOM_WEIGHTS_SEED)?;
        let source = DiffusionSource::load(&dir, args.device, settings.clone());
        let _ = std::fs::remove_dir_all(&dir);
        let source = source?;
        let context = RowContext {
            gallery: 0,
            ..context
        };
        let (row, _, _) = run_row(
            "random_weights",
            Box::new(source),
            None,
            args.baseline_scenes,
            &context,
            progress,
        )?;
        rows.push(row);
    }
    let (expert_source, expert_paths) = sources::ExpertSource::new(terms, mode_names.clone());
    let context = RowContext {
        gallery: 0,
        ..context
    };
    let (row, _, _) = run_row(
        "expert",
        Box::new(expert_source),
        Some(expert_paths),
        all,
        &context,
        progress,
    )?;
    rows.push(row);

    let report = EvalReport {
        seed: args.seed,
        infeasible_scenes: held_out.infeasible,
        model: EvalModel {
            name: spec.name.clone(),
            dir: args.model.display().to_string(),
            training_steps: spec.training.steps,
            training_data_seed: spec.training.data_seed,
            weights_sha256: spec.weights.sha256.clone(),
            mode_names: mode_names.clone(),
        },
        data_config: args.data_config.display().to_string(),
        label_scheme: scheme,
        sampler: settings,
        hallucination: hallucination::study(&per_scene, config.cluster_threshold_rad),
        planner: config,
        rows,
        mode_histogram: mode_histogram(&per_scene, &mode_names),
        expert_secs,
        per_scene,
        gallery,
    };
    if let Some(path) = &args.json {
        let text = report.to_json()?;
        crate::error::write_file(path, text)?;
    }
    if let Some(dir) = &args.report {
        report::write_report(dir, &report, &arm, &args.model)?;
    }
    Ok(report)
}

/// The evaluation seed must not be the training data's.
fn check_seed(seed: u64, data_config: &DataConfig, spec: &ModelSpec) -> crate::Result<()> {
    let training = [Some(data_config.seed), spec.training.data_seed];
    if training.contains(&Some(seed)) {
        return Err(crate::Error::config(
            "seed",
            format!(
                "{seed} is the training data's seed (data config {}, model {:?}); held-out \
                 scenes need another seed",
                data_config.seed, spec.training.data_seed
            ),
        ));
    }
    Ok(())
}

/// The per-category shares (see [`ModeHistogram`]).
fn mode_histogram(scenes: &[SceneOutcome], mode_names: &[String]) -> ModeHistogram {
    let m = mode_names.len();
    let mut expert = vec![0.0; m + 1];
    let mut candidates = vec![0.0; m + 1];
    let mut kept = vec![0.0; m + 1];
    let category = |label: Option<usize>| label.filter(|&l| l < m).unwrap_or(m);
    for scene in scenes {
        let total: usize = scene.expert_counts.iter().sum();
        for (share, &n) in expert.iter_mut().zip(&scene.expert_counts) {
            *share += n as f64 / total.max(1) as f64;
        }
        let k = scene.candidates.len().max(1) as f64;
        for c in &scene.candidates {
            candidates[category(c.raw_label)] += 1.0 / k;
            if c.kept {
                kept[category(c.label)] += 1.0 / k;
            }
        }
    }
    let n = scenes.len().max(1) as f64;
    let mean = |v: Vec<f64>| v.into_iter().map(|x| x / n).collect();
    let mut names = mode_names.to_vec();
    names.push("no_label".into());
    ModeHistogram {
        names,
        expert: mean(expert),
        candidates: mean(candidates),
        kept_candidates: mean(kept),
    }
}

/// The short name of a rejection reason (its JSON `kind`).
pub fn reason_kind(reason: &RejectReason) -> &'static str {
    match reason {
        RejectReason::NonFinite => "non_finite",
        RejectReason::StartError { .. } => "start_error",
        RejectReason::JointLimit { .. } => "joint_limit",
        RejectReason::Collision { .. } => "collision",
        RejectReason::Clearance { .. } => "clearance",
        RejectReason::VerificationFailed { .. } => "verification_failed",
        RejectReason::GoalError { .. } => "goal_error",
        RejectReason::Hallucination { .. } => "hallucination",
        RejectReason::WrongMode { .. } => "wrong_mode",
        RejectReason::TimedPathJointLimit { .. } => "timed_path_joint_limit",
        RejectReason::TimedPathCollision { .. } => "timed_path_collision",
    }
}

/// Reads the model folder's `loss.csv` (`step,loss,...` with a header) when present: (step,
/// loss) pairs.
pub fn read_loss_curve(model_dir: &Path) -> crate::Result<Option<Vec<(f64, f64)>>> {
    let path = model_dir.join("loss.csv");
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| crate::Error::io(&path, e))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let column = |name: &str| {
        header.iter().position(|h| h.trim() == name).ok_or_else(|| {
            crate::Error::config(
                format!("{}: header", path.display()),
                format!("needs a `{name}` column, found {header:?}"),
            )
        })
    };
    let (step, loss) = (column("step")?, column("loss")?);
    let mut points = Vec::new();
    for (i, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        let value = |c: usize| fields.get(c).and_then(|v| v.trim().parse::<f64>().ok());
        match (value(step), value(loss)) {
            (Some(s), Some(l)) => points.push((s, l)),
            _ => {
                return Err(crate::Error::Invalid(format!(
                    "{} line {}: expected numbers in `step` and `loss`, found `{line}`",
                    path.display(),
                    i + 2
                )))
            }
        }
    }
    Ok(Some(points))
}
