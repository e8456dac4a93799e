//! Replays of the bags in tests/data (written by tools/make_bags.py), offline with
//! `dplan replay`'s library function and live over DDS (the `diffusion_planner` binary with
//! `use_sim_time:=true` and the rclpy harness tests/ros/replay.py, which publishes `/clock` from
//! the bag time as `ros2 bag play --clock` does). tests/ros/bag_checks.py checks every output
//! bag (JTC-valid trajectories, no collision with the recorded obstacles, goals reached, mode
//! requests honoured, bad input answered by diagnostics and holds, no crash) and compares
//! replays: two live replays of the same bag with the same seed choose the same sequence of
//! modes per goal; the offline and the live replay choose the same final mode per goal and end
//! each goal within 0.05 rad of each other (docs/REPLAY.md explains why not more).
//!
//! The geometric source plans (`model_path: synthetic`) unless `DP_TEST_MODEL` names a model
//! folder. Needs the environment of scripts/ros-env.sh (feature `ros`, `DP_ROS_PYTHON`).
#![cfg(feature = "ros")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use diffusion_planner::ros::replay::bag::read_bag;
use diffusion_planner::ros::replay::{self, ReplayArgs};
use serde_json::Value;

const NODE_BINARY: &str = env!("CARGO_BIN_EXE_diffusion_planner");
static NEXT: AtomicUsize = AtomicUsize::new(0);

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn python() -> String {
    std::env::var("DP_ROS_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// `model_path` for the node and the offline replay.
fn model() -> String {
    std::env::var("DP_TEST_MODEL").unwrap_or_else(|_| "synthetic".into())
}

/// Bag time per wall second of the live replays (`DP_REPLAY_RATE`, default 2: the node runs
/// on `/clock`, so its timers, timeouts and look-ahead scale with the bag; only the planning
/// calls' wall time does not, about a millisecond with the geometric source).
fn rate() -> f64 {
    std::env::var("DP_REPLAY_RATE")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(2.0)
}

/// A DDS domain (1..=100) and a namespace for one live replay.
fn isolation() -> (String, String) {
    let k = NEXT.fetch_add(1, Ordering::SeqCst);
    let base: usize = std::env::var("ROS_DOMAIN_ID")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(std::process::id() as usize % 100);
    let domain = ((base + 29 * (k + 1)) % 100) + 1;
    (
        domain.to_string(),
        format!("/dp_replay_{}_{k}", std::process::id()),
    )
}

fn offline(bag: &str, out: &Path) -> replay::ReplaySummary {
    let args = ReplayArgs {
        bag: repo(&format!("tests/data/{bag}")),
        out: out.to_path_buf(),
        model: Some(model().into()),
        params: Some(repo("config/planar_arm.yaml")),
        namespace: "/".into(),
        settle_secs: 0.25,
    };
    replay::run(&args).unwrap_or_else(|e| panic!("dplan replay {bag}: {e}"))
}

fn wait_for(child: &mut Child, what: &str, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("poll") {
            return status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("{what} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Plays `bag` into a freshly started node; returns the node's log.
fn live(bag: &str, out: &Path, dir: &Path) -> String {
    let (domain, namespace) = isolation();
    let log_path = dir.join(format!("{bag}_node.log"));
    let log = std::fs::File::create(&log_path).expect("node log");
    let model_path = format!("model_path:={}", model());
    let mut node = Command::new(NODE_BINARY)
        .args(["--ros-args", "-r", &format!("__ns:={namespace}")])
        .arg("--params-file")
        .arg(repo("config/planar_arm.yaml"))
        .args([
            "-p",
            &model_path,
            "-p",
            "device:=cpu",
            "-p",
            "use_sim_time:=true",
        ])
        .env("ROS_DOMAIN_ID", &domain)
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log)
        .spawn()
        .expect("start diffusion_planner");
    let bag_secs = read_bag(&repo(&format!("tests/data/{bag}")))
        .map(|b| {
            let first = b.messages.first().map_or(0, |m| m.log_time_ns);
            let last = b.messages.last().map_or(0, |m| m.log_time_ns);
            (last - first) as f64 * 1e-9
        })
        .expect("read the bag");
    let mut harness = Command::new(python())
        .arg(repo("tests/ros/replay.py"))
        .arg(repo(&format!("tests/data/{bag}")))
        .arg("--out")
        .arg(out)
        .args(["--namespace", &namespace, "--rate", &rate().to_string()])
        .env("ROS_DOMAIN_ID", &domain)
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", python()));
    let timeout = Duration::from_secs_f64(60.0 + 2.0 * bag_secs / rate());
    let status = wait_for(&mut harness, "the replay harness", timeout);
    Command::new("kill")
        .args(["-INT", &node.id().to_string()])
        .status()
        .expect("kill -INT");
    let node_status = wait_for(&mut node, "the node after SIGINT", Duration::from_secs(10));
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        status.success(),
        "replay harness: {status}; node log:\n{log}"
    );
    assert!(
        node_status.success(),
        "node exit {node_status}; log:\n{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
    log
}

/// Runs bag_checks.py; asserts every check passed and returns the report.
fn checks(bag: &str, output: &Path, compare: Option<(&Path, &str)>, context: &str) -> Value {
    let report = output.with_extension("checks.json");
    let mut command = Command::new(python());
    command
        .arg(repo("tests/ros/bag_checks.py"))
        .arg("--input")
        .arg(repo(&format!("tests/data/{bag}")))
        .arg("--output")
        .arg(output)
        .arg("--report")
        .arg(&report);
    if let Some((other, labels)) = compare {
        command
            .arg("--compare")
            .arg(other)
            .args(["--compare-labels", labels]);
    }
    let status = command.status().expect("run bag_checks.py");
    assert!(status.success(), "bag_checks.py: {status}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("JSON");
    let all = report["checks"].as_array().cloned().unwrap_or_default();
    let failed: Vec<&Value> = all
        .iter()
        .filter(|c| c["ok"] != Value::Bool(true))
        .collect();
    println!(
        "{bag} ({context}): {} checks, {} failed; goals {}",
        all.len(),
        failed.len(),
        report["stats"]["goals"]
    );
    assert!(all.len() > 5, "{bag}: too few checks ran");
    assert!(
        failed.is_empty(),
        "{bag} ({context}) failed checks:\n{}",
        serde_json::to_string_pretty(&failed).unwrap_or_default()
    );
    report
}

/// The mode requests of the `modes` bag are the synthetic source's mode names.
fn model_has_elbow_modes() -> bool {
    model() == "synthetic"
}

#[test]
fn offline_replays_pass_the_checks_and_repeat_exactly() {
    let dir = tempfile::tempdir().expect("temporary folder");
    for bag in ["reach", "bad_input", "modes"] {
        if bag == "modes" && !model_has_elbow_modes() {
            continue;
        }
        let out = dir.path().join(format!("{bag}_offline"));
        let summary = offline(bag, &out);
        print!("{bag}: {}", summary.text());
        checks(bag, &out, None, "offline");
        if bag == "reach" {
            let again = dir.path().join("reach_again");
            offline(bag, &again);
            let trajectories = |path: &Path| {
                let b = read_bag(path).expect("read the output");
                let topic = b
                    .topic_index("/joint_trajectory")
                    .expect("trajectory topic");
                b.messages
                    .into_iter()
                    .filter(|m| m.topic == topic)
                    .map(|m| (m.log_time_ns, m.data))
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                trajectories(&out),
                trajectories(&again),
                "the same bag and parameters give the same trajectories"
            );
        }
    }
}

#[test]
fn live_replay_of_reach_passes_the_checks_and_agrees_with_offline() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let offline_out = dir.path().join("reach_offline");
    offline("reach", &offline_out);
    let live_out = dir.path().join("reach_live");
    live("reach", &live_out, dir.path());
    checks(
        "reach",
        &live_out,
        Some((&offline_out, "final")),
        "live vs offline",
    );
}

#[test]
fn live_replay_of_bad_input_holds_reports_and_survives() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let offline_out = dir.path().join("bad_input_offline");
    offline("bad_input", &offline_out);
    let live_out = dir.path().join("bad_input_live");
    let log = live("bad_input", &live_out, dir.path());
    assert!(log.contains("shutting down"), "{log}");
    checks(
        "bad_input",
        &live_out,
        Some((&offline_out, "final")),
        "live vs offline",
    );
}

#[test]
fn live_replays_with_the_same_seed_choose_the_same_modes() {
    if !model_has_elbow_modes() {
        println!("skipped: the `modes` bag requests the synthetic source's elbow modes");
        return;
    }
    let dir = tempfile::tempdir().expect("temporary folder");
    let first = dir.path().join("modes_live_1");
    live("modes", &first, dir.path());
    let second = dir.path().join("modes_live_2");
    live("modes", &second, dir.path());
    checks("modes", &first, Some((&second, "sequence")), "live vs live");
}
