//! One row of the evaluation: a planner over one candidate source, run on the held-out scenes
//! and judged by the [`Oracle`].

use std::time::Instant;

use super::metrics::{CandidateOutcome, ChosenOutcome, RequestOutcome, SceneOutcome};
use super::oracle::{Oracle, PathVerdict};
use super::scenes::HeldOutScene;
use super::sources::{take_batch, ExpertPaths, LastBatch};
use super::{reason_kind, EvalError, GalleryCandidate, GalleryScene};
use crate::planning::{
    time_parameterize, ModeRequest, PathLabeller, PlanOutcome, Planner, TimingConfig,
};
use crate::robot::{JointPath, PlanarArm};
use crate::task::GeometricLabeller;

/// The expert's timed reference paths of one scene: per expert path, its label, duration (timed
/// from rest within the robot's limits and the planner's timing scaling) and length.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpertReference {
    pub label: usize,
    pub duration_secs: Option<f64>,
    pub length_rad: f64,
}

/// Times every expert path of `scene` (see [`ExpertReference`]).
pub fn expert_references(
    arm: &PlanarArm,
    scene: &HeldOutScene,
    timing: &TimingConfig,
) -> Vec<ExpertReference> {
    scene
        .expert
        .iter()
        .map(|e| ExpertReference {
            label: e.label,
            duration_secs: time_parameterize(
                &e.path,
                &arm.max_velocities_rad_s(),
                &arm.max_accelerations_rad_s2(),
                None,
                timing,
            )
            .ok()
            .and_then(|points| points.last().map(|p| p.time_from_start_secs)),
            length_rad: e.path.length_rad(),
        })
        .collect()
}

/// A planner over one source, with what the evaluator needs around it.
pub struct RowRunner<'a> {
    pub arm: &'a PlanarArm,
    pub oracle: &'a Oracle,
    pub labeller: GeometricLabeller,
    pub planner: Planner,
    pub last: LastBatch,
    /// Set for the expert row: the scene's expert paths are loaded before each call.
    pub expert_paths: Option<ExpertPaths>,
    pub mode_names: &'a [String],
    pub unconditioned_ms: Vec<f64>,
    pub requested_ms: Vec<f64>,
}

