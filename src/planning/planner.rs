//! The whole pipeline: observation -> condition -> K candidates -> scores -> modes -> selection
//! -> timed, stitched, verified [`Plan`].

use std::time::Instant;

use serde::Serialize;

use super::condition::condition_vector;
use super::config::PlannerConfig;
use super::modes::{cluster, Clustering};
use super::observation::{ModeRequest, Observation, ObservationError, ObservationInput};
use super::plan::segment_extrema;
use super::plan::Plan;
use super::repair::{repair_path, Repair};
use super::scoring::{inflated, score_candidate, CandidateScores, RejectReason};
use super::selection::{select, SelectionReason, SelectorState};
use super::smoothing::smooth_path;
use super::source::CandidateSource;
use super::timing::{time_parameterize, TimingError};
use crate::robot::{CircleObstacle, JointPath, PlanarArm};
use crate::Result;

/// Relative slack of the velocity and acceleration check of [`Planner::verify`] (the timing
/// stays within the limits up to rounding).
const LIMIT_TOLERANCE: f64 = 1e-6;

/// Computes the geometric mode label of a path (e.g. the reference task's `left`/`right`), used
/// to report labels and, when a mode is requested, to reject candidates of another mode.
pub trait PathLabeller: Send {
    /// The label name of `path`, or `None` when it is undefined (e.g. a path that does not
    /// move).
    fn label(
        &self,
        arm: &PlanarArm,
        path: &JointPath,
        goal_m: [f64; 2],
        obstacles: &[CircleObstacle],
    ) -> Option<String>;
}

/// Why planning failed (not having a valid candidate is no failure: the outcome has no plan).
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("invalid observation: {0}")]
    Observation(#[from] ObservationError),
    #[error("candidate source failed: {0}")]
    Source(#[source] crate::Error),
    #[error(
        "candidate batch has K={found_k}, T={found_t}, D={found_d}; expected K={expected_k}, \
         D={expected_d}, T >= 2"
    )]
    Batch {
        expected_k: usize,
        expected_d: usize,
        found_k: usize,
        found_t: usize,
        found_d: usize,
    },
    #[error("time parameterisation failed: {0}")]
    Timing(#[from] TimingError),
}

/// Everything known about one candidate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CandidateReport {
    pub index: usize,
    /// The path as scored: the sample anchored at the start (and bent onto the goal), then
    /// repaired when it grazed or shallowly cut an obstacle (see `repair`).
    pub path: JointPath,
    pub scores: CandidateScores,
    /// Empty iff the candidate is valid.
    pub reasons: Vec<RejectReason>,
    pub valid: bool,
    /// Its mode id; for an invalid candidate the nearest mode (display only).
    pub mode: Option<usize>,
    /// The geometric label, when the planner has a labeller.
    pub label: Option<String>,
    /// What the repair changed (`None`: the anchored sample as it was).
    pub repair: Option<Repair>,
}

/// One mode of the batch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModeSummary {
    pub id: usize,
    /// Valid members, ascending.
    pub members: Vec<usize>,
    /// Invalid candidates nearest to this mode (display only).
    pub assigned_invalid: Vec<usize>,
    /// Number of valid members.
    pub mass: usize,
    /// `mass / K`.
    pub mass_fraction: f64,
    /// The member with the lowest cost and that cost.
    pub best_member: usize,
    pub best_cost: f64,
    /// The most common label among the members (ties: the alphabetically first), with a
    /// labeller.
    pub label: Option<String>,
    /// Distance to the previous choice, radians (see [`super::select`]).
    pub distance_to_previous_rad: Option<f64>,
}

/// Wall-clock seconds spent in each stage of one call.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct PlanTimings {
    pub condition_secs: f64,
    pub sampling_secs: f64,
    pub scoring_secs: f64,
    pub clustering_secs: f64,
    /// Selection, time parameterisation and verification (with retries).
    pub selection_secs: f64,
    pub total_secs: f64,
    /// Everything but sampling: what the pipeline adds to the model's time.
    pub pipeline_secs: f64,
}

