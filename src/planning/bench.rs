//! A benchmark of what the pipeline adds to a planning call (everything but sampling), on the
//! `blocked` example scene with synthetic candidates: two detour bundles and one bundle straight
//! through the obstacle, with the geometric labeller on.
//!
//! Run: `cargo test --release --no-default-features bench_pipeline -- --ignored --nocapture`.

use std::time::Instant;

use serde::Serialize;

use super::{ConditionTerm, ModeRequest, Planner, PlannerConfig, SyntheticBundle, SyntheticSource};
use crate::robot::{ElbowBranch, PlanarArm, RobotDescription};
use crate::task::{GeometricLabeller, LabelScheme, Scene};
use crate::{Error, Result};

/// `config/scenes/blocked.yaml`, compiled in.
const BLOCKED_SCENE: &str = include_str!("../../config/scenes/blocked.yaml");

/// The `blocked` example scene.
pub fn blocked_scene() -> Result<Scene> {
    Scene::from_yaml_str(BLOCKED_SCENE, "config/scenes/blocked.yaml".as_ref())
}

/// Synthetic candidates for the `blocked` scene on the reference arm: an elbow-down detour
/// (folding the elbow, via `[-0.1, 2.0]` rad), an elbow-up detour (swinging the shoulder, via
/// `[1.1, -1.9]` rad) and straight paths through the obstacle (mode interpolation), with relative
/// `weights` and x̂0 variances `(down, up, through)` (a zero weight drops the bundle). Mode
/// names: `elbow_down`, `elbow_up`.
pub fn blocked_scene_source(
    horizon: usize,
    weights: (usize, usize, usize),
    x0_variance: (f64, f64, f64),
) -> Result<SyntheticSource> {
    let arm = PlanarArm::new(RobotDescription::planar_2link())?;
    let scene = blocked_scene()?;
    let ik = |branch| {
        arm.ik(scene.goal_m, branch)
            .map(|q| q.to_vec())
            .map_err(|e| Error::Invalid(format!("blocked scene goal: {e}")))
    };
    let (down, up) = (ik(ElbowBranch::Down)?, ik(ElbowBranch::Up)?);
    let bundle =
        |via_rad: Vec<Vec<f64>>, end: &[f64], weight, x0_variance, label: &str| SyntheticBundle {
            via_rad,
            end_rad: end.to_vec(),
            weight,
            noise_rad: 0.004,
            x0_variance,
            label: Some(label.to_string()),
        };
    let mut bundles = Vec::new();
    if weights.0 > 0 {
        let via = vec![vec![-0.1, 2.0]];
        bundles.push(bundle(via, &down, weights.0, x0_variance.0, "elbow_down"));
    }
    if weights.1 > 0 {
        let via = vec![vec![1.1, -1.9]];
        bundles.push(bundle(via, &up, weights.1, x0_variance.1, "elbow_up"));
    }
    if weights.2 > 0 {
        bundles.push(bundle(
            vec![],
            &down,
            weights.2,
            x0_variance.2,
            "elbow_down",
        ));
    }
    SyntheticSource::new(
        horizon,
        2,
        vec![
            ConditionTerm::JointPositions,
            ConditionTerm::GoalPosition,
            ConditionTerm::Obstacle,
        ],
        vec!["elbow_down".into(), "elbow_up".into()],
        bundles,
    )
}

/// Pipeline time per call (seconds, everything but sampling), over `iterations` calls.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    pub num_samples: usize,
    pub horizon: usize,
    pub iterations: usize,
    pub mean_secs: f64,
    pub median_secs: f64,
    pub min_secs: f64,
    pub max_secs: f64,
    /// Mean per stage: scoring, clustering, selection (with timing and verification).
    pub mean_scoring_secs: f64,
    pub mean_clustering_secs: f64,
    pub mean_selection_secs: f64,
    /// Mean number of valid candidates per call.
    pub mean_valid: f64,
    /// Wall time of the whole benchmark, including sampling the synthetic candidates.
    pub wall_secs: f64,
}

/// Plans `iterations` times (after one warm-up call) with K = `num_samples` candidates of
/// `horizon` waypoints on the `blocked` scene and reports the pipeline time per call.
pub fn bench_pipeline(
    num_samples: usize,
    horizon: usize,
    iterations: usize,
) -> Result<BenchReport> {
    let started = Instant::now();
    let arm = PlanarArm::new(RobotDescription::planar_2link())?;
    let source = blocked_scene_source(horizon, (5, 3, 2), (0.0, 0.0, 0.0))?;
    let config = PlannerConfig {
        num_samples,
        ..PlannerConfig::default()
    };
    let mut planner =
        Planner::new(arm, Box::new(source), config)?.with_labeller(Box::new(GeometricLabeller {
            scheme: LabelScheme::Elbow,
        }));
    let observation = blocked_scene()?
        .observation(planner.arm(), ModeRequest::Any, planner.mode_names())
        .map_err(|e| Error::Invalid(e.to_string()))?;
    let run = |planner: &mut Planner| {
        planner
            .plan(&observation)
            .map_err(|e| Error::Invalid(e.to_string()))
    };
    run(&mut planner)?;
    let mut totals = Vec::with_capacity(iterations);
    let (mut scoring, mut clustering, mut selection, mut valid) = (0.0, 0.0, 0.0, 0usize);
    for _ in 0..iterations.max(1) {
        let outcome = run(&mut planner)?;
        totals.push(outcome.timings.pipeline_secs);
        scoring += outcome.timings.scoring_secs;
        clustering += outcome.timings.clustering_secs;
        selection += outcome.timings.selection_secs;
        valid += outcome.candidates.iter().filter(|c| c.valid).count();
    }
    let n = totals.len() as f64;
    let mut sorted = totals.clone();
    sorted.sort_by(f64::total_cmp);
    Ok(BenchReport {
        num_samples,
        horizon,
        iterations: totals.len(),
        mean_secs: totals.iter().sum::<f64>() / n,
        median_secs: sorted[sorted.len() / 2],
        min_secs: sorted[0],
        max_secs: sorted[sorted.len() - 1],
        mean_scoring_secs: scoring / n,
        mean_clustering_secs: clustering / n,
        mean_selection_secs: selection / n,
        mean_valid: valid as f64 / n,
        wall_secs: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_runs_small() {
        let report = bench_pipeline(4, 8, 2).unwrap();
        assert_eq!(
            (report.num_samples, report.horizon, report.iterations),
            (4, 8, 2)
        );
        assert!(report.min_secs > 0.0 && report.min_secs <= report.max_secs);
    }

    /// The pipeline benchmark (target < 2 ms for K = 32, T = 32); run in release with
    /// `--ignored --nocapture`.
    #[test]
    #[ignore]
    fn bench_pipeline_k32_t32() {
        let report = bench_pipeline(32, 32, 200).unwrap();
        println!("{}", serde_json::to_string_pretty(&report).unwrap());
        println!(
            "pipeline K=32 T=32: median {:.3} ms, mean {:.3} ms, max {:.3} ms",
            report.median_secs * 1e3,
            report.mean_secs * 1e3,
            report.max_secs * 1e3
        );
    }
}
