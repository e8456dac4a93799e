//! The metric definitions of `dplan eval`, as pure functions of per-scene outcomes (see the
//! module docs of [`super`] for the full definitions and why they were chosen).
//!
//! Everything here is independent of the model and the planner: the evaluation loop turns each
//! scene into a [`SceneOutcome`] (ground truth from [`check_path`], filter decisions and labels
//! from the planner) and [`Metrics::compute`] aggregates them.

use serde::Serialize;

use crate::robot::{CircleObstacle, JointPath, PlanarArm};

/// End-effector distance to the goal at the end of a path that counts as reaching it, metres.
pub const SUCCESS_GOAL_TOLERANCE_M: f64 = 0.02;
/// Additive (Jeffreys) smoothing of the candidate label counts in [`scene_mode_kl`].
pub const KL_SMOOTHING: f64 = 0.5;

/// The ground-truth check of one joint-space path (straight segments between waypoints),
/// independent of the planner's filter settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PathCheck {
    /// Some position is NaN or infinite.
    pub non_finite: bool,
    /// Some waypoint is outside the joint limits.
    pub out_of_limits: bool,
    /// The swept arm touches an obstacle (zero clearance: capsules of the link radius).
    pub collides: bool,
    /// End-effector distance to the goal at the last waypoint, metres (NaN if non-finite).
    pub goal_error_m: f64,
}

impl PathCheck {
    /// Misses the goal by more than [`SUCCESS_GOAL_TOLERANCE_M`] (or NaN).
    pub fn misses_goal(&self) -> bool {
        !(self.goal_error_m <= SUCCESS_GOAL_TOLERANCE_M)
    }

    /// Executable and reaching the goal: finite, within limits, collision-free, within
    /// [`SUCCESS_GOAL_TOLERANCE_M`] of the goal.
    pub fn good(&self) -> bool {
        !self.non_finite && !self.out_of_limits && !self.collides && !self.misses_goal()
    }
}

/// Checks `path` against the task: limits at every waypoint (a straight joint-space segment
/// between two waypoints inside the limit box stays inside), the swept collision of every
/// segment at zero clearance, and the goal error at the last waypoint.
pub fn check_path(
    arm: &PlanarArm,
    path: &JointPath,
    goal_m: [f64; 2],
    obstacles: &[CircleObstacle],
) -> PathCheck {
    if !path.is_finite() {
        return PathCheck {
            non_finite: true,
            out_of_limits: false,
            collides: false,
            goal_error_m: f64::NAN,
        };
    }
    let end = arm.end_effector(path.last());
    PathCheck {
        non_finite: false,
        out_of_limits: path.waypoints().any(|q| !arm.within_limits(q)),
        collides: arm.path_collision(path, obstacles).is_some(),
        goal_error_m: (end[0] - goal_m[0]).hypot(end[1] - goal_m[1]),
    }
}

/// One candidate of an unconditioned planning call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CandidateOutcome {
    /// Geometric label index (in the model's mode names); `None` when undefined.
    pub label: Option<usize>,
    /// The planner kept it (no rejection reason): the filter's decision.
    pub kept: bool,
    /// Ground truth: [`PathCheck::good`] of the path as the planner scored it.
    pub good: bool,
    /// The sampler's x̂0 variance (the hallucination score).
    pub x0_variance: f64,
    /// The kinds of the planner's rejection reasons (e.g. `collision`), empty when kept.
    pub reasons: Vec<&'static str>,
    /// The planner's repair bent it (`PlannerConfig::repair`); `collision_repaired`: the
    /// sample's swept path collided before.
    pub repaired: bool,
    pub collision_repaired: bool,
}

/// What happened to the planner's choice in one scene.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChosenOutcome {
    /// No valid candidate: the planner holds (a failure, not a collision).
    NoneValid,
    /// A choice was made; `collides`: its path or timed plan touches an obstacle.
    Chosen {
        success: bool,
        collides: bool,
        out_of_limits: bool,
        misses_goal: bool,
    },
}

