//! `dplan eval`: how well a model folder plans on held-out scenes of the reference task.
//!
//! **Held-out scenes.** Scenes are drawn with the data config's scene sampler and robot
//! (`--data-config`, default `config/data_planar_arm.yaml`, the config the shipped model was
//! trained on) from a ChaCha8 stream seeded with `--seed`, which must differ from the data
//! config's seed and the model's recorded `training.data_seed` (the shipped model's data seed is
//! 20261129): the scene distribution is the training distribution, the scenes are new. For each
//! draw the expert ([`crate::task::generate::expert_paths`], the data config's grid, clearance
//! and length ratio) gives every homotopy class's path; a path counts when it is collision-free
//! at zero clearance and has a geometric label ([`crate::task::label_path`] against
//! [`crate::task::labelling_obstacle`], named under the [`LabelScheme`] whose names are the
//! model's mode names), as `dplan generate` keeps them. A draw with no such path is
//! **infeasible** (e.g. the obstacle blocks the shoulder's swing within the joint limits) and
//! skipped; `--scenes N` counts feasible scenes; the report gives the number skipped. The
//! **expert modes** of a scene are the distinct labels of its paths; the **expert
//! distribution** gives each label its share of the scene's expert paths (the proportions of
//! the training data for that scene).
//!
//! **Planning.** One [`Planner`] with the shipped node's settings (`config/planar_arm.yaml`):
//! K = 32 candidates, DDIM 10 steps (eta 0), guidance scale 2, the x̂0 variance over the last
//! 5 steps, `goal_tolerance_m` 0.02 and `hallucination_threshold` 0.05; every other value is
//! [`PlannerConfig::default`] (or `--planner FILE`). Sampling seeds: the planner's base seed is
//! `--seed`, call `n` samples with `seed + n`. The selection memory is reset before every call
//! (scenes are unrelated). Per scene: one call without a mode request (the **unconditioned
//! call**), then one call per expert mode requesting it (classifier-free guidance on its label).
//!
//! **Ground truth of a path** ([`check_path`], independent of the planner's filter settings): a
//! path (straight joint-space segments between waypoints) is **good** when it is finite, every
//! waypoint is within the joint limits, the swept arm (link capsules) never touches an obstacle
//! (zero clearance, [`crate::robot::PlanarArm::path_collision`]) and the end effector ends within
//! 2 cm ([`SUCCESS_GOAL_TOLERANCE_M`]) of the goal; otherwise **bad**. In-between ("mode
//! interpolation") paths either cut through the obstacle or end between the goal's IK
//! branches, so they are bad by this definition without reference to any mode label.
//! Candidates are judged as the planner scores them: anchored at the start (and bent onto the
//! goal), and repaired where `PlannerConfig::repair` bent them; `counts.collisions_repaired`
//! says how many collided as sampled.
//!
//! **Metrics** (JSON keys; [`Metrics`]):
//! - `success_rate`: scenes where the unconditioned call chose a path, and both the chosen path
//!   and its timed plan (resampled every 5 ms) are good / scenes. No valid candidate (hold) is
//!   a failure.
//! - `chosen_collisions`: scenes whose chosen path or timed plan collides.
//! - `valid_candidate_rate`: candidates the planner keeps / all, over the unconditioned calls.
//! - `mode_coverage`: over scenes with >= 2 expert modes, the fraction where for every expert
//!   mode some **kept** candidate of the unconditioned call has its label. Only kept candidates
//!   count: a mode offered only by colliding paths is not available to the planner.
//! - `mode_kl`: mean over scenes of `KL(P_expert || Q_candidates)` in nats ([`scene_mode_kl`]):
//!   forward KL (it punishes missing expert modes), over the categories "each mode name" and
//!   "no label", with `Q` from **all** K candidates of the unconditioned call (the model's
//!   distribution, before the filter) smoothed by +0.5 per category. With K = 32 and 4 names a
//!   perfect sampler scores about 0.045 on a one-mode scene (the smoothing's floor), not 0.
//! - `mode_request_accuracy`: mean over (scene, expert mode) requests of the fraction of the K
//!   candidates (all, kept or not) whose label is the requested one.
//! - `filter_recall`: bad candidates the planner rejects (any reason) / bad candidates;
//!   `filter_keep_rate`: good candidates it keeps / good candidates; both over the
//!   unconditioned calls (requested calls also reject other modes on purpose).
//! - `latency_ms_p50`, `latency_ms_p99`: nearest-rank percentiles of the wall-clock time of
//!   every planning call (`Planner::plan`, unconditioned and requested), milliseconds.
//!
//! Deterministic: on the CPU the same model, arguments and seed give the same report except
//! the latencies.

mod args;
mod figures;
mod metrics;
mod report;
mod scenes;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::diffusion::SamplerSettings;
use crate::model::{ModelSpec, MODEL_YAML};
use crate::planning::{
    DiffusionSource, ModeRequest, ObservationError, PlanError, PlanOutcome, Planner, PlannerConfig,
    RejectReason,
};
use crate::robot::{JointPath, PlanarArm};
use crate::sample_cli::matching_label_scheme;
use crate::task::generate::DataConfig;
use crate::task::{GeometricLabeller, LabelScheme, Scene};