/// The result of one planning call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanOutcome {
    /// The plan to execute; `None` when no candidate is valid (hold).
    pub plan: Option<Plan>,
    pub candidates: Vec<CandidateReport>,
    pub modes: Vec<ModeSummary>,
    /// Index of the chosen candidate.
    pub chosen: Option<usize>,
    /// Id of the chosen mode.
    pub chosen_mode: Option<usize>,
    pub selection: Option<SelectionReason>,
    /// The seed this call sampled with.
    pub seed: u64,
    pub timings: PlanTimings,
}

/// The planning pipeline with its selection memory.
pub struct Planner {
    arm: PlanarArm,
    source: Box<dyn CandidateSource>,
    config: PlannerConfig,
    labeller: Option<Box<dyn PathLabeller>>,
    state: SelectorState,
    calls: u64,
}

impl Planner {
    /// A planner for `arm` drawing candidates from `source`; validates the configuration.
    pub fn new(
        arm: PlanarArm,
        source: Box<dyn CandidateSource>,
        config: PlannerConfig,
    ) -> Result<Self> {
        config.validate()?;
        Ok(Planner {
            arm,
            source,
            config,
            labeller: None,
            state: SelectorState::new(),
            calls: 0,
        })
    }

    /// Adds a geometric labeller: labels are reported, and with a named mode request candidates
    /// with another label are rejected ([`RejectReason::WrongMode`]).
    pub fn with_labeller(mut self, labeller: Box<dyn PathLabeller>) -> Self {
        self.labeller = Some(labeller);
        self
    }

    pub fn arm(&self) -> &PlanarArm {
        &self.arm
    }

    pub fn config(&self) -> &PlannerConfig {
        &self.config
    }

    /// The source's mode names (label order).
    pub fn mode_names(&self) -> &[String] {
        self.source.mode_names()
    }

    /// The selection memory.
    pub fn selector_state(&self) -> &SelectorState {
        &self.state
    }

    /// Forgets the previous choice (no hysteresis on the next call).
    pub fn reset(&mut self) {
        self.state.reset();
    }

    /// Validates raw inputs against this planner's robot and mode names.
    pub fn observation(
        &self,
        input: ObservationInput,
    ) -> std::result::Result<Observation, ObservationError> {
        Observation::new(input, &self.arm, self.source.mode_names())
    }

