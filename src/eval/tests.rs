use std::path::{Path, PathBuf};

use clap::Parser;

use super::*;
use crate::planning::{random_model_folder, tiny_model_spec};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: EvalArgs,
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The shipped data config with a coarser expert grid (faster; the same scenes).
fn data_config(dir: &Path) -> PathBuf {
    let mut config = DataConfig::load(&repo("config/data_planar_arm.yaml")).unwrap();
    config.expert.grid_cells = 61;
    let path = dir.join("data.yaml");
    std::fs::write(&path, serde_yaml::to_string(&config).unwrap()).unwrap();
    path
}

/// A tiny random model with the shipped model's mode names and a short `loss.csv`.
fn model(dir: &Path) -> PathBuf {
    let path = dir.join("model");
    let spec = tiny_model_spec(8, &LabelScheme::SideElbow.names());
    random_model_folder(&path, &spec, 5).unwrap();
    std::fs::write(
        path.join("loss.csv"),
        "step,loss,learning_rate,grad_norm,elapsed_secs\n50,1.0,1e-4,1.0,1.0\n\
         100,0.5,2e-4,0.9,2.0\n150,0.2,3e-4,0.8,3.0\n",
    )
    .unwrap();
    path
}

/// 3 scenes, K = 8, DDIM 3 steps.
fn args(dir: &Path, extra: &[&str]) -> EvalArgs {
    let model = model(dir).to_string_lossy().into_owned();
    let data = data_config(dir).to_string_lossy().into_owned();
    let mut argv = vec!["eval", "--model", &model, "--data-config", &data];
    argv.extend_from_slice(&["--scenes", "3"]);
    if !extra.contains(&"--seed") {
        argv.extend_from_slice(&["--seed", "99"]);
    }
    argv.extend_from_slice(&["--num-samples", "8", "--steps", "3"]);
    argv.extend_from_slice(extra);
    Cli::try_parse_from(argv).unwrap().args
}

fn in_unit(value: &serde_json::Value, key: &str) {
    let v = value[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key}: {value}"));
    assert!((0.0..=1.0).contains(&v), "{key} = {v}");
}

#[test]
fn untrained_model_runs_and_fails_the_targets() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("eval.json");
    let report_dir = dir.path().join("report");
    let json_arg = json.to_string_lossy().into_owned();
    let report_arg = report_dir.to_string_lossy().into_owned();
    let args = args(
        dir.path(),
        &[
            "--json",
            &json_arg,
            "--report",
            &report_arg,
            "--gallery",
            "2",
        ],
    );
    let report = run(&args).unwrap();

    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = value["rows"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["model", "random_weights", "expert"]);
    for row in rows {
        assert_eq!(row["scenes"], 3);
        for column in ["raw", "pipeline"] {
            in_unit(&row[column], "valid_rate");
            in_unit(&row[column], "request_accuracy");
            assert!(row[column]["mode_kl_mean"].as_f64().unwrap() >= 0.0);
        }
        in_unit(&row["executed"], "success_rate");
        assert!(row["executed"]["chosen_collisions"].as_u64().unwrap() <= 3);
    }
    let split = &rows[0]["latency_split_ms"];
    let (p50, p99) = (
        split["unconditioned_p50"].as_f64().unwrap(),
        split["unconditioned_p99"].as_f64().unwrap(),
    );
    assert!(p50 > 0.0 && p99 >= p50, "{p50} {p99}");
    assert!(value["hallucination"]["test_candidates"].as_u64().is_some());

    // Random weights propose noise: raw samples are never executable as they are, the
    // requested modes are not followed reliably, and the success target fails.
    let m = report.model_row();
    assert!(m.executed.success_rate < 0.95, "{}", report.summary());
    assert_eq!(m.raw.valid_rate, 0.0, "{}", report.summary());
    assert!(m.raw.request_accuracy.unwrap() < 0.9);
    assert_eq!(m.filter.candidates, 3 * 8);
    assert_eq!(m.filter.good + m.filter.bad, m.filter.candidates);
    assert!(m.filter.bad > 0);
    // One request per expert mode.
    let modes: usize = report
        .per_scene
        .iter()
        .map(|s| s.expert_modes().len())
        .sum();
    assert_eq!(m.mode_requests, modes);
    assert_eq!(report.model.mode_names, LabelScheme::SideElbow.names());
    let shares: f64 = report.mode_histogram.candidates.iter().sum();
    assert!((shares - 1.0).abs() < 1e-9, "{shares}");

    // The expert row is the ceiling: its own paths, valid as sampled, every mode offered and
    // every request met by construction.
    let expert = &report.row("expert").unwrap().metrics;
    assert!(expert.raw.valid_rate > 0.99, "{}", report.summary());
    assert_eq!(expert.raw.request_accuracy, Some(1.0));
    assert_eq!(expert.executed.chosen_collisions, 0);
    assert_eq!(expert.executed.success_rate, 1.0, "{}", report.summary());
    // The planner times an expert path of the chosen label: never faster than the fastest.
    let t = expert.executed.time_ratio_p50.unwrap();
    assert!(t >= 1.0 - 1e-6, "{t}");

    for file in ["README.md", "gallery.png", "modes.png", "loss.png"] {
        let len = std::fs::metadata(report_dir.join(file)).unwrap().len();
        assert!(len > 1000, "{file}: {len} bytes");
    }
    let readme = std::fs::read_to_string(report_dir.join("README.md")).unwrap();
    assert!(readme.contains("| valid rate |") && readme.contains("loss.png"));
    assert!(readme.contains("model raw | model pipeline"));
}