pub use args::EvalArgs;
pub use metrics::{
    check_path, hallucination_auroc, percentile, scene_mode_kl, CandidateOutcome, ChosenOutcome,
    MetricCounts, Metrics, PathCheck, RequestOutcome, SceneOutcome, KL_SMOOTHING,
    SUCCESS_GOAL_TOLERANCE_M,
};
pub use scenes::{held_out_scenes, ExpertMode, HeldOutScene, HeldOutSet};

/// The shipped node's goal tolerance (`config/planar_arm.yaml`), metres.
pub const DEFAULT_GOAL_TOLERANCE_M: f64 = 0.02;
/// The shipped node's hallucination threshold (`config/planar_arm.yaml`), x̂0 variance.
pub const DEFAULT_HALLUCINATION_THRESHOLD: f64 = 0.05;
/// Step at which a chosen timed plan is re-checked, seconds.
pub const PLAN_CHECK_DT_SECS: f64 = 0.005;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalProgress {
    /// Drawing scenes and running the expert: `feasible` of `target` found in `drawn` draws.
    Scenes {
        drawn: usize,
        feasible: usize,
        target: usize,
    },
    /// Planning: `done` of `total` scenes evaluated.
    Planning { done: usize, total: usize },
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
/// that scene's fraction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModeHistogram {
    /// Category names: the mode names, then `no_label`.
    pub names: Vec<String>,
    /// The expert's paths.
    pub expert: Vec<f64>,
    /// All candidates of the unconditioned calls.
    pub candidates: Vec<f64>,
    /// Kept candidates (fractions of K, so they sum to the valid candidate rate).
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

/// The result of an evaluation (the `--json` file).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    #[serde(flatten)]
    pub metrics: Metrics,
    pub seed: u64,
    /// Draws skipped because the expert found no path.
    pub infeasible_scenes: usize,
    pub model: EvalModel,
    pub data_config: String,
    pub label_scheme: LabelScheme,
    pub sampler: SamplerSettings,
    pub planner: PlannerConfig,
    pub counts: MetricCounts,
    pub mode_histogram: ModeHistogram,
    pub latency_split_ms: LatencySplit,
    /// Wall-clock seconds: drawing scenes with the expert, and planning.
    pub expert_secs: f64,
    pub planning_secs: f64,
    /// Per-scene outcomes, in scene order (not in the JSON: its aggregates are).
    #[serde(skip)]
    pub per_scene: Vec<SceneOutcome>,
    /// The first `--gallery` scenes, for the report.
    #[serde(skip)]
    pub gallery: Vec<GalleryScene>,
}

impl EvalReport {
    /// The JSON of the report (pretty).
    pub fn to_json(&self) -> crate::Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| crate::Error::Invalid(e.to_string()))
    }

    /// A short text summary (one metric per line).
    pub fn summary(&self) -> String {
        report::summary(self)
    }
}