    /// Runs the pipeline once. Candidates are anchored at the start (the commanded state when
    /// one is given, see [`Observation::start_positions_rad`]), scored, clustered; the selection
    /// keeps the current mode while valid; the chosen path is timed from the start velocity
    /// (so the plan begins exactly at the commanded state) and re-checked along the timed curve
    /// every `verify_dt_secs`; a failing choice is rejected and the selection repeated.
    pub fn plan(
        &mut self,
        observation: &Observation,
    ) -> std::result::Result<PlanOutcome, PlanError> {
        let started = Instant::now();
        let names = self.arm.joint_names();
        if observation.joint_names() != names.as_slice() {
            return Err(ObservationError::RobotMismatch {
                expected: names,
                found: observation.joint_names().to_vec(),
            }
            .into());
        }
        let label = match observation.mode() {
            ModeRequest::Any => None,
            ModeRequest::Named(name) => {
                match self.source.mode_names().iter().position(|m| m == name) {
                    Some(index) => Some(index),
                    None => {
                        return Err(ObservationError::UnknownMode {
                            name: name.clone(),
                            known: self.source.mode_names().to_vec(),
                        }
                        .into())
                    }
                }
            }
        };
        self.state.update_request(observation.mode());
        let condition = condition_vector(self.source.condition_terms(), &self.arm, observation);
        let t_condition = Instant::now();

        let seed = self.config.seed.wrapping_add(self.calls);
        self.calls += 1;
        let k = self.config.num_samples;
        let batch = self
            .source
            .sample(&condition, label, k, seed)
            .map_err(PlanError::Source)?;
        if batch.num_candidates() != k || batch.dof() != self.arm.dof() || batch.horizon() < 2 {
            return Err(PlanError::Batch {
                expected_k: k,
                expected_d: self.arm.dof(),
                found_k: batch.num_candidates(),
                found_t: batch.horizon(),
                found_d: batch.dof(),
            });
        }
        let t_sampled = Instant::now();

        let start = observation.start_positions_rad();
        let scoring = self.config.scoring();
        let mut candidates = Vec::with_capacity(k);
        for (index, &x0_variance) in batch.x0_variance().iter().enumerate() {
            let sampled = batch.path_slice(index).unwrap_or_default();
            let sampled =
                JointPath::new(batch.dof(), sampled.to_vec()).map_err(PlanError::Source)?;
            let mut path = sampled.clone();
            let end = self.goal_projection(sampled.last(), observation.goal_m());
            path.anchor(start, end.as_ref().map(|q| q.as_slice()))
                .map_err(PlanError::Source)?;
            let repair = repair_path(
                &self.arm,
                &mut path,
                observation.obstacles(),
                &self.config.repair,
            );
            let (scores, mut reasons) = score_candidate(
                &self.arm,
                &path,
                &sampled,
                x0_variance,
                observation.goal_m(),
                observation.obstacles(),
                &scoring,
            );
            let label = self.labeller.as_ref().and_then(|l| {
                l.label(
                    &self.arm,
                    &path,
                    observation.goal_m(),
                    observation.obstacles(),
                )
            });
            if let (Some(requested), Some(_)) = (observation.mode().name(), &self.labeller) {
                if label.as_deref() != Some(requested) {
                    reasons.push(RejectReason::WrongMode {
                        requested: requested.to_string(),
                        found: label.clone(),
                    });
                }
            }
            candidates.push(CandidateReport {
                index,
                path,
                valid: reasons.is_empty(),
                scores,
                reasons,
                mode: None,
                label,
                repair,
            });
        }
        let t_scored = Instant::now();

        let paths: Vec<JointPath> = candidates.iter().map(|c| c.path.clone()).collect();
        let costs: Vec<f64> = candidates.iter().map(|c| c.scores.cost).collect();
        let mut clustering = self.cluster(&candidates, &paths);
        let t_clustered = Instant::now();

        let selection_config = self.config.selection();
        let mut chosen = None;
        for _ in 0..=k {
            let Some(selection) = select(
                &clustering.modes,
                &paths,
                &costs,
                start,
                &self.state,
                &selection_config,
            ) else {
                break;
            };
            let (plan, verdict) = self.executable_plan(observation, &paths[selection.candidate])?;
            match verdict {
                None => {
                    chosen = Some((selection, plan));
                    break;
                }
                Some(reason) => {
                    let report = &mut candidates[selection.candidate];
                    report.reasons.push(reason);
                    report.valid = false;
                    clustering = self.cluster(&candidates, &paths);
                }
            }
        }
        for (report, mode) in candidates.iter_mut().zip(&clustering.assignment) {
            report.mode = *mode;
        }
        let modes = self.summaries(&clustering, &candidates, chosen.as_ref().map(|c| &c.0));
        if let Some((selection, _)) = &chosen {
            self.state.remember(paths[selection.candidate].clone());
        }
        let finished = Instant::now();

        let secs = |a: Instant, b: Instant| b.duration_since(a).as_secs_f64();
        let timings = PlanTimings {
            condition_secs: secs(started, t_condition),
            sampling_secs: secs(t_condition, t_sampled),
            scoring_secs: secs(t_sampled, t_scored),
            clustering_secs: secs(t_scored, t_clustered),
            selection_secs: secs(t_clustered, finished),
            total_secs: secs(started, finished),
            pipeline_secs: secs(started, finished) - secs(t_condition, t_sampled),
        };
        let (chosen_index, chosen_mode, reason, plan) = match chosen {
            Some((selection, plan)) => (
                Some(selection.candidate),
                Some(selection.mode),
                Some(selection.reason),
                Some(plan),
            ),
            None => (None, None, None, None),
        };
        Ok(PlanOutcome {
            plan,
            candidates,
            modes,
            chosen: chosen_index,
            chosen_mode,
            selection: reason,
            seed,
            timings,
        })
    }