#[test]
fn seeded_runs_are_identical_but_for_latency() {
    let dir = tempfile::tempdir().unwrap();
    let quick = ["--gallery", "0", "--baseline-scenes", "0"];
    let a = run(&args(dir.path(), &quick)).unwrap();
    let b = run(&args(dir.path(), &quick)).unwrap();
    assert_eq!(a.per_scene, b.per_scene);
    assert_eq!(a.model_row(), b.model_row());
    assert_eq!(a.hallucination, b.hallucination);
    assert!(a.gallery.is_empty());
    assert_eq!(a.rows.len(), 2);
    // Another seed, other scenes.
    let c = run(&args(
        dir.path(),
        &["--seed", "100", "--gallery", "0", "--baseline-scenes", "0"],
    ))
    .unwrap();
    assert_ne!(a.per_scene, c.per_scene);
}

#[test]
fn training_seed_and_foreign_models_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut bad = args(dir.path(), &[]);
    // The data config's own seed (the repository's config/data_planar_arm.yaml).
    let training_seed = DataConfig::load(&data_config(dir.path())).unwrap().seed;
    bad.seed = training_seed;
    let err = run(&bad).unwrap_err().to_string();
    assert!(
        err.contains("seed") && err.contains(&training_seed.to_string()),
        "{err}"
    );

    // A model whose mode names are no label scheme's.
    let other = dir.path().join("other");
    let spec = tiny_model_spec(8, &["a".to_string(), "b".to_string()]);
    random_model_folder(&other, &spec, 1).unwrap();
    let mut foreign = args(dir.path(), &[]);
    foreign.model = other;
    let err = run(&foreign).unwrap_err().to_string();
    assert!(err.contains("modes.names"), "{err}");

    let mut zero = args(dir.path(), &[]);
    zero.scenes = 0;
    assert!(run(&zero).is_err());
}

#[test]
fn held_out_scenes_are_feasible_and_labelled() {
    let dir = tempfile::tempdir().unwrap();
    let config = DataConfig::load(&data_config(dir.path())).unwrap();
    let mut calls = 0;
    let set = held_out_scenes(&config, LabelScheme::SideElbow, 7, 4, &mut |_| calls += 1).unwrap();
    assert_eq!(set.scenes.len(), 4);
    assert_eq!(calls, 4 + set.infeasible);
    let arm = PlanarArm::new(config.robot.clone()).unwrap();
    let oracle = Oracle::new(&config.robot);
    for s in &set.scenes {
        assert!(!s.expert.is_empty());
        for mode in &s.expert {
            assert!(mode.label < 4);
            let v = oracle.path(
                &mode.path,
                &s.scene.start_rad,
                s.scene.goal_m,
                &s.scene.obstacles,
            );
            assert!(v.valid(), "draw {}: {v:?}", s.draw);
        }
    }
    // The draws are the scene sampler's stream from the seed: the first scene is its first
    // feasible draw.
    let first = crate::task::sample_scenes(&arm, &config.scene_sampler, 7, 1).unwrap();
    if set.scenes[0].draw == 0 {
        assert_eq!(set.scenes[0].scene, first[0]);
    }
}

#[test]
fn loss_curve_is_read_by_header() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(read_loss_curve(dir.path()).unwrap(), None);
    std::fs::write(dir.path().join("loss.csv"), "loss,step\n0.5,10\n0.25,20\n").unwrap();
    assert_eq!(
        read_loss_curve(dir.path()).unwrap(),
        Some(vec![(10.0, 0.5), (20.0, 0.25)])
    );
    std::fs::write(dir.path().join("loss.csv"), "step,loss\n10,x\n").unwrap();
    let err = read_loss_curve(dir.path()).unwrap_err().to_string();
    assert!(err.contains("line 2"), "{err}");
}