/// One mode request (classifier-free guidance on the expert mode's label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RequestOutcome {
    /// Requested label index.
    pub mode: usize,
    /// Candidates whose geometric label is the requested one.
    pub matching: usize,
    /// Candidates sampled.
    pub total: usize,
}

/// Everything the metrics need about one held-out scene.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SceneOutcome {
    /// Expert paths per label index (length = number of mode names).
    pub expert_counts: Vec<usize>,
    /// The candidates of the unconditioned call.
    pub candidates: Vec<CandidateOutcome>,
    pub chosen: ChosenOutcome,
    /// One per expert mode.
    pub requests: Vec<RequestOutcome>,
}

impl SceneOutcome {
    /// Label indices the expert found (distinct, ascending).
    pub fn expert_modes(&self) -> Vec<usize> {
        (0..self.expert_counts.len())
            .filter(|&m| self.expert_counts[m] > 0)
            .collect()
    }

    /// At least two expert modes.
    pub fn multimodal(&self) -> bool {
        self.expert_modes().len() >= 2
    }

    /// Every expert mode has a kept candidate with its label.
    pub fn covered(&self) -> bool {
        self.expert_modes()
            .iter()
            .all(|&m| self.candidates.iter().any(|c| c.kept && c.label == Some(m)))
    }
}

/// `KL(P || Q)` in nats for one scene, over the categories "label m" (m < M) and "no label":
/// `P(c)` = the expert's paths of label `c` / all its paths (0 for "no label"), `Q(c)` =
/// (candidates of label `c` + α) / (K + α (M + 1)) with α = [`KL_SMOOTHING`], over all K
/// candidates of the unconditioned call, kept or not. `None` without expert paths.
pub fn scene_mode_kl(expert_counts: &[usize], candidates: &[CandidateOutcome]) -> Option<f64> {
    let m = expert_counts.len();
    let expert_total: usize = expert_counts.iter().sum();
    if expert_total == 0 {
        return None;
    }
    let denominator = candidates.len() as f64 + KL_SMOOTHING * (m + 1) as f64;
    let kl = expert_counts
        .iter()
        .enumerate()
        .filter(|(_, &n)| n > 0)
        .map(|(label, &n)| {
            let p = n as f64 / expert_total as f64;
            let count = candidates.iter().filter(|c| c.label == Some(label)).count();
            let q = (count as f64 + KL_SMOOTHING) / denominator;
            p * (p / q).ln()
        })
        .sum();
    Some(kl)
}

/// The nearest-rank percentile `p` (in (0, 1]) of `values`: the smallest value with at least
/// a fraction `p` of the values at or below it. `None` when empty.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// The probability that a random bad candidate has a higher x̂0 variance than a random good
/// one (ties count half): the area under the ROC curve of the hallucination score as a
/// detector of bad candidates, independent of any threshold (0.5: no better than chance).
/// `None` without both kinds (or with non-finite scores only).
pub fn hallucination_auroc<'a>(
    candidates: impl IntoIterator<Item = &'a CandidateOutcome>,
) -> Option<f64> {
    let mut scored: Vec<(f64, bool)> = candidates
        .into_iter()
        .filter(|c| c.x0_variance.is_finite())
        .map(|c| (c.x0_variance, c.good))
        .collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    let bad = scored.iter().filter(|c| !c.1).count();
    let good = scored.len() - bad;
    if bad == 0 || good == 0 {
        return None;
    }
    // Mann-Whitney: the bad candidates' mean ranks (1-based, ties averaged).
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < scored.len() {
        let mut j = i;
        while j < scored.len() && scored[j].0 == scored[i].0 {
            j += 1;
        }
        let mean_rank = (i + 1 + j) as f64 / 2.0;
        rank_sum += mean_rank * scored[i..j].iter().filter(|c| !c.1).count() as f64;
        i = j;
    }
    let u = rank_sum - (bad * (bad + 1)) as f64 / 2.0;
    Some(u / (bad * good) as f64)
}

