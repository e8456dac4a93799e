//! The training loop on a tiny two-mode data set: the loss falls, a seed reproduces the weights
//! byte for byte, and a run interrupted and resumed ends with the same weights as one that ran
//! straight through.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use diffusion_planner::diffusion::SchedulerConfig;
use diffusion_planner::model::{sha256_file, LoadedModel, NetworkSpec};
use diffusion_planner::robot::RobotDescription;
use diffusion_planner::train::{
    train, AdamWConfig, Dataset, DatasetInfo, EmaConfig, TermInfo, TrainConfig,
    DATASET_FORMAT_VERSION,
};

const HORIZON: usize = 8;

/// Paths bending up (label 0) or down (label 1) from a start that is the condition.
fn write_data(path: &Path) {
    let info = DatasetInfo {
        format_version: DATASET_FORMAT_VERSION,
        horizon: HORIZON,
        joints: vec!["shoulder".into(), "elbow".into()],
        robot: RobotDescription::planar_2link(),
        condition_terms: vec![TermInfo {
            name: "joint_positions".into(),
            dim: 2,
        }],
        mode_names: vec!["up".into(), "down".into()],
        scenes: 16,
        seed: 1,
        generator: serde_json::json!({"test": "train_loop"}),
    };
    let mut data = Dataset::new(info);
    for scene in 0..16u32 {
        let start = -1.0 + scene as f32 / 8.0;
        for label in 0..2u32 {
            let sign = if label == 0 { 1.0 } else { -1.0 };
            let path: Vec<f32> = (0..HORIZON)
                .flat_map(|i| {
                    let s = i as f32 / (HORIZON - 1) as f32;
                    [start + s, sign * (std::f32::consts::PI * s).sin()]
                })
                .collect();
            data.push(&path, &[start, 0.0], label, scene).unwrap();
        }
    }
    data.save(path).unwrap();
}

fn config(dir: &Path, steps: u64) -> TrainConfig {
    TrainConfig {
        data: dir.join("data.safetensors"),
        output_dir: dir.join("out"),
        name: "tiny".into(),
        description: String::new(),
        network: NetworkSpec {
            down_dims: vec![8],
            kernel_size: 3,
            n_groups: 4,
            diffusion_step_embed_dim: 8,
            use_film_scale_modulation: true,
        },
        mode_embed_dim: 4,
        scheduler: SchedulerConfig::default(),
        optimizer: AdamWConfig {
            learning_rate: 3e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-6,
        },
        batch_size: 16,
        steps,
        warmup_steps: 2,
        lr_restarts: Vec::new(),
        lr_restart_factor: 0.3,
        grad_clip_norm: 1.0,
        label_dropout: 0.2,
        ema: EmaConfig::default(),
        checkpoint_every: 5,
        log_every: 5,
        seed: 11,
        device: "cpu".into(),
        init_from: None,
    }
}

fn losses(dir: &Path) -> Vec<f64> {
    let text = std::fs::read_to_string(dir.join("out/loss.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect()
}

#[test]
fn loss_falls_and_the_model_folder_loads() {
    let dir = tempfile::tempdir().unwrap();
    write_data(&dir.path().join("data.safetensors"));
    let summary = train(&config(dir.path(), 300), false, &mut |_, _, _| true).unwrap();
    assert_eq!(summary.steps, 300);
    let l = losses(dir.path());
    assert_eq!(l.len(), 60);
    assert!(l[59] < 0.4 * l[0], "loss did not fall: {l:?}");
    let model = LoadedModel::load(&dir.path().join("out"), &candle_core::Device::Cpu).unwrap();
    assert_eq!(model.spec().training.steps, 300);
    assert_eq!(model.spec().modes.as_ref().unwrap().names, ["up", "down"]);
}

#[test]
fn seeded_runs_repeat_and_resume_matches_a_straight_run() {
    let straight = tempfile::tempdir().unwrap();
    write_data(&straight.path().join("data.safetensors"));
    train(&config(straight.path(), 10), false, &mut |_, _, _| true).unwrap();

    let again = tempfile::tempdir().unwrap();
    write_data(&again.path().join("data.safetensors"));
    train(&config(again.path(), 10), false, &mut |_, _, _| true).unwrap();
    let weights = |d: &Path| sha256_file(&d.join("out/model.safetensors")).unwrap();
    assert_eq!(weights(straight.path()), weights(again.path()));

    let resumed = tempfile::tempdir().unwrap();
    write_data(&resumed.path().join("data.safetensors"));
    let stopped = train(&config(resumed.path(), 10), false, &mut |step, _, _| {
        step < 5
    })
    .unwrap();
    assert_eq!(stopped.steps, 5);
    let finished = train(&config(resumed.path(), 10), true, &mut |_, _, _| true).unwrap();
    assert_eq!(finished.steps, 10);
    assert_eq!(weights(straight.path()), weights(resumed.path()));
    assert_eq!(losses(straight.path()), losses(resumed.path()));
}

#[test]
fn a_finished_run_extended_with_a_warm_restart_matches_a_straight_run() {
    let extended_config = |dir: &Path| TrainConfig {
        lr_restarts: vec![10],
        ..config(dir, 20)
    };
    let straight = tempfile::tempdir().unwrap();
    write_data(&straight.path().join("data.safetensors"));
    train(&extended_config(straight.path()), false, &mut |_, _, _| {
        true
    })
    .unwrap();

    let extended = tempfile::tempdir().unwrap();
    write_data(&extended.path().join("data.safetensors"));
    train(&config(extended.path(), 10), false, &mut |_, _, _| true).unwrap();
    let finished = train(&extended_config(extended.path()), true, &mut |_, _, _| true).unwrap();
    assert_eq!(finished.steps, 20);
    let weights = |d: &Path| sha256_file(&d.join("out/model.safetensors")).unwrap();
    assert_eq!(weights(straight.path()), weights(extended.path()));
    assert_eq!(losses(straight.path()), losses(extended.path()));

    let mut bad = extended_config(extended.path());
    bad.lr_restarts = vec![20];
    let err = bad.validate().unwrap_err().to_string();
    assert!(err.contains("lr_restarts"), "{err}");
}
