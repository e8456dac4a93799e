//! What the x̂0-variance ("hallucination", mode-interpolation) score catches beyond the
//! collision check, measured on the model row's unconditioned candidates.
//!
//! A candidate is **in between** when its scene has at least two expert modes and the
//! candidate (as scored: anchored, snapped, repaired) is farther than `in_between_rad` (mean
//! waypoint distance, the planner's default `cluster_threshold_rad`) from every expert path of
//! the scene: it belongs to no expert mode. The scenes are split by index: even scenes
//! **calibrate** the threshold (the x̂0 variance that keeps `target_keep_rate` of the in-mode,
//! oracle-good candidates), odd scenes **test** it. The question is what the score adds to the
//! collision check: among the test candidates the oracle finds collision-free, how many
//! in-between ones it flags (recall), how many of its flags are in between (precision), and
//! its AUROC for in-between vs in-mode.

use serde::Serialize;

use super::metrics::{auroc, percentile, CandidateOutcome, SceneOutcome};

/// Keep rate of in-mode good candidates the threshold is calibrated for.
pub const TARGET_KEEP_RATE: f64 = 0.95;

/// The study's numbers (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HallucinationStudy {
    pub in_between_rad: f64,
    pub target_keep_rate: f64,
    pub calibration_scenes: usize,
    pub test_scenes: usize,
    /// Calibrated x̂0-variance threshold; `None` without in-mode good calibration candidates.
    pub threshold: Option<f64>,
    /// Test split: candidates, in-between ones, and those of them the oracle finds colliding.
    pub test_candidates: usize,
    pub in_between: usize,
    pub in_between_colliding: usize,
    /// Test candidates the oracle finds collision-free, and the in-between ones among them
    /// (what a collision check cannot catch).
    pub collision_free: usize,
    pub collision_free_in_between: usize,
    /// Collision-free test candidates above the threshold, and the in-between ones among them.
    pub flagged: usize,
    pub flagged_in_between: usize,
    /// `flagged_in_between / collision_free_in_between`.
    pub recall: Option<f64>,
    /// `flagged_in_between / flagged`.
    pub precision: Option<f64>,
    /// In-mode good test candidates under the threshold / all of them (the achieved keep rate).
    pub test_keep_rate: Option<f64>,
    /// AUROC of the score for in-between vs in-mode, over collision-free test candidates.
    pub auroc_in_between: Option<f64>,
    /// AUROC of the score for oracle-bad vs good, over all test candidates.
    pub auroc_bad: Option<f64>,
}

fn in_between(scene: &SceneOutcome, c: &CandidateOutcome, in_between_rad: f64) -> bool {
    scene.multimodal() && c.expert_distance_rad.is_none_or(|d| d > in_between_rad)
}

/// Runs the study on one row's scenes.
pub fn study(scenes: &[SceneOutcome], in_between_rad: f64) -> HallucinationStudy {
    let split = |parity: usize| -> Vec<(&SceneOutcome, &CandidateOutcome)> {
        scenes
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 2 == parity)
            .flat_map(|(_, s)| s.candidates.iter().map(move |c| (s, c)))
            .collect()
    };
    let (calibration, test) = (split(0), split(1));
    let in_mode_good =
        |(s, c): &(&SceneOutcome, &CandidateOutcome)| c.good && !in_between(s, c, in_between_rad);
    let calibration_scores: Vec<f64> = calibration
        .iter()
        .filter(|p| in_mode_good(p))
        .map(|(_, c)| c.x0_variance)
        .collect();
    let threshold = percentile(&calibration_scores, TARGET_KEEP_RATE);
    let above = |c: &CandidateOutcome| threshold.is_some_and(|t| c.x0_variance > t);
    let between: Vec<bool> = test
        .iter()
        .map(|(s, c)| in_between(s, c, in_between_rad))
        .collect();
    let count = |f: &dyn Fn(usize) -> bool| (0..test.len()).filter(|&i| f(i)).count();
    let free = |i: usize| !test[i].1.collides;
    let collision_free_in_between = count(&|i| free(i) && between[i]);
    let flagged = count(&|i| free(i) && above(test[i].1));
    let flagged_in_between = count(&|i| free(i) && between[i] && above(test[i].1));
    let good_in_mode: Vec<&CandidateOutcome> = test
        .iter()
        .filter(|p| in_mode_good(p))
        .map(|(_, c)| *c)
        .collect();
    let ratio = |a: usize, b: usize| (b > 0).then(|| a as f64 / b as f64);
    HallucinationStudy {
        in_between_rad,
        target_keep_rate: TARGET_KEEP_RATE,
        calibration_scenes: scenes.len().div_ceil(2),
        test_scenes: scenes.len() / 2,
        threshold,
        test_candidates: test.len(),
        in_between: count(&|i| between[i]),
        in_between_colliding: count(&|i| between[i] && !free(i)),
        collision_free: count(&free),
        collision_free_in_between,
        flagged,
        flagged_in_between,
        recall: ratio(flagged_in_between, collision_free_in_between),
        precision: ratio(flagged_in_between, flagged),
        test_keep_rate: ratio(
            good_in_mode.iter().filter(|c| !above(c)).count(),
            good_in_mode.len(),
        ),
        auroc_in_between: auroc(
            (0..test.len())
                .filter(|&i| free(i))
                .map(|i| (test[i].1.x0_variance, between[i])),
        ),
        auroc_bad: auroc(test.iter().map(|(_, c)| (c.x0_variance, !c.good))),
    }
}