fn ratio(numerator: usize, denominator: usize) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

/// The metrics of an evaluation (JSON keys as in the issue; `null` where the denominator is
/// empty, e.g. `mode_coverage` without a scene of two expert modes).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    /// Feasible held-out scenes evaluated.
    pub scenes: usize,
    /// Scenes whose chosen path succeeds (see [`ChosenOutcome`]) / scenes.
    pub success_rate: f64,
    /// Scenes whose chosen path or timed plan collides.
    pub chosen_collisions: usize,
    /// Kept candidates / all candidates of the unconditioned calls.
    pub valid_candidate_rate: f64,
    /// Scenes with >= 2 expert modes whose kept candidates hold every expert mode / such scenes.
    pub mode_coverage: Option<f64>,
    /// Mean over scenes of [`scene_mode_kl`], nats.
    pub mode_kl: Option<f64>,
    /// Mean over mode requests of matching / total candidates.
    pub mode_request_accuracy: Option<f64>,
    /// Bad candidates the planner rejects / bad candidates (unconditioned calls).
    pub filter_recall: Option<f64>,
    /// Good candidates the planner keeps / good candidates (unconditioned calls).
    pub filter_keep_rate: Option<f64>,
    /// Nearest-rank percentiles of the wall-clock time of a planning call, milliseconds.
    pub latency_ms_p50: Option<f64>,
    pub latency_ms_p99: Option<f64>,
}

/// The numbers behind [`Metrics`] (denominators and failure kinds).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricCounts {
    pub successes: usize,
    /// Scenes without a valid candidate.
    pub no_valid_candidate: usize,
    /// Chosen paths ending more than [`SUCCESS_GOAL_TOLERANCE_M`] from the goal.
    pub chosen_goal_misses: usize,
    pub chosen_limit_violations: usize,
    pub candidates: usize,
    pub kept_candidates: usize,
    pub good_candidates: usize,
    pub bad_candidates: usize,
    pub bad_rejected: usize,
    pub good_kept: usize,
    pub multimodal_scenes: usize,
    pub covered_scenes: usize,
    pub mode_requests: usize,
    pub planning_calls: usize,
    /// Unconditioned calls' candidates the repair bent, and among them those that collided
    /// before (the others only came closer than the margin).
    pub repaired_candidates: usize,
    pub collisions_repaired: usize,
    /// Unconditioned calls' candidates per rejection kind (a candidate may have several).
    pub rejections: std::collections::BTreeMap<&'static str, usize>,
    /// [`hallucination_auroc`] over the unconditioned calls.
    pub hallucination_auroc: Option<f64>,
}