impl RowRunner<'_> {
    fn plan(
        &mut self,
        held_out: &HeldOutScene,
        request: ModeRequest,
    ) -> Result<(PlanOutcome, Vec<Option<JointPath>>, f64), EvalError> {
        let observation = held_out
            .scene
            .observation(self.arm, request, self.mode_names)
            .map_err(|source| EvalError::Observation {
                draw: held_out.draw,
                source,
            })?;
        if let Some(paths) = &self.expert_paths {
            if let Ok(mut p) = paths.lock() {
                *p = held_out
                    .expert
                    .iter()
                    .map(|e| (e.label, e.path.clone()))
                    .collect();
            }
        }
        self.planner.reset();
        let started = Instant::now();
        let outcome = self.planner.plan(&observation)?;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        let batch = take_batch(&self.last);
        let raw = outcome
            .candidates
            .iter()
            .map(|c| batch.as_ref().and_then(|b| b.path(c.index)))
            .collect();
        Ok((outcome, raw, ms))
    }

    fn label_index(&self, path: &JointPath, held_out: &HeldOutScene) -> Option<usize> {
        let scene = &held_out.scene;
        self.labeller
            .label(self.arm, path, scene.goal_m, &scene.obstacles)
            .and_then(|l| self.mode_names.iter().position(|n| *n == l))
    }

    fn verdict(&self, path: &JointPath, held_out: &HeldOutScene) -> PathVerdict {
        let s = &held_out.scene;
        self.oracle.path(path, &s.start_rad, s.goal_m, &s.obstacles)
    }

    /// The executed plan of `outcome`, judged on its timed curve.
    fn chosen(
        &self,
        outcome: &PlanOutcome,
        candidates: &[CandidateOutcome],
        verdicts: &[PathVerdict],
        held_out: &HeldOutScene,
        references: &[ExpertReference],
    ) -> Option<ChosenOutcome> {
        let (index, plan) = (outcome.chosen?, outcome.plan.as_ref()?);
        let scene = &held_out.scene;
        let timed = self.oracle.plan(plan, scene.goal_m, &scene.obstacles);
        let path = verdicts.get(index)?;
        let label = candidates.get(index)?.label;
        let same: Vec<&ExpertReference> = references
            .iter()
            .filter(|r| Some(r.label) == label)
            .collect();
        let fastest = same.iter().filter_map(|r| r.duration_secs).reduce(f64::min);
        let shortest = same.iter().map(|r| r.length_rad).reduce(f64::min);
        let out_of_limits = !timed.within_limits() || path.out_of_limits;
        Some(ChosenOutcome {
            success: timed.success() && path.valid(),
            collides: timed.collides || path.collides,
            out_of_limits,
            goal_error_m: timed.goal_error_m,
            label,
            duration_secs: timed.duration_secs,
            path_length_rad: timed.path_length_rad,
            max_velocity_ratio: timed.max_velocity_ratio,
            max_acceleration_ratio: timed.max_acceleration_ratio,
            max_jerk_rad_s3: timed.max_jerk_rad_s3,
            time_ratio: fastest
                .filter(|t| *t > 0.0)
                .map(|t| timed.duration_secs / t),
            length_ratio: shortest
                .filter(|l| *l > 0.0)
                .map(|l| timed.path_length_rad / l),
        })
    }

    /// Runs and judges one scene: the unconditioned call, then one call per expert mode.
    pub fn scene(
        &mut self,
        held_out: &HeldOutScene,
        references: &[ExpertReference],
        keep_for_gallery: bool,
    ) -> Result<(SceneOutcome, Option<GalleryScene>), EvalError> {
        let (outcome, raw, ms) = self.plan(held_out, ModeRequest::Any)?;
        self.unconditioned_ms.push(ms);
        let verdicts: Vec<PathVerdict> = outcome
            .candidates
            .iter()
            .map(|c| self.verdict(&c.path, held_out))
            .collect();
        let mut candidates = Vec::with_capacity(outcome.candidates.len());
        for ((c, verdict), raw) in outcome.candidates.iter().zip(&verdicts).zip(&raw) {
            let raw_verdict = raw.as_ref().map(|p| self.verdict(p, held_out));
            candidates.push(CandidateOutcome {
                raw_label: raw.as_ref().and_then(|p| self.label_index(p, held_out)),
                raw_valid: raw_verdict.is_some_and(|v| v.valid()),
                raw_collides: raw_verdict.is_none_or(|v| v.collides || v.non_finite),
                raw_goal_error_m: raw_verdict.map_or(f64::INFINITY, |v| v.goal_error_m),
                label: self.label_index(&c.path, held_out),
                kept: c.valid,
                good: verdict.valid(),
                collides: verdict.collides || verdict.non_finite,
                x0_variance: c.scores.x0_variance,
                reasons: c.reasons.iter().map(reason_kind).collect(),
                repaired: c.repair.is_some(),
                collision_repaired: c.repair.is_some_and(|r| r.collision_removed),
                expert_distance_rad: held_out
                    .expert
                    .iter()
                    .filter_map(|e| c.path.mean_waypoint_distance_rad(&e.path))
                    .filter(|d| d.is_finite())
                    .reduce(f64::min),
            });
        }
        let chosen = self.chosen(&outcome, &candidates, &verdicts, held_out, references);

        let expert_counts = held_out.expert_counts(self.mode_names.len());
        let mut requests = Vec::new();
        for (mode, _) in expert_counts.iter().enumerate().filter(|(_, &n)| n > 0) {
            let name = self.mode_names[mode].clone();
            let (requested, raw, ms) = self.plan(held_out, ModeRequest::Named(name))?;
            self.requested_ms.push(ms);
            let raw_matching = raw
                .iter()
                .filter(|p| {
                    p.as_ref()
                        .is_some_and(|p| self.label_index(p, held_out) == Some(mode))
                })
                .count();
            let executed_matches = match (requested.chosen, &requested.plan) {
                (Some(index), Some(plan)) => {
                    let path = &requested.candidates[index].path;
                    let scene = &held_out.scene;
                    self.label_index(path, held_out) == Some(mode)
                        && self.verdict(path, held_out).valid()
                        && self
                            .oracle
                            .plan(plan, scene.goal_m, &scene.obstacles)
                            .success()
                }
                _ => false,
            };
            requests.push(RequestOutcome {
                mode,
                raw_matching,
                total: requested.candidates.len(),
                executed_matches,
            });
        }

        let gallery = keep_for_gallery.then(|| GalleryScene {
            draw: held_out.draw,
            scene: held_out.scene.clone(),
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
            success: chosen.is_some_and(|c| c.success),
        });
        let outcome = SceneOutcome {
            expert_counts,
            both_routes: held_out.both_routes(self.mode_names),
            candidates,
            chosen,
            requests,
        };
        Ok((outcome, gallery))
    }
}
