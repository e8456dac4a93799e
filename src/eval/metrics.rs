//! The metric definitions of `dplan eval`, as pure functions of per-scene outcomes (see the
//! module docs of [`super`] for the definitions and why they were chosen).
//!
//! Everything here is independent of the model and the planner: the evaluation loop turns each
//! scene into a [`SceneOutcome`] (ground truth from the [`super::oracle`], filter decisions and
//! labels from the planner) and [`RowMetrics::compute`] aggregates them into two columns, the
//! raw network's and the pipeline's.

use serde::Serialize;

/// Additive (Jeffreys) smoothing of the candidate label counts in [`scene_mode_kl`].
pub const KL_SMOOTHING: f64 = 0.5;

/// One candidate of an unconditioned planning call, as sampled (`raw_*`) and as the planner
/// scored it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CandidateOutcome {
    /// Geometric label index of the sample as it came out of the network.
    pub raw_label: Option<usize>,
    /// The oracle's [`super::oracle::PathVerdict::valid`] of the raw sample.
    pub raw_valid: bool,
    pub raw_collides: bool,
    pub raw_goal_error_m: f64,
    /// Geometric label index of the candidate after anchoring, goal snap and repair.
    pub label: Option<usize>,
    /// The planner kept it (no rejection reason): the filter's decision.
    pub kept: bool,
    /// The oracle's verdict on the candidate as scored: valid (finite, within limits,
    /// collision-free, at the start, within 1 cm of the goal).
    pub good: bool,
    pub collides: bool,
    /// The sampler's x̂0 variance (the hallucination score).
    pub x0_variance: f64,
    /// The kinds of the planner's rejection reasons (e.g. `collision`), empty when kept.
    pub reasons: Vec<&'static str>,
    /// The planner's repair bent it; `collision_repaired`: the sample collided before.
    pub repaired: bool,
    pub collision_repaired: bool,
    /// Mean waypoint distance (radians) of the candidate as scored to the nearest expert path
    /// of the scene; `None` for a non-finite path.
    pub expert_distance_rad: Option<f64>,
}

/// The executed plan of one call, judged by the oracle on the timed curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ChosenOutcome {
    /// Collision-free (chosen path and timed curve), within limits, within 1 cm of the goal.
    pub success: bool,
    pub collides: bool,
    pub out_of_limits: bool,
    pub goal_error_m: f64,
    /// The chosen path's label index.
    pub label: Option<usize>,
    pub duration_secs: f64,
    pub path_length_rad: f64,
    pub max_velocity_ratio: f64,
    pub max_acceleration_ratio: f64,
    pub max_jerk_rad_s3: f64,
    /// Plan duration / duration of the fastest expert path of the same label, timed from rest
    /// within the same limits; `None` when the expert has no path of that label.
    pub time_ratio: Option<f64>,
    /// Plan path length / length of the shortest expert path of the same label.
    pub length_ratio: Option<f64>,
}

/// One mode request (classifier-free guidance on an expert mode's label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RequestOutcome {
    /// Requested label index.
    pub mode: usize,
    /// Raw samples whose label is the requested one, of `total`.
    pub raw_matching: usize,
    pub total: usize,
    /// The executed plan exists, succeeds (oracle) and has the requested label.
    pub executed_matches: bool,
}

/// Everything the metrics need about one held-out scene and one row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SceneOutcome {
    /// Expert paths per label index (length = number of mode names).
    pub expert_counts: Vec<usize>,
    /// The expert's modes include a `left` and a `right` route.
    pub both_routes: bool,
    /// The candidates of the unconditioned call.
    pub candidates: Vec<CandidateOutcome>,
    /// The unconditioned call's plan; `None`: no valid candidate (the planner holds).
    pub chosen: Option<ChosenOutcome>,
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

    /// Fraction of the expert modes offered by a usable candidate (`raw`: an oracle-valid raw
    /// sample with that raw label; else a kept, oracle-good candidate with that label).
    pub fn coverage(&self, raw: bool) -> f64 {
        let modes = self.expert_modes();
        if modes.is_empty() {
            return 0.0;
        }
        let offered = modes
            .iter()
            .filter(|&&m| {
                self.candidates.iter().any(|c| {
                    if raw {
                        c.raw_valid && c.raw_label == Some(m)
                    } else {
                        c.kept && c.good && c.label == Some(m)
                    }
                })
            })
            .count();
        offered as f64 / modes.len() as f64
    }

    /// The labels of the candidates the column's distribution is taken from: every raw sample,
    /// or the kept candidates.
    pub fn column_labels(&self, raw: bool) -> Vec<Option<usize>> {
        self.candidates
            .iter()
            .filter(|c| raw || c.kept)
            .map(|c| if raw { c.raw_label } else { c.label })
            .collect()
    }
}

