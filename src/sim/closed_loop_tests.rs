//! Tests of `dplan closed-loop` with the geometric source (fast: three scenes).

use std::path::PathBuf;

use super::*;

fn repo(path: &str) -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn args(scenes: usize, seed: u64) -> ClosedLoopArgs {
    let mut args = ClosedLoopArgs::new(SYNTHETIC_MODEL_PATH, scenes, seed);
    args.params = repo("config/planar_arm.yaml");
    args.data_config = repo("config/data_planar_arm.yaml");
    args.latency_ms = Some(20.0);
    args
}

#[test]
fn the_synthetic_source_reaches_goals_without_collisions_in_closed_loop() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = args(3, 11);
    a.json = Some(dir.path().join("closed_loop.json"));
    let mut calls = 0;
    let report = run_closed_loop(&a, &mut |done, total| {
        calls += 1;
        assert_eq!((done, total), (calls, 3));
    })
    .unwrap();
    assert_eq!(report.scenes, 3);
    assert_eq!(report.collisions, 0, "{report:#?}");
    assert_eq!(report.rejected_trajectories, 0, "{report:#?}");
    assert!(report.successes >= 2, "{report:#?}");
    for scene in report.per_scene.iter().filter(|s| s.success) {
        let t = scene.time_to_goal_secs.unwrap();
        assert!(t > 0.1 && t < a.timeout_secs, "{scene:?}");
        assert!(scene.planning_calls >= 1);
        assert!(scene.final_goal_distance_m.unwrap() <= 0.02);
    }
    assert!(report.min_clearance_m.unwrap() > 0.0);
    assert_eq!(report.latency_model, "fixed 20 ms");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.json.unwrap()).unwrap()).unwrap();
    assert_eq!(json["scenes"], 3);
    assert!(report.summary().contains("success rate"));
    // Fixed latency and the CPU: the same run gives the same scenes and outcomes.
    let again = run_closed_loop(&args(3, 11), &mut |_, _| {}).unwrap();
    let outcome = |r: &ClosedLoopReport| {
        r.per_scene
            .iter()
            .map(|s| (s.draw, s.success, s.time_to_goal_secs, s.modes.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(outcome(&report), outcome(&again));
}

#[test]
fn bad_arguments_name_the_key() {
    let err = run_closed_loop(&args(0, 11), &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("`scenes`"), "{err}");
    let mut a = args(1, 11);
    a.latency_ms = Some(-1.0);
    let err = run_closed_loop(&a, &mut |_, _| {}).unwrap_err().to_string();
    assert!(err.contains("`latency_ms`"), "{err}");
    // The training data's seed (config/data_planar_arm.yaml) is refused.
    let training_seed = DataConfig::load(&repo("config/data_planar_arm.yaml"))
        .unwrap()
        .seed;
    let err = run_closed_loop(&args(1, training_seed), &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("`seed`"), "{err}");
}
