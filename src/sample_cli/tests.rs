use std::path::{Path, PathBuf};

use clap::Parser;

use super::*;
use crate::planning::{random_model_folder, tiny_model_spec, RejectReason};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: SampleArgs,
}

fn parse(args: &[&str]) -> SampleArgs {
    let mut argv = vec!["dplan-sample"];
    argv.extend_from_slice(args);
    Cli::try_parse_from(argv).unwrap().args
}

fn scene(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/scenes")
        .join(name)
}

/// A tiny random model with the shipped model's mode names (`side_elbow`).
fn model(dir: &Path) -> PathBuf {
    let path = dir.join("model");
    random_model_folder(
        &path,
        &tiny_model_spec(8, &LabelScheme::SideElbow.names()),
        5,
    )
    .unwrap();
    path
}

/// K = 6, DDIM 3 steps, seed 5 unless `extra` sets it.
fn run(model: &Path, extra: &[&str]) -> SampleReport {
    let model = model.to_string_lossy().into_owned();
    let scene = scene("blocked.yaml").to_string_lossy().into_owned();
    let mut args = vec!["--model", &model, "--scene", &scene];
    args.extend_from_slice(&["--num-samples", "6", "--steps", "3"]);
    if !extra.contains(&"--seed") {
        args.extend_from_slice(&["--seed", "5"]);
    }
    args.extend_from_slice(extra);
    run_sample(&parse(&args)).unwrap()
}

#[test]
fn seeded_runs_are_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    let out = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let (png_a, json_a, png_b, json_b, png_c, json_c) = (
        out("a.png"),
        out("a.json"),
        out("b.png"),
        out("b.json"),
        out("c.png"),
        out("c.json"),
    );
    let a = run(
        &model,
        &["--png", &png_a, "--json", &json_a, "--omit-timings"],
    );
    let b = run(
        &model,
        &["--png", &png_b, "--json", &json_b, "--omit-timings"],
    );
    assert_eq!(a, b);
    let read = |p: &str| std::fs::read(p).unwrap();
    assert!(read(&png_a).len() > 10_000, "the PNG should hold a figure");
    assert_eq!(read(&png_a), read(&png_b));
    assert_eq!(read(&json_a), read(&json_b));

    // With timings: the same PNG, and the same JSON once the timings are taken out.
    let c = run(&model, &["--png", &png_c, "--json", &json_c]);
    assert_eq!(read(&png_a), read(&png_c));
    let mut with: serde_json::Value = serde_json::from_slice(&read(&json_c)).unwrap();
    let timings = with.as_object_mut().unwrap().remove("timings").unwrap();
    assert!(timings["plan"]["sampling_secs"].as_f64().unwrap() > 0.0);
    let without: serde_json::Value = serde_json::from_slice(&read(&json_a)).unwrap();
    assert_eq!(with, without);
    assert!(c.summary().contains("timings:"));

    // Another seed samples other paths.
    let d = run(&model, &["--seed", "6", "--omit-timings"]);
    assert_ne!(a.candidates, d.candidates);
}

#[test]
fn report_lists_every_candidate_and_mode_requests_reject_other_labels() {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    let report = run(&model, &["--mode", "left_elbow_up", "--guidance", "1.5"]);
    assert_eq!(report.label_scheme, Some(LabelScheme::SideElbow));
    assert_eq!(report.mode_request, "left_elbow_up");
    assert_eq!(report.sampler.guidance_scale, 1.5);
    assert_eq!(report.sampler.record_last_k, 3);
    assert_eq!(report.candidates.len(), 6);
    assert_eq!(report.seed, 5);
    for c in &report.candidates {
        assert_eq!(c.valid, c.reasons.is_empty());
        assert_eq!(c.reasons.len(), c.reason_messages.len());
        assert_eq!(c.path_rad.len(), 8);
        assert_eq!(c.path_rad[0], report.scene.start_rad);
        assert!(c.scores.x0_variance > 0.0);
        if c.label.as_deref() != Some("left_elbow_up") {
            assert!(
                c.reasons
                    .iter()
                    .any(|r| matches!(r, RejectReason::WrongMode { .. })),
                "{c:?}"
            );
        }
    }
    let counted: usize = report.rejection_counts.values().sum();
    let reasons: usize = report
        .candidates
        .iter()
        .map(|c| {
            let mut kinds: Vec<String> = c.reasons.iter().map(report::reason_kind).collect();
            kinds.sort();
            kinds.dedup();
            kinds.len()
        })
        .sum();
    assert_eq!(counted, reasons);
    assert!(report.rejection_counts.contains_key("wrong_mode") || report.valid_count == 6);
    assert_eq!(report.chosen.is_some(), report.plan.is_some());
    let summary = report.summary();
    assert!(
        summary.contains("valid ") && summary.contains("mode left_elbow_up"),
        "{summary}"
    );
}

#[test]
fn bad_scenes_and_modes_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    let mut args = SampleArgs::new(&model, scene("unreachable.yaml"));
    args.num_samples = Some(2);
    let err = run_sample(&args).unwrap_err();
    assert!(
        matches!(
            err,
            SampleError::Observation {
                source: ObservationError::GoalOutOfReach { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("unreachable.yaml"), "{err}");

    let mut args = SampleArgs::new(&model, scene("blocked.yaml"));
    args.mode = "left".into();
    let err = run_sample(&args).unwrap_err();
    assert!(
        matches!(
            err,
            SampleError::Observation {
                source: ObservationError::UnknownMode { .. },
                ..
            }
        ),
        "{err}"
    );
    let args = SampleArgs::new(dir.path().join("missing"), scene("blocked.yaml"));
    assert!(matches!(run_sample(&args), Err(SampleError::Core(_))));
}

#[test]
fn defaults_match_the_command_line() {
    let args = parse(&["--model", "m", "--scene", "s.yaml"]);
    assert_eq!(args, SampleArgs::new("m", "s.yaml"));
    let spec = tiny_model_spec(8, &[]);
    let ddim = args.sampler_settings(&spec);
    assert_eq!((ddim.inference_steps, ddim.record_last_k), (10, 5));
    let ddpm = parse(&["--model", "m", "--scene", "s", "--sampler", "ddpm"]);
    let ddpm = ddpm.sampler_settings(&spec);
    assert_eq!(
        (ddpm.kind, ddpm.inference_steps, ddpm.record_last_k),
        (SamplerKind::Ddpm, spec.scheduler.num_train_timesteps, 5)
    );
    let short = parse(&["--model", "m", "--scene", "s", "--steps", "2"]).sampler_settings(&spec);
    assert_eq!(short.record_last_k, 2);
    assert!(
        Cli::try_parse_from(["x", "--model", "m", "--scene", "s", "--sampler", "ddjm"]).is_err()
    );
    assert!(Cli::try_parse_from(["x", "--model", "m", "--scene", "s", "--device", "gpu"]).is_err());

    let config = parse(&[
        "--model",
        "m",
        "--scene",
        "s",
        "--seed",
        "9",
        "--num-samples",
        "4",
    ])
    .planner_config()
    .unwrap();
    assert_eq!((config.seed, config.num_samples), (9, 4));
    let bad = parse(&["--model", "m", "--scene", "s", "--num-samples", "0"]).planner_config();
    assert!(bad.unwrap_err().to_string().contains("num_samples"));
}