/// `KL(P || Q)` in nats for one scene, over the categories "label m" (m < M) and "no label":
/// `P(c)` = the expert's paths of label `c` / all its paths (0 for "no label"), `Q(c)` =
/// (candidates of label `c` + α) / (K + α (M + 1)) with α = [`KL_SMOOTHING`]. `None` without
/// expert paths.
pub fn scene_mode_kl(expert_counts: &[usize], labels: &[Option<usize>]) -> Option<f64> {
    let m = expert_counts.len();
    let expert_total: usize = expert_counts.iter().sum();
    if expert_total == 0 {
        return None;
    }
    let denominator = labels.len() as f64 + KL_SMOOTHING * (m + 1) as f64;
    let kl = expert_counts
        .iter()
        .enumerate()
        .filter(|(_, &n)| n > 0)
        .map(|(label, &n)| {
            let p = n as f64 / expert_total as f64;
            let count = labels.iter().filter(|l| **l == Some(label)).count();
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

/// The probability that a random positive has a higher score than a random negative (ties
/// count half): the area under the ROC curve of `score` as a detector of `positive`. `None`
/// without both kinds (non-finite scores are left out).
pub fn auroc(scored: impl IntoIterator<Item = (f64, bool)>) -> Option<f64> {
    let mut scored: Vec<(f64, bool)> = scored.into_iter().filter(|s| s.0.is_finite()).collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    let positives = scored.iter().filter(|c| c.1).count();
    let negatives = scored.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    // Mann-Whitney: the positives' ranks (1-based, ties averaged).
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < scored.len() {
        let mut j = i;
        while j < scored.len() && scored[j].0 == scored[i].0 {
            j += 1;
        }
        let mean_rank = (i + 1 + j) as f64 / 2.0;
        rank_sum += mean_rank * scored[i..j].iter().filter(|c| c.1).count() as f64;
        i = j;
    }
    let u = rank_sum - (positives * (positives + 1)) as f64 / 2.0;
    Some(u / (positives * negatives) as f64)
}

fn ratio(numerator: usize, denominator: usize) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// One column (raw network or pipeline) of a row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnMetrics {
    /// Raw: oracle-valid samples / all samples. Pipeline: candidates the planner keeps and the
    /// oracle finds good / all candidates.
    pub valid_rate: f64,
    /// Raw: samples that collide / all. Pipeline: kept candidates that collide / kept.
    pub collision_rate: Option<f64>,
    /// Median and p90 end-effector goal error, metres: raw over all finite samples; pipeline
    /// over the executed plans.
    pub goal_error_m_p50: Option<f64>,
    pub goal_error_m_p90: Option<f64>,
    /// Scenes with >= 2 expert modes where every mode is offered (see
    /// [`SceneOutcome::coverage`]) / such scenes.
    pub mode_coverage: Option<f64>,
    /// Mean per-scene coverage fraction over scenes whose expert has both routes.
    pub per_scene_coverage_both_routes: Option<f64>,
    /// Per-scene [`scene_mode_kl`] (raw: all samples; pipeline: kept candidates): mean, p90.
    pub mode_kl_mean: Option<f64>,
    pub mode_kl_p90: Option<f64>,
    /// Raw: mean over requests of matching / K samples. Pipeline: requests whose executed plan
    /// succeeds in the requested mode / requests.
    pub request_accuracy: Option<f64>,
}

/// What the executed plans of the unconditioned calls are like (pipeline only).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutedMetrics {
    /// Scenes whose plan succeeds (oracle) / scenes; no plan is a failure.
    pub success_rate: f64,
    /// Scenes whose plan collides (oracle, timed curve or chosen path).
    pub chosen_collisions: usize,
    pub no_plan: usize,
    pub limit_violations: usize,
    pub goal_misses: usize,
    /// Plan duration and path length over the same-mode expert reference: median, p90, and the
    /// plans with a reference.
    pub time_ratio_p50: Option<f64>,
    pub time_ratio_p90: Option<f64>,
    pub length_ratio_p50: Option<f64>,
    pub length_ratio_p90: Option<f64>,
    pub with_reference: usize,
    pub duration_secs_p50: Option<f64>,
    pub max_velocity_ratio: Option<f64>,
    pub max_acceleration_ratio: Option<f64>,
    pub max_jerk_rad_s3_p50: Option<f64>,
    pub max_jerk_rad_s3_max: Option<f64>,
}

/// The planner's filter against the oracle, over the unconditioned calls' candidates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FilterMetrics {
    /// Bad candidates (oracle) the planner rejects / bad candidates.
    pub recall: Option<f64>,
    /// Good candidates it keeps / good candidates.
    pub keep_rate: Option<f64>,
    /// Kept candidates that the oracle finds colliding (the filter's misses).
    pub kept_colliding: usize,
    pub candidates: usize,
    pub good: usize,
    pub bad: usize,
    /// Candidates per rejection kind (a candidate may have several).
    pub rejections: std::collections::BTreeMap<&'static str, usize>,
    pub repaired: usize,
    pub collisions_repaired: usize,
}

