//! The shipped model `models/planar_arm` on 50 held-out scenes: the CI check, with
//! thresholds slightly below the 1000-scene targets (success 0.98, coverage 0.90, request
//! accuracy 0.95, filter recall and keep rate 0.90) and below what the shipped weights measure
//! on these scenes (success 1.00, coverage 0.95, request accuracy 0.99, filter recall 1.00,
//! keep rate 1.00 at step 70000, with the candidate repair), so a change to the model, sampler
//! or planner that loses quality fails here. Skipped, with a message, when the model folder is
//! not there.
//!
//! The seed differs from the training data's (20261129), from the seed the planner settings
//! were looked at on (99) and from the README's evaluation (20261201). About a minute on 2
//! CPU cores.

use std::path::Path;
use std::time::Instant;

use diffusion_planner::eval::{run, EvalArgs};

const SCENES: usize = 50;
const SEED: u64 = 4_242;

const MIN_SUCCESS_RATE: f64 = 0.96;
const MAX_CHOSEN_COLLISIONS: usize = 0;
const MIN_MODE_COVERAGE: f64 = 0.88;
const MIN_MODE_REQUEST_ACCURACY: f64 = 0.93;
const MIN_FILTER_RECALL: f64 = 0.9;
const MIN_FILTER_KEEP_RATE: f64 = 0.9;

#[test]
fn shipped_model_passes_a_50_scene_eval() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = root.join("models/planar_arm");
    if !model.join("model.yaml").exists() {
        eprintln!(
            "skipped: {} not found (the shipped model is not in this checkout)",
            model.join("model.yaml").display()
        );
        return;
    }
    let mut args = EvalArgs::new(&model, SCENES, SEED);
    args.data_config = root.join("config/data_planar_arm.yaml");
    let started = Instant::now();
    let report = run(&args).expect("eval of the shipped model");
    let summary = report.summary();
    eprintln!(
        "{summary}  ({:.1} s: expert {:.1} s, planning {:.1} s)",
        started.elapsed().as_secs_f64(),
        report.expert_secs,
        report.planning_secs
    );

    let m = &report.metrics;
    let some = |name: &str, value: Option<f64>| {
        value.unwrap_or_else(|| panic!("{name} is undefined on these scenes\n{summary}"))
    };
    let mut failed = Vec::new();
    let mut at_least = |name: &str, value: f64, min: f64| {
        if !(value >= min) {
            failed.push(format!("{name} = {value:.3} < {min}"));
        }
    };
    at_least("success_rate", m.success_rate, MIN_SUCCESS_RATE);
    at_least(
        "mode_coverage",
        some("mode_coverage", m.mode_coverage),
        MIN_MODE_COVERAGE,
    );
    at_least(
        "mode_request_accuracy",
        some("mode_request_accuracy", m.mode_request_accuracy),
        MIN_MODE_REQUEST_ACCURACY,
    );
    at_least(
        "filter_recall",
        some("filter_recall", m.filter_recall),
        MIN_FILTER_RECALL,
    );
    at_least(
        "filter_keep_rate",
        some("filter_keep_rate", m.filter_keep_rate),
        MIN_FILTER_KEEP_RATE,
    );
    if m.chosen_collisions > MAX_CHOSEN_COLLISIONS {
        failed.push(format!(
            "chosen_collisions = {} > {MAX_CHOSEN_COLLISIONS}",
            m.chosen_collisions
        ));
    }
    assert!(failed.is_empty(), "{}\n{summary}", failed.join("\n"));
}
