//! `scripts/demo` in its short form (feature `ros`; run in the environment of
//! `scripts/ros-env.sh`) on the kinematic simulator (`--sim kinematic`, the fast path; the MuJoCo
//! demo has its own test in tests/mujoco): the node (geometric source) drives the simulated arm
//! through the quick scenario (three goals, a moving obstacle, mode requests). Asserts the
//! summary (a goal reached, no collision, every process ended cleanly), the report's files, and
//! that the recording is an MCAP rosbag2 bag `rosbags` reads with messages on every topic of
//! the demo.
#![cfg(feature = "ros")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::Value;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The folder of the binaries cargo built for this test (all three are in it).
fn bin_dir() -> PathBuf {
    let node = Path::new(env!("CARGO_BIN_EXE_diffusion_planner"));
    let dir = node.parent().expect("the binary's folder").to_path_buf();
    for exe in [
        env!("CARGO_BIN_EXE_diffusion_planner_sim"),
        env!("CARGO_BIN_EXE_dplan"),
    ] {
        assert_eq!(Path::new(exe).parent(), Some(dir.as_path()), "{exe}");
    }
    dir
}

/// A DDS domain of this test's own (1..=100), away from the other ROS tests' choices.
fn domain() -> String {
    let base: usize = std::env::var("ROS_DOMAIN_ID")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(std::process::id() as usize % 100);
    (((base + 53) % 100) + 1).to_string()
}

/// Messages per topic of the bag at `bag`, read with rosbags (an independent reader).
fn read_bag(bag: &Path) -> Value {
    let python = std::env::var("DP_ROS_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = "import json, sys\n\
        from pathlib import Path\n\
        from rosbags.highlevel import AnyReader\n\
        counts = {}\n\
        with AnyReader([Path(sys.argv[1])]) as r:\n\
        \x20   for c, t, raw in r.messages():\n\
        \x20       r.deserialize(raw, c.msgtype)\n\
        \x20       counts[c.topic] = counts.get(c.topic, 0) + 1\n\
        print(json.dumps(counts))\n";
    let output = Command::new(&python)
        .args(["-c", script])
        .arg(bag)
        .output()
        .unwrap_or_else(|e| panic!("start {python}: {e}"));
    assert!(
        output.status.success(),
        "rosbags could not read {}: {}",
        bag.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("counts as JSON")
}

fn logs(out: &Path) -> String {
    let mut text = String::new();
    for name in ["scenario", "node", "sim"] {
        let log = std::fs::read_to_string(out.join("logs").join(format!("{name}.log")))
            .unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        text += &format!("--- {name}.log (last lines)\n");
        for line in tail.iter().rev() {
            text += line;
            text.push('\n');
        }
    }
    text
}

#[test]
fn the_quick_demo_reaches_goals_without_collisions_and_records_every_topic() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let out = dir.path().join("demo");
    let started = Instant::now();
    let result = Command::new(repo("scripts/demo"))
        .args(["--sim", "kinematic", "--quick", "--duration", "40"])
        .args(["--model", "synthetic"])
        .arg("--out")
        .arg(&out)
        .arg("--bin-dir")
        .arg(bin_dir())
        .env("DP_DEMO_ROS_DOMAIN_ID", domain())
        .output()
        .expect("run scripts/demo");
    let stdout = String::from_utf8_lossy(&result.stdout);
    println!(
        "scripts/demo --quick: {} in {:.1} s\n{stdout}",
        result.status,
        started.elapsed().as_secs_f64()
    );
    assert!(
        result.status.success(),
        "scripts/demo failed ({}):\n{stdout}\n{}\n{}",
        result.status,
        String::from_utf8_lossy(&result.stderr),
        logs(&out)
    );

    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("summary.json")).expect("summary.json"),
    )
    .expect("summary.json is JSON");
    assert_eq!(summary["passed"], Value::Bool(true), "{summary:#}");
    assert!(summary["goals_reached"].as_u64() >= Some(1), "{summary:#}");
    assert_eq!(summary["collisions"].as_u64(), Some(0), "{summary:#}");
    assert_eq!(summary["goals_sent"].as_u64(), Some(3), "{summary:#}");
    assert!(summary["mode_requests"].as_u64() >= Some(2), "{summary:#}");
    assert!(
        summary["latency_samples"].as_u64() >= Some(1),
        "{summary:#}"
    );
    for process in summary["processes"].as_array().expect("processes") {
        assert_eq!(process["code"].as_i64(), Some(0), "{summary:#}");
        assert_eq!(process["early"], Value::Bool(false), "{summary:#}");
    }
    assert!(stdout.contains("demo PASSED"), "{stdout}");
    for file in [
        "README.md",
        "workspace.png",
        "joints.png",
        "modes.png",
        "trace.json",
    ] {
        let len = std::fs::metadata(out.join(file)).map_or(0, |m| m.len());
        assert!(len > 500, "{file}: {len} bytes");
    }

    // The recording: one MCAP file beside metadata.yaml (rosbag2 version 9), readable.
    let bag = out.join("recording");
    let metadata = std::fs::read_to_string(bag.join("metadata.yaml")).expect("metadata.yaml");
    assert!(metadata.contains("version: 9"), "{metadata}");
    assert!(metadata.contains("storage_identifier: mcap"), "{metadata}");
    let mcap = bag.join("recording.mcap");
    let bytes = std::fs::read(&mcap).expect("recording.mcap");
    assert_eq!(&bytes[..8], b"\x89MCAP0\r\n", "MCAP magic");
    let counts = read_bag(&bag);
    for topic in [
        "/joint_states",
        "/goal",
        "/obstacles",
        "/mode_request",
        "/joint_trajectory_controller/joint_trajectory",
        "/diffusion_planner/candidates",
        "/diagnostics",
    ] {
        assert!(
            counts[topic].as_u64() >= Some(1),
            "{topic} not recorded: {counts}"
        );
    }
    assert_eq!(
        counts["/goal"].as_u64(),
        Some(3),
        "every goal recorded: {counts}"
    );
    assert!(
        counts["/joint_states"].as_u64() > Some(500),
        "joint states at 100 Hz: {counts}"
    );
}