/// Everything about one row (a candidate source) of the evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowMetrics {
    pub scenes: usize,
    pub multimodal_scenes: usize,
    pub both_route_scenes: usize,
    pub mode_requests: usize,
    pub raw: ColumnMetrics,
    pub pipeline: ColumnMetrics,
    pub executed: ExecutedMetrics,
    pub filter: FilterMetrics,
}

fn column(scenes: &[SceneOutcome], raw: bool) -> ColumnMetrics {
    let candidates: Vec<&CandidateOutcome> = scenes.iter().flat_map(|s| &s.candidates).collect();
    let valid = candidates
        .iter()
        .filter(|c| if raw { c.raw_valid } else { c.kept && c.good })
        .count();
    let collision_rate = if raw {
        ratio(
            candidates.iter().filter(|c| c.raw_collides).count(),
            candidates.len(),
        )
    } else {
        ratio(
            candidates.iter().filter(|c| c.kept && c.collides).count(),
            candidates.iter().filter(|c| c.kept).count(),
        )
    };
    let goal_errors: Vec<f64> = if raw {
        candidates
            .iter()
            .map(|c| c.raw_goal_error_m)
            .filter(|e| e.is_finite())
            .collect()
    } else {
        scenes
            .iter()
            .filter_map(|s| s.chosen.map(|c| c.goal_error_m))
            .collect()
    };
    let multimodal: Vec<&SceneOutcome> = scenes.iter().filter(|s| s.multimodal()).collect();
    let covered = multimodal.iter().filter(|s| s.coverage(raw) >= 1.0).count();
    let both: Vec<f64> = scenes
        .iter()
        .filter(|s| s.both_routes)
        .map(|s| s.coverage(raw))
        .collect();
    let kls: Vec<f64> = scenes
        .iter()
        .filter_map(|s| scene_mode_kl(&s.expert_counts, &s.column_labels(raw)))
        .collect();
    let requests: Vec<&RequestOutcome> = scenes.iter().flat_map(|s| &s.requests).collect();
    let request_scores: Vec<f64> = requests
        .iter()
        .map(|r| {
            if raw {
                ratio(r.raw_matching, r.total).unwrap_or(0.0)
            } else {
                f64::from(u8::from(r.executed_matches))
            }
        })
        .collect();
    ColumnMetrics {
        valid_rate: ratio(valid, candidates.len()).unwrap_or(0.0),
        collision_rate,
        goal_error_m_p50: percentile(&goal_errors, 0.5),
        goal_error_m_p90: percentile(&goal_errors, 0.9),
        mode_coverage: ratio(covered, multimodal.len()),
        per_scene_coverage_both_routes: mean(&both),
        mode_kl_mean: mean(&kls),
        mode_kl_p90: percentile(&kls, 0.9),
        request_accuracy: mean(&request_scores),
    }
}