/// Runs the evaluation (see the module docs) without progress output.
pub fn run(args: &EvalArgs) -> Result<EvalReport, EvalError> {
    run_with_progress(args, &mut |_| {})
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

    let source = DiffusionSource::load(&args.model, args.device, settings.clone())?;
    let arm = PlanarArm::new(spec.robot.clone())?;
    let mut planner = Planner::new(arm.clone(), Box::new(source), config.clone())?
        .with_labeller(Box::new(GeometricLabeller { scheme }));
    let started = Instant::now();
    let mut evaluator = Evaluator {
        arm: &arm,
        planner: &mut planner,
        mode_names: &mode_names,
        unconditioned_ms: Vec::new(),
        requested_ms: Vec::new(),
    };
    let mut per_scene = Vec::with_capacity(held_out.scenes.len());
    let mut gallery = Vec::new();
    for (i, scene) in held_out.scenes.iter().enumerate() {
        let (outcome, shown) = evaluator.scene(scene, i < args.gallery)?;
        per_scene.push(outcome);
        gallery.extend(shown);
        progress(EvalProgress::Planning {
            done: i + 1,
            total: held_out.scenes.len(),
        });
    }
    let planning_secs = started.elapsed().as_secs_f64();

    let (unconditioned_ms, requested_ms) = (evaluator.unconditioned_ms, evaluator.requested_ms);
    let latencies: Vec<f64> = unconditioned_ms
        .iter()
        .chain(&requested_ms)
        .copied()
        .collect();
    let (metrics, counts) = Metrics::compute(&per_scene, &latencies);
    let report = EvalReport {
        metrics,
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
        planner: config,
        counts,
        mode_histogram: mode_histogram(&per_scene, &mode_names),
        latency_split_ms: LatencySplit {
            unconditioned_p50: percentile(&unconditioned_ms, 0.5),
            unconditioned_p99: percentile(&unconditioned_ms, 0.99),
            requested_p50: percentile(&requested_ms, 0.5),
            requested_p99: percentile(&requested_ms, 0.99),
        },
        expert_secs,
        planning_secs,
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
            candidates[category(c.label)] += 1.0 / k;
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

/// Runs the planning calls of one scene and judges them.
struct Evaluator<'a> {
    arm: &'a PlanarArm,
    planner: &'a mut Planner,
    mode_names: &'a [String],
    unconditioned_ms: Vec<f64>,
    requested_ms: Vec<f64>,
}

impl Evaluator<'_> {
    fn plan(
        &mut self,
        held_out: &HeldOutScene,
        request: ModeRequest,
    ) -> Result<(PlanOutcome, f64), EvalError> {
        let observation = held_out
            .scene
            .observation(self.arm, request, self.mode_names)
            .map_err(|source| EvalError::Observation {
                draw: held_out.draw,
                source,
            })?;
        self.planner.reset();
        let started = Instant::now();
        let outcome = self.planner.plan(&observation)?;
        Ok((outcome, started.elapsed().as_secs_f64() * 1e3))
    }

    fn label_index(&self, label: Option<&str>) -> Option<usize> {
        label.and_then(|l| self.mode_names.iter().position(|n| n == l))
    }

    fn scene(
        &mut self,
        held_out: &HeldOutScene,
        keep_for_gallery: bool,
    ) -> Result<(SceneOutcome, Option<GalleryScene>), EvalError> {
        let scene = &held_out.scene;
        let arm = self.arm;
        let check = |path: &JointPath| check_path(arm, path, scene.goal_m, &scene.obstacles);

        let (outcome, ms) = self.plan(held_out, ModeRequest::Any)?;
        self.unconditioned_ms.push(ms);
        let checks: Vec<PathCheck> = outcome.candidates.iter().map(|c| check(&c.path)).collect();
        let candidates: Vec<CandidateOutcome> = outcome
            .candidates
            .iter()
            .zip(&checks)
            .map(|(c, check)| CandidateOutcome {
                label: self.label_index(c.label.as_deref()),
                kept: c.valid,
                good: check.good(),
                x0_variance: c.scores.x0_variance,
                reasons: c.reasons.iter().map(reason_kind).collect(),
                repaired: c.repair.is_some(),
                collision_repaired: c.repair.is_some_and(|r| r.collision_removed),
            })
            .collect();
        let chosen = match (outcome.chosen, &outcome.plan) {
            (Some(index), Some(plan)) => {
                let path_check = checks.get(index).copied();
                let plan_path = plan
                    .resample(PLAN_CHECK_DT_SECS)
                    .ok()
                    .map(|p| {
                        p.points
                            .into_iter()
                            .map(|p| p.positions)
                            .collect::<Vec<_>>()
                    })
                    .and_then(|rows| JointPath::from_waypoints(&rows).ok());
                let plan_check = plan_path.as_ref().map(check);
                match (path_check, plan_check) {
                    (Some(a), Some(b)) => ChosenOutcome::Chosen {
                        success: a.good() && b.good(),
                        collides: a.collides || b.collides,
                        out_of_limits: a.out_of_limits || b.out_of_limits,
                        misses_goal: a.misses_goal() || b.misses_goal(),
                    },
                    // A plan that cannot be resampled is not executable.
                    _ => ChosenOutcome::Chosen {
                        success: false,
                        collides: false,
                        out_of_limits: false,
                        misses_goal: false,
                    },
                }
            }
            _ => ChosenOutcome::NoneValid,
        };

        let expert_counts = held_out.expert_counts(self.mode_names.len());
        let mut requests = Vec::new();
        for (mode, _) in expert_counts.iter().enumerate().filter(|(_, &n)| n > 0) {
            let name = self.mode_names[mode].clone();
            let (requested, ms) = self.plan(held_out, ModeRequest::Named(name.clone()))?;
            self.requested_ms.push(ms);
            let matching = requested
                .candidates
                .iter()
                .filter(|c| c.label.as_deref() == Some(name.as_str()))
                .count();
            requests.push(RequestOutcome {
                mode,
                matching,
                total: requested.candidates.len(),
            });
        }

        let gallery = keep_for_gallery.then(|| GalleryScene {
            draw: held_out.draw,
            scene: scene.clone(),
            expert: held_out.expert.clone(),
            candidates: outcome
                .candidates
                .iter()
                .zip(&candidates)
                .map(|(c, o)| GalleryCandidate {
                    path: c.path.clone(),
                    label: o.label,
                    kept: o.kept,
                    good: o.good,
                })
                .collect(),
            chosen: outcome.chosen,
            success: matches!(chosen, ChosenOutcome::Chosen { success: true, .. }),
        });
        let outcome = SceneOutcome {
            expert_counts,
            candidates,
            chosen,
            requests,
        };
        Ok((outcome, gallery))
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
