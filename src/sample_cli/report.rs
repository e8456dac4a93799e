//! The report of one `dplan sample` run: what the JSON holds and the figure draws.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::diffusion::SamplerSettings;
use crate::model::ModelSpec;
use crate::planning::{
    CandidateScores, ModeSummary, Plan, PlanOutcome, PlanTimings, PlannerConfig, RejectReason,
    SelectionReason,
};
use crate::task::{LabelScheme, Scene};
use crate::{Error, Result};

/// The model that sampled.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInfo {
    pub name: String,
    /// The folder as given on the command line.
    pub dir: String,
    /// Optimiser steps of the weights (`training.steps`).
    pub training_steps: u64,
    pub weights_sha256: String,
    /// Waypoints per path, T.
    pub horizon: usize,
    /// Mode names in label order.
    pub mode_names: Vec<String>,
}

/// One candidate as the planner saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CandidateEntry {
    pub index: usize,
    /// Run-time mode id (clustering); for a rejected candidate the nearest mode.
    pub mode: Option<usize>,
    /// The geometric label (reference task), when a label scheme matches the model.
    pub label: Option<String>,
    pub valid: bool,
    pub chosen: bool,
    pub scores: CandidateScores,
    /// Why it was rejected (empty iff valid).
    pub reasons: Vec<RejectReason>,
    /// The same, as text.
    pub reason_messages: Vec<String>,
    /// The scored path (anchored at the start and goal, repaired where `repair` says), one row
    /// of joint positions (rad) per waypoint.
    pub path_rad: Vec<Vec<f64>>,
    /// What the planner's repair changed (`null`: the anchored sample as it was).
    pub repair: Option<crate::planning::Repair>,
}

/// Wall-clock times of the run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SampleTimings {
    /// Reading the scene, model and config, building the planner.
    pub load_secs: f64,
    /// The planning call, by stage (`pipeline_secs` = everything but sampling).
    pub plan: PlanTimings,
}

/// Everything about one `dplan sample` run (serialised as the `--json` file).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SampleReport {
    pub model: ModelInfo,
    /// The scene file as given on the command line.
    pub scene_file: String,
    pub scene: Scene,
    /// `any` or the requested mode name.
    pub mode_request: String,
    /// The labeller's scheme (`null`: no scheme matches the model's mode names).
    pub label_scheme: Option<LabelScheme>,
    pub sampler: SamplerSettings,
    pub planner: PlannerConfig,
    /// The seed the planning call sampled with.
    pub seed: u64,
    pub num_samples: usize,
    pub valid_count: usize,
    /// Per rejection kind (e.g. `collision`), how many candidates have it.
    pub rejection_counts: BTreeMap<String, usize>,
    pub candidates: Vec<CandidateEntry>,
    pub modes: Vec<ModeSummary>,
    /// Index of the chosen candidate (`null`: none valid, hold).
    pub chosen: Option<usize>,
    pub chosen_mode: Option<usize>,
    pub selection: Option<SelectionReason>,
    /// The timed plan of the chosen candidate.
    pub plan: Option<Plan>,
    /// Absent with `--omit-timings`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timings: Option<SampleTimings>,
}

/// What [`SampleReport::new`] is built from.
pub(super) struct ReportInputs<'a> {
    pub spec: &'a ModelSpec,
    pub model_dir: &'a Path,
    pub scene: &'a Scene,
    pub scene_file: &'a Path,
    pub mode_request: &'a str,
    pub label_scheme: Option<LabelScheme>,
    pub sampler: SamplerSettings,
    pub planner: PlannerConfig,
    pub outcome: &'a PlanOutcome,
    pub timings: Option<SampleTimings>,
}

/// A unit enum's serde name (e.g. `best_by_mass`).
fn serde_name(value: &impl Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "unknown".to_string())
}

/// The serde tag of a rejection reason (`collision`, `goal_error`, ...).
pub fn reason_kind(reason: &RejectReason) -> String {
    serde_json::to_value(reason)
        .ok()
        .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_string))
        .unwrap_or_else(|| "unknown".to_string())
}

impl SampleReport {
    pub(super) fn new(inputs: ReportInputs<'_>) -> Self {
        let outcome = inputs.outcome;
        let spec = inputs.spec;
        let mut rejection_counts = BTreeMap::new();
        let candidates: Vec<CandidateEntry> = outcome
            .candidates
            .iter()
            .map(|c| {
                let mut kinds: Vec<String> = c.reasons.iter().map(reason_kind).collect();
                kinds.sort();
                kinds.dedup();
                for kind in kinds {
                    *rejection_counts.entry(kind).or_insert(0) += 1;
                }
                CandidateEntry {
                    index: c.index,
                    mode: c.mode,
                    label: c.label.clone(),
                    valid: c.valid,
                    chosen: outcome.chosen == Some(c.index),
                    scores: c.scores,
                    reasons: c.reasons.clone(),
                    reason_messages: c.reasons.iter().map(|r| r.to_string()).collect(),
                    path_rad: c.path.waypoints().map(<[f64]>::to_vec).collect(),
                    repair: c.repair,
                }
            })
            .collect();
        SampleReport {
            model: ModelInfo {
                name: spec.name.clone(),
                dir: inputs.model_dir.display().to_string(),
                training_steps: spec.training.steps,
                weights_sha256: spec.weights.sha256.clone(),
                horizon: spec.horizon,
                mode_names: spec.modes.as_ref().map_or(Vec::new(), |m| m.names.clone()),
            },
            scene_file: inputs.scene_file.display().to_string(),
            scene: inputs.scene.clone(),
            mode_request: inputs.mode_request.to_string(),
            label_scheme: inputs.label_scheme,
            sampler: inputs.sampler,
            planner: inputs.planner,
            seed: outcome.seed,
            num_samples: candidates.len(),
            valid_count: candidates.iter().filter(|c| c.valid).count(),
            rejection_counts,
            candidates,
            modes: outcome.modes.clone(),
            chosen: outcome.chosen,
            chosen_mode: outcome.chosen_mode,
            selection: outcome.selection,
            plan: outcome.plan.clone(),
            timings: inputs.timings,
        }
    }