fn executed(scenes: &[SceneOutcome]) -> ExecutedMetrics {
    let chosen: Vec<&ChosenOutcome> = scenes.iter().filter_map(|s| s.chosen.as_ref()).collect();
    let collect = |f: &dyn Fn(&ChosenOutcome) -> Option<f64>| -> Vec<f64> {
        chosen.iter().filter_map(|c| f(c)).collect()
    };
    let time = collect(&|c| c.time_ratio);
    let length = collect(&|c| c.length_ratio);
    let jerk = collect(&|c| Some(c.max_jerk_rad_s3));
    let fold_max = |v: Vec<f64>| v.into_iter().reduce(f64::max);
    ExecutedMetrics {
        success_rate: ratio(chosen.iter().filter(|c| c.success).count(), scenes.len())
            .unwrap_or(0.0),
        chosen_collisions: chosen.iter().filter(|c| c.collides).count(),
        no_plan: scenes.len() - chosen.len(),
        limit_violations: chosen.iter().filter(|c| c.out_of_limits).count(),
        goal_misses: chosen
            .iter()
            .filter(|c| !(c.goal_error_m <= super::oracle::ORACLE_GOAL_TOLERANCE_M))
            .count(),
        time_ratio_p50: percentile(&time, 0.5),
        time_ratio_p90: percentile(&time, 0.9),
        length_ratio_p50: percentile(&length, 0.5),
        length_ratio_p90: percentile(&length, 0.9),
        with_reference: time.len(),
        duration_secs_p50: percentile(&collect(&|c| Some(c.duration_secs)), 0.5),
        max_velocity_ratio: fold_max(collect(&|c| Some(c.max_velocity_ratio))),
        max_acceleration_ratio: fold_max(collect(&|c| Some(c.max_acceleration_ratio))),
        max_jerk_rad_s3_p50: percentile(&jerk, 0.5),
        max_jerk_rad_s3_max: fold_max(jerk),
    }
}

fn filter(scenes: &[SceneOutcome]) -> FilterMetrics {
    let mut f = FilterMetrics {
        recall: None,
        keep_rate: None,
        kept_colliding: 0,
        candidates: 0,
        good: 0,
        bad: 0,
        rejections: Default::default(),
        repaired: 0,
        collisions_repaired: 0,
    };
    let (mut bad_rejected, mut good_kept) = (0, 0);
    for c in scenes.iter().flat_map(|s| &s.candidates) {
        f.candidates += 1;
        f.kept_colliding += usize::from(c.kept && c.collides);
        f.repaired += usize::from(c.repaired);
        f.collisions_repaired += usize::from(c.collision_repaired);
        for kind in &c.reasons {
            *f.rejections.entry(kind).or_default() += 1;
        }
        if c.good {
            f.good += 1;
            good_kept += usize::from(c.kept);
        } else {
            f.bad += 1;
            bad_rejected += usize::from(!c.kept);
        }
    }
    f.recall = ratio(bad_rejected, f.bad);
    f.keep_rate = ratio(good_kept, f.good);
    f
}

impl RowMetrics {
    /// Aggregates one row's scenes.
    pub fn compute(scenes: &[SceneOutcome]) -> RowMetrics {
        RowMetrics {
            scenes: scenes.len(),
            multimodal_scenes: scenes.iter().filter(|s| s.multimodal()).count(),
            both_route_scenes: scenes.iter().filter(|s| s.both_routes).count(),
            mode_requests: scenes.iter().map(|s| s.requests.len()).sum(),
            raw: column(scenes, true),
            pipeline: column(scenes, false),
            executed: executed(scenes),
            filter: filter(scenes),
        }
    }
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