    /// Where a sampled path's end goes: the IK solution nearest to its last waypoint when the
    /// end effector lies within `max_goal_projection_m` of the goal, else `None` (the end stays
    /// and the goal check decides).
    fn goal_projection(&self, sampled_last_rad: &[f64], goal_m: [f64; 2]) -> Option<[f64; 2]> {
        let max_m = self.config.max_goal_projection_m?;
        if !sampled_last_rad.iter().all(|v| v.is_finite()) {
            return None;
        }
        let end = self.arm.end_effector(sampled_last_rad);
        if (end[0] - goal_m[0]).hypot(end[1] - goal_m[1]) > max_m {
            return None;
        }
        self.arm.ik_nearest(goal_m, sampled_last_rad)
    }

    fn cluster(&self, candidates: &[CandidateReport], paths: &[JointPath]) -> Clustering {
        let valid: Vec<bool> = candidates.iter().map(|c| c.valid).collect();
        cluster(paths, &valid, self.config.cluster_threshold_rad)
    }

    /// The timed plan of a chosen path and its verification: of the path's own plan and the
    /// smoothed path's (`smoothing_passes`), the shorter in duration that verifies (smoothing
    /// removes the sampler's wiggle, but the corner caps of the timing can make a smoothed
    /// curve slower than a path with a few sharp corners).
    fn executable_plan(
        &self,
        observation: &Observation,
        path: &JointPath,
    ) -> std::result::Result<(Plan, Option<RejectReason>), TimingError> {
        let plan = self.timed_plan(observation, path)?;
        if self.config.smoothing_passes > 0 {
            let smoothed = smooth_path(path, self.config.smoothing_passes);
            if let Ok(smooth) = self.timed_plan(observation, &smoothed) {
                if smooth.duration_secs() < plan.duration_secs()
                    && self.verify(&smooth, observation.obstacles()).is_none()
                {
                    return Ok((smooth, None));
                }
            }
        }
        let verdict = self.verify(&plan, observation.obstacles());
        Ok((plan, verdict))
    }

    /// Times the chosen path from the observation's start state.
    fn timed_plan(
        &self,
        observation: &Observation,
        path: &JointPath,
    ) -> std::result::Result<Plan, TimingError> {
        let points = time_parameterize(
            path,
            &self.arm.max_velocities_rad_s(),
            &self.arm.max_accelerations_rad_s2(),
            observation.start_velocities_rad_s(),
            &self.config.timing,
        )?;
        Ok(Plan {
            joint_names: self.arm.joint_names(),
            start_stamp_secs: observation.start_stamp_secs(),
            points,
        })
    }