    /// Candidates assigned to mode `id` (valid and rejected), or to no mode for `None`.
    pub fn candidates_of(&self, mode: Option<usize>) -> impl Iterator<Item = &CandidateEntry> {
        self.candidates.iter().filter(move |c| c.mode == mode)
    }

    /// The report as pretty JSON (NaN scores become `null`).
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self)
            .map_err(|e| Error::Invalid(format!("cannot serialise the sample report: {e}")))
    }

    /// Writes [`Self::to_json`] (with a final newline) to `path`.
    pub fn write_json(&self, path: &Path) -> Result<()> {
        let mut text = self.to_json()?;
        text.push('\n');
        crate::error::write_file(path, text)
    }

    /// A few lines for the terminal: the run, rejections, modes, the choice, the timings.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let s = &self.sampler;
        let _ = writeln!(
            out,
            "model {} (step {}), scene {}, mode {}, {} {} steps (guidance {}, x0 variance over \
             the last {}), K={}, seed {}",
            self.model.name,
            self.model.training_steps,
            self.scene_file,
            self.mode_request,
            s.kind,
            s.inference_steps,
            s.guidance_scale,
            s.record_last_k,
            self.num_samples,
            self.seed
        );
        let rejections: Vec<String> = self
            .rejection_counts
            .iter()
            .map(|(kind, n)| format!("{kind} {n}"))
            .collect();
        let repaired = self.candidates.iter().filter(|c| c.repair.is_some());
        let collided = repaired
            .clone()
            .filter(|c| c.repair.is_some_and(|r| r.collision_removed))
            .count();
        let _ = writeln!(
            out,
            "valid {}/{}; rejected: {}; repaired {} ({} collided as sampled)",
            self.valid_count,
            self.num_samples,
            if rejections.is_empty() {
                "none".to_string()
            } else {
                rejections.join(", ")
            },
            repaired.count(),
            collided
        );
        for mode in &self.modes {
            let labels = label_counts(self.candidates_of(Some(mode.id)).filter(|c| c.valid));
            let _ = writeln!(
                out,
                "  mode {}: {} valid ({:.0}%), {} rejected nearby, labels {}, best #{} cost {:.3}",
                mode.id,
                mode.mass,
                100.0 * mode.mass_fraction,
                mode.assigned_invalid.len(),
                labels,
                mode.best_member,
                mode.best_cost
            );
        }
        match (self.chosen, &self.plan) {
            (Some(index), Some(plan)) => {
                let label = self
                    .candidates
                    .get(index)
                    .and_then(|c| c.label.clone())
                    .unwrap_or_else(|| "-".into());
                let _ = writeln!(
                    out,
                    "chosen #{index} (mode {}, {label}, {}), plan {:.2} s, {} points",
                    self.chosen_mode.map_or("-".into(), |m| m.to_string()),
                    self.selection.map_or("-".into(), |r| serde_name(&r)),
                    plan.duration_secs(),
                    plan.points.len()
                );
            }
            _ => {
                let _ = writeln!(out, "no valid candidate: hold");
            }
        }
        if let Some(t) = &self.timings {
            let p = &t.plan;
            let _ = writeln!(
                out,
                "timings: load {:.1} ms; plan {:.1} ms = sampling {:.1} ms + pipeline {:.2} ms \
                 (scoring {:.2}, clustering {:.2}, selection+timing {:.2})",
                1e3 * t.load_secs,
                1e3 * p.total_secs,
                1e3 * p.sampling_secs,
                1e3 * p.pipeline_secs,
                1e3 * p.scoring_secs,
                1e3 * p.clustering_secs,
                1e3 * p.selection_secs
            );
        }
        out
    }
}

/// `label×count` pairs, most common first (ties alphabetical), e.g. `left_elbow_up×7`.
pub fn label_counts<'a>(candidates: impl Iterator<Item = &'a CandidateEntry>) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for c in candidates {
        *counts
            .entry(c.label.as_deref().unwrap_or("none"))
            .or_insert(0) += 1;
    }
    let mut pairs: Vec<(&str, usize)> = counts.into_iter().collect();
    pairs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    if pairs.is_empty() {
        return "-".to_string();
    }
    pairs
        .iter()
        .map(|(l, n)| format!("{l}×{n}"))
        .collect::<Vec<_>>()
        .join(" ")
}