impl Metrics {
    /// Aggregates `scenes` and the planning-call latencies (ms).
    pub fn compute(scenes: &[SceneOutcome], latencies_ms: &[f64]) -> (Metrics, MetricCounts) {
        let mut c = MetricCounts {
            successes: 0,
            no_valid_candidate: 0,
            chosen_goal_misses: 0,
            chosen_limit_violations: 0,
            candidates: 0,
            kept_candidates: 0,
            good_candidates: 0,
            bad_candidates: 0,
            bad_rejected: 0,
            good_kept: 0,
            multimodal_scenes: 0,
            covered_scenes: 0,
            mode_requests: 0,
            planning_calls: latencies_ms.len(),
            repaired_candidates: 0,
            collisions_repaired: 0,
            rejections: Default::default(),
            hallucination_auroc: hallucination_auroc(scenes.iter().flat_map(|s| &s.candidates)),
        };
        let mut collisions = 0;
        let mut kl_sum = 0.0;
        let mut kl_count = 0;
        let mut request_sum = 0.0;
        for scene in scenes {
            match scene.chosen {
                ChosenOutcome::NoneValid => c.no_valid_candidate += 1,
                ChosenOutcome::Chosen {
                    success,
                    collides,
                    out_of_limits,
                    misses_goal,
                } => {
                    c.successes += usize::from(success);
                    collisions += usize::from(collides);
                    c.chosen_limit_violations += usize::from(out_of_limits);
                    c.chosen_goal_misses += usize::from(misses_goal);
                }
            }
            for candidate in &scene.candidates {
                c.candidates += 1;
                c.kept_candidates += usize::from(candidate.kept);
                c.repaired_candidates += usize::from(candidate.repaired);
                c.collisions_repaired += usize::from(candidate.collision_repaired);
                for kind in &candidate.reasons {
                    *c.rejections.entry(kind).or_default() += 1;
                }
                if candidate.good {
                    c.good_candidates += 1;
                    c.good_kept += usize::from(candidate.kept);
                } else {
                    c.bad_candidates += 1;
                    c.bad_rejected += usize::from(!candidate.kept);
                }
            }
            if scene.multimodal() {
                c.multimodal_scenes += 1;
                c.covered_scenes += usize::from(scene.covered());
            }
            if let Some(kl) = scene_mode_kl(&scene.expert_counts, &scene.candidates) {
                kl_sum += kl;
                kl_count += 1;
            }
            for request in &scene.requests {
                c.mode_requests += 1;
                request_sum += ratio(request.matching, request.total).unwrap_or(0.0);
            }
        }
        let metrics = Metrics {
            scenes: scenes.len(),
            success_rate: ratio(c.successes, scenes.len()).unwrap_or(0.0),
            chosen_collisions: collisions,
            valid_candidate_rate: ratio(c.kept_candidates, c.candidates).unwrap_or(0.0),
            mode_coverage: ratio(c.covered_scenes, c.multimodal_scenes),
            mode_kl: (kl_count > 0).then(|| kl_sum / kl_count as f64),
            mode_request_accuracy: (c.mode_requests > 0)
                .then(|| request_sum / c.mode_requests as f64),
            filter_recall: ratio(c.bad_rejected, c.bad_candidates),
            filter_keep_rate: ratio(c.good_kept, c.good_candidates),
            latency_ms_p50: percentile(latencies_ms, 0.5),
            latency_ms_p99: percentile(latencies_ms, 0.99),
        };
        (metrics, c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::robot::RobotDescription;

    fn cand(label: Option<usize>, kept: bool, good: bool) -> CandidateOutcome {
        CandidateOutcome {
            label,
            kept,
            good,
            x0_variance: 0.0,
            reasons: if kept { vec![] } else { vec!["collision"] },
            repaired: false,
            collision_repaired: false,
        }
    }

    fn chosen(success: bool, collides: bool) -> ChosenOutcome {
        ChosenOutcome::Chosen {
            success,
            collides,
            out_of_limits: false,
            misses_goal: !success && !collides,
        }
    }

    #[test]
    fn ground_truth_check_of_paths() {
        let arm = PlanarArm::new(RobotDescription::planar_2link()).unwrap();
        let path = JointPath::from_waypoints(&[vec![0.0, 0.0], vec![1.0, 0.0]]).unwrap();
        let goal = arm.end_effector(&[1.0, 0.0]);
        let check = check_path(&arm, &path, goal, &[]);
        assert!(check.good() && check.goal_error_m < 1e-12, "{check:?}");
        // 1.9 cm off: still good; 2.1 cm: a miss.
        let near = [goal[0] + 0.019, goal[1]];
        assert!(check_path(&arm, &path, near, &[]).good());
        let far = [goal[0] + 0.021, goal[1]];
        assert!(check_path(&arm, &path, far, &[]).misses_goal());
        // An obstacle on the swept arc at 0.5 rad (not at either waypoint).
        let on_arc = CircleObstacle {
            center_m: [0.9 * 0.5f64.cos(), 0.9 * 0.5f64.sin()],
            radius_m: 0.02,
        };
        let c = check_path(&arm, &path, goal, &[on_arc]);
        assert!(c.collides && !c.good());
        assert!(arm.collision(&[0.0, 0.0], &[on_arc]).is_none());
        assert!(arm.collision(&[1.0, 0.0], &[on_arc]).is_none());
        let beyond = JointPath::from_waypoints(&[vec![0.0, 0.0], vec![0.0, 2.9]]).unwrap();
        let c = check_path(&arm, &beyond, arm.end_effector(&[0.0, 2.9]), &[]);
        assert!(c.out_of_limits && !c.good());
        let nan = JointPath::from_waypoints(&[vec![0.0, 0.0], vec![f64::NAN, 0.0]]).unwrap();
        let c = check_path(&arm, &nan, goal, &[]);
        assert!(c.non_finite && c.misses_goal() && !c.good());
    }

    #[test]
    fn kl_is_forward_smoothed_and_zero_only_in_the_limit() {
        // Expert: modes 0 and 2 with 1 and 3 paths (P = 1/4, 3/4); M = 4 labels.
        let expert = [1, 0, 3, 0];
        let candidates: Vec<_> = [Some(0), Some(2), Some(2), Some(2), None, Some(1)]
            .into_iter()
            .map(|l| cand(l, true, true))
            .collect();
        // Q(0) = 1.5 / 8.5, Q(2) = 3.5 / 8.5 (K = 6, α (M + 1) = 2.5).
        let want = 0.25 * (0.25f64 / (1.5 / 8.5)).ln() + 0.75 * (0.75f64 / (3.5 / 8.5)).ln();
        let kl = scene_mode_kl(&expert, &candidates).unwrap();
        assert!((kl - want).abs() < 1e-12, "{kl} vs {want}");
        // Missing one of two equal expert modes costs much more than a quarter of the
        // candidates in another mode.
        let even = [1, 0, 1, 0];
        let missing: Vec<_> = (0..8).map(|_| cand(Some(2), true, true)).collect();
        let extra: Vec<_> = [0, 0, 0, 2, 2, 2, 1, 1]
            .into_iter()
            .map(|l| cand(Some(l), true, true))
            .collect();
        let (kl_missing, kl_extra) = (
            scene_mode_kl(&even, &missing).unwrap(),
            scene_mode_kl(&even, &extra).unwrap(),
        );
        assert!((kl_extra - 1.5f64.ln()).abs() < 1e-12, "{kl_extra}");
        assert!(kl_missing > 2.0 * kl_extra, "{kl_missing} {kl_extra}");
        // Many candidates in the expert's proportions: KL tends to 0.
        let matched: Vec<_> = (0..4000)
            .map(|i| cand(Some(if i % 4 == 0 { 0 } else { 2 }), true, true))
            .collect();
        assert!(scene_mode_kl(&expert, &matched).unwrap() < 1e-3);
        assert_eq!(scene_mode_kl(&[0, 0], &matched), None);
    }

    #[test]
    fn coverage_counts_kept_candidates_of_every_expert_mode() {
        let scene = |candidates| SceneOutcome {
            expert_counts: vec![1, 0, 2, 0],
            candidates,
            chosen: chosen(true, false),
            requests: vec![],
        };
        let both = scene(vec![cand(Some(0), true, true), cand(Some(2), true, true)]);
        assert!(both.multimodal() && both.covered());
        // Mode 2 only among rejected candidates: not covered.
        let rejected = scene(vec![cand(Some(0), true, true), cand(Some(2), false, false)]);
        assert!(!rejected.covered());
        let single = SceneOutcome {
            expert_counts: vec![0, 3, 0, 0],
            ..both.clone()
        };
        assert!(!single.multimodal());
        let (m, counts) = Metrics::compute(&[both, rejected, single], &[]);
        assert_eq!((counts.multimodal_scenes, counts.covered_scenes), (2, 1));
        assert_eq!(m.mode_coverage, Some(0.5));
    }

    #[test]
    fn aggregate_metrics_on_a_hand_made_set() {
        let a = SceneOutcome {
            expert_counts: vec![1, 1],
            // good kept, good rejected, bad rejected, bad kept
            candidates: vec![
                cand(Some(0), true, true),
                cand(Some(1), false, true),
                cand(None, false, false),
                cand(Some(1), true, false),
            ],
            chosen: chosen(true, false),
            requests: vec![
                RequestOutcome {
                    mode: 0,
                    matching: 4,
                    total: 4,
                },
                RequestOutcome {
                    mode: 1,
                    matching: 1,
                    total: 4,
                },
            ],
        };
        let b = SceneOutcome {
            expert_counts: vec![2, 0],
            candidates: vec![
                cand(Some(0), false, false),
                cand(Some(0), false, false),
                cand(Some(1), false, true),
                cand(Some(0), false, false),
            ],
            chosen: ChosenOutcome::NoneValid,
            requests: vec![RequestOutcome {
                mode: 0,
                matching: 2,
                total: 4,
            }],
        };
        let c = SceneOutcome {
            chosen: chosen(false, true),
            ..b.clone()
        };
        let latencies = [30.0, 10.0, 20.0, 40.0];
        let (m, counts) = Metrics::compute(&[a, b, c], &latencies);
        assert_eq!(m.scenes, 3);
        assert!((m.success_rate - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(m.chosen_collisions, 1);
        assert_eq!(counts.no_valid_candidate, 1);
        assert_eq!(counts.rejections.get("collision"), Some(&10));
        assert!((m.valid_candidate_rate - 2.0 / 12.0).abs() < 1e-12);
        // Good: 2 in a, 1 in b, 1 in c; kept: 1. Bad: 2 in a (1 rejected), 3 + 3 rejected.
        assert_eq!(m.filter_keep_rate, Some(0.25));
        assert_eq!(m.filter_recall, Some(7.0 / 8.0));
        // Requests: (1 + 0.25 + 0.5 + 0.5) / 4.
        assert_eq!(m.mode_request_accuracy, Some(2.25 / 4.0));
        assert_eq!(m.mode_coverage, Some(1.0));
        assert_eq!(m.latency_ms_p50, Some(20.0));
        assert_eq!(m.latency_ms_p99, Some(40.0));
        assert!(m.mode_kl.unwrap() > 0.0);

        let (empty, _) = Metrics::compute(&[], &[]);
        assert_eq!(empty.success_rate, 0.0);
        assert_eq!(
            (
                empty.mode_coverage,
                empty.filter_recall,
                empty.latency_ms_p50
            ),
            (None, None, None)
        );
    }

    #[test]
    fn auroc_of_the_hallucination_score() {
        let scored = |v: f64, good: bool| CandidateOutcome {
            x0_variance: v,
            ..cand(None, good, good)
        };
        // Perfect separation, reversed, and one swapped pair of four (3 of 4 pairs ordered).
        let perfect = [scored(0.1, true), scored(0.2, true), scored(0.3, false)];
        assert_eq!(hallucination_auroc(&perfect), Some(1.0));
        let reversed = [scored(0.3, true), scored(0.1, false)];
        assert_eq!(hallucination_auroc(&reversed), Some(0.0));
        let mixed = [
            scored(0.1, true),
            scored(0.3, true),
            scored(0.2, false),
            scored(0.4, false),
        ];
        assert_eq!(hallucination_auroc(&mixed), Some(0.75));
        // Ties count half; one kind only: undefined.
        let tied = [scored(0.2, true), scored(0.2, false)];
        assert_eq!(hallucination_auroc(&tied), Some(0.5));
        assert_eq!(hallucination_auroc(&perfect[..2]), None);
        assert_eq!(hallucination_auroc(&[scored(f64::NAN, true)]), None);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), Some(50.0));
        assert_eq!(percentile(&v, 0.99), Some(99.0));
        assert_eq!(percentile(&v[..10], 0.99), Some(10.0));
        assert_eq!(percentile(&[5.0], 0.5), Some(5.0));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