    /// Re-checks the timed curve, fail-closed (any error rejects the plan): the controller's
    /// rules ([`Plan::validate`]), the exact peak velocity and acceleration of every segment
    /// within the joint limits, position limits at every `verify_dt_secs` sample and the swept
    /// motion between consecutive samples, against the obstacles and (with `min_clearance_m`)
    /// against the obstacles grown by it.
    pub fn verify(&self, plan: &Plan, obstacles: &[CircleObstacle]) -> Option<RejectReason> {
        let failed = |error: String| Some(RejectReason::VerificationFailed { error });
        if let Err(e) = plan.validate() {
            return failed(e.to_string());
        }
        if plan.joint_names != self.arm.joint_names() {
            return failed(format!(
                "plan names joints {:?}, the robot has {:?}",
                plan.joint_names,
                self.arm.joint_names()
            ));
        }
        let (vmax, amax) = (
            self.arm.max_velocities_rad_s(),
            self.arm.max_accelerations_rad_s2(),
        );
        for pair in plan.points.windows(2) {
            let h = pair[1].time_from_start_secs - pair[0].time_from_start_secs;
            for j in 0..vmax.len() {
                let (v, a) = segment_extrema(
                    pair[0].positions[j],
                    pair[0].velocities[j],
                    pair[1].positions[j],
                    pair[1].velocities[j],
                    h,
                );
                let over = |value: f64, limit: f64| !(value <= limit * (1.0 + LIMIT_TOLERANCE));
                if over(v, vmax[j]) || over(a, amax[j]) {
                    return failed(format!(
                        "segment at {:.3} s: joint {j} reaches {v:.4} rad/s and {a:.4} rad/s² \
                         (limits {} rad/s, {} rad/s²)",
                        pair[0].time_from_start_secs, vmax[j], amax[j]
                    ));
                }
            }
        }
        let samples = match plan.resample(self.config.verify_dt_secs) {
            Ok(samples) if !samples.points.is_empty() => samples,
            Ok(_) => return failed("resampling gave no points".into()),
            Err(e) => return failed(format!("resampling failed: {e}")),
        };
        let min_clearance = self.config.min_clearance_m;
        let grown = (min_clearance > 0.0).then(|| inflated(obstacles, min_clearance));
        let mut previous: Option<&[f64]> = None;
        for point in &samples.points {
            let q = point.positions.as_slice();
            let time_secs = point.time_from_start_secs;
            if let Some((joint, value_rad)) = self.arm.limit_violation(q) {
                return Some(RejectReason::TimedPathJointLimit {
                    time_secs,
                    joint,
                    value_rad,
                });
            }
            let check = |obstacles: &[CircleObstacle]| match previous {
                Some(p) => self.arm.swept_collision(p, q, obstacles).map(|s| s.contact),
                None => self.arm.collision(q, obstacles),
            };
            if let Some(contact) = check(obstacles) {
                return Some(RejectReason::TimedPathCollision {
                    time_secs,
                    link: contact.link,
                    obstacle: contact.obstacle,
                });
            }
            if let Some(contact) = grown.as_deref().and_then(check) {
                return Some(RejectReason::Clearance {
                    time_secs: Some(time_secs),
                    link: contact.link,
                    obstacle: contact.obstacle,
                    min_clearance_m: min_clearance,
                });
            }
            previous = Some(q);
        }
        None
    }

    fn summaries(
        &self,
        clustering: &Clustering,
        candidates: &[CandidateReport],
        selection: Option<&super::selection::Selection>,
    ) -> Vec<ModeSummary> {
        let k = candidates.len().max(1) as f64;
        clustering
            .modes
            .iter()
            .map(|mode| {
                let (best_member, best_cost) = mode
                    .members
                    .iter()
                    .map(|&m| (m, candidates[m].scores.cost))
                    .fold((usize::MAX, f64::INFINITY), |best, (m, c)| {
                        if c < best.1 || best.0 == usize::MAX {
                            (m, c)
                        } else {
                            best
                        }
                    });
                let mut labels: Vec<&str> = mode
                    .members
                    .iter()
                    .filter_map(|&m| candidates[m].label.as_deref())
                    .collect();
                labels.sort_unstable();
                let label = labels
                    .chunk_by(|a, b| a == b)
                    .fold(None, |best: Option<&[&str]>, run| match best {
                        Some(b) if b.len() >= run.len() => best,
                        _ => Some(run),
                    })
                    .and_then(|run| run.first())
                    .map(|s| s.to_string());
                ModeSummary {
                    id: mode.id,
                    members: mode.members.clone(),
                    assigned_invalid: mode.assigned_invalid.clone(),
                    mass: mode.members.len(),
                    mass_fraction: mode.members.len() as f64 / k,
                    best_member,
                    best_cost,
                    label,
                    distance_to_previous_rad: selection
                        .and_then(|s| s.mode_distances_rad.get(mode.id).copied().flatten()),
                }
            })
            .collect()
    }
}
