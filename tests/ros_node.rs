//! The node over real DDS (feature `ros`; run in the environment of `scripts/ros-env.sh`):
//! each test starts the `diffusion_planner` binary and an rclpy peer (`tests/ros/node_peer.py`)
//! in a namespace and a `ROS_DOMAIN_ID` of its own (loopback discovery), lets the peer play
//! robot and user, stops the node with SIGINT (it must exit 0) and asserts the peer's checks.
//!
//! The geometric source (`model_path: synthetic`) plans in most of these tests, so they need no
//! trained model; `a_model_folder_is_loaded_and_sampled` samples a tiny random model folder, and
//! `a_shipped_model_reaches_a_goal` runs the model in `models/planar_arm` when it exists.
//! `bench_executor_period_while_planning` (ignored) measures the output timing.
#![cfg(feature = "ros")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const NODE_BINARY: &str = env!("CARGO_BIN_EXE_diffusion_planner");
static NEXT: AtomicUsize = AtomicUsize::new(0);

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A DDS domain (1..=100) and a namespace for one test.
fn isolation() -> (String, String) {
    let k = NEXT.fetch_add(1, Ordering::SeqCst);
    let base: usize = std::env::var("ROS_DOMAIN_ID")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(std::process::id() as usize % 100);
    let domain = ((base + 17 * (k + 1)) % 100) + 1;
    (
        domain.to_string(),
        format!("/dp_test_{}_{k}", std::process::id()),
    )
}

struct Running {
    child: Child,
    log: PathBuf,
}

fn start_node(dir: &Path, domain: &str, namespace: &str, params: &[&str]) -> Running {
    let log = dir.join("node.log");
    let out = std::fs::File::create(&log).expect("create the node log");
    let mut args = vec![
        "--ros-args".to_string(),
        "-r".into(),
        format!("__ns:={namespace}"),
        "--params-file".into(),
        repo("config/planar_arm.yaml").display().to_string(),
    ];
    for p in params {
        args.push("-p".into());
        args.push(p.to_string());
    }
    let child = Command::new(NODE_BINARY)
        .args(&args)
        .env("ROS_DOMAIN_ID", domain)
        .stdout(out.try_clone().expect("clone the log handle"))
        .stderr(out)
        .spawn()
        .expect("start diffusion_planner");
    Running { child, log }
}

/// Stops the node with SIGINT; returns its exit status and log.
fn stop_node(mut node: Running) -> (std::process::ExitStatus, String) {
    let pid = node.child.id().to_string();
    if node.child.try_wait().expect("poll the node").is_none() {
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill -INT");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = node.child.try_wait().expect("poll the node") {
            break status;
        }
        if Instant::now() > deadline {
            node.child.kill().ok();
            break node.child.wait().expect("wait for the node");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status,
        std::fs::read_to_string(&node.log).unwrap_or_default(),
    )
}

fn run_peer(dir: &Path, domain: &str, config: Value, timeout: Duration) -> Value {
    let report = dir.join("report.json");
    let config_path = dir.join("peer.json");
    let mut config = config;
    config["report"] = json!(report.display().to_string());
    std::fs::write(&config_path, config.to_string()).expect("write the peer config");
    let python = std::env::var("DP_ROS_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut peer = Command::new(&python)
        .arg(repo("tests/ros/node_peer.py"))
        .arg(&config_path)
        .env("ROS_DOMAIN_ID", domain)
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("start {python}: {e}"));
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = peer.try_wait().expect("poll the peer") {
            assert!(status.success(), "peer exited with {status}");
            break;
        }
        if Instant::now() > deadline {
            peer.kill().ok();
            panic!("peer did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = std::fs::read_to_string(&report).expect("peer report");
    serde_json::from_str(&text).expect("peer report is JSON")
}

/// The peer's configuration for the reference arm.
fn peer_config(scenario: &str, namespace: &str) -> Value {
    json!({
        "scenario": scenario,
        "namespace": namespace,
        "period_s": 0.02,
        "joints": ["shoulder", "elbow"],
        "link_lengths_m": [0.5, 0.4],
        "link_radius_m": 0.03,
        "max_velocity_rad_s": 1.5,
        "start_rad": [-0.3, 0.6],
        "goal_tolerance_m": 0.02,
        "scene": {"goal_m": [0.1, 0.6], "goal_2_m": [0.2, 0.8], "obstacle": [0.6, 0.6, 0.08]},
    })
}

/// Runs a scenario against a node; asserts the node's clean SIGINT shutdown and every check.
fn scenario(scenario: &str, params: &[&str], config: impl FnOnce(Value) -> Value) -> Value {
    let dir = tempfile::tempdir().expect("temporary folder");
    let (domain, namespace) = isolation();
    let node = start_node(dir.path(), &domain, &namespace, params);
    let started = Instant::now();
    let report = run_peer(
        dir.path(),
        &domain,
        config(peer_config(scenario, &namespace)),
        Duration::from_secs(150),
    );
    let (status, log) = stop_node(node);
    let checks = report["checks"].as_array().cloned().unwrap_or_default();
    let failed: Vec<&Value> = checks.iter().filter(|c| c["ok"] != json!(true)).collect();
    println!(
        "{scenario}: {} checks, {} failed, {:.1} s\nstats: {}",
        checks.len(),
        failed.len(),
        started.elapsed().as_secs_f64(),
        serde_json::to_string_pretty(&report["stats"]).unwrap_or_default()
    );
    assert!(!checks.is_empty(), "no checks ran; node log:\n{log}");
    assert!(
        failed.is_empty(),
        "failed checks:\n{}\nnode log:\n{log}",
        serde_json::to_string_pretty(&failed).unwrap_or_default()
    );
    assert!(
        status.success(),
        "node exit {status} after SIGINT; log:\n{log}"
    );
    assert!(log.contains("shutting down"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    report
}

#[test]
fn follows_goals_around_an_obstacle_at_a_steady_rate_and_honours_mode_requests() {
    scenario(
        "follow",
        &["model_path:=synthetic", "device:=cpu"],
        |mut c| {
            c["mode"] = json!("elbow_up");
            c["debug"] = json!(std::env::var("DP_PEER_DEBUG").is_ok());
            c
        },
    );
}

#[test]
fn bad_input_keeps_the_node_alive_reports_it_and_holds() {
    let report = scenario(
        "bad_inputs",
        &["model_path:=synthetic", "device:=cpu"],
        |c| c,
    );
    let checks = report["checks"].as_array().unwrap();
    assert!(checks.len() > 25, "{}", checks.len());
}

#[test]
fn timers_follow_sim_time() {
    scenario(
        "sim_time",
        &["model_path:=synthetic", "device:=cpu", "use_sim_time:=true"],
        |c| c,
    );
}

#[test]
fn a_model_folder_is_loaded_and_sampled() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let names = vec!["left".to_string(), "right".to_string()];
    let spec = diffusion_planner::planning::tiny_model_spec(8, &names);
    diffusion_planner::planning::random_model_folder(dir.path(), &spec, 7)
        .expect("write a random model folder");
    let model_param = format!("model_path:={}", dir.path().display());
    scenario(
        "model_smoke",
        &[&model_param, "device:=cpu", "num_samples:=8"],
        |mut c| {
            c["mode"] = json!("right");
            c["num_samples"] = json!(8);
            c
        },
    );
}

/// The trained model: `DP_TEST_MODEL` if set, else `models/planar_arm` in the repository.
fn trained_model() -> Option<PathBuf> {
    let model = std::env::var_os("DP_TEST_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo("models/planar_arm"));
    model.join("model.yaml").exists().then_some(model)
}

#[test]
fn a_shipped_model_reaches_a_goal() {
    let Some(model) = trained_model() else {
        println!(
            "skipped: no model at {} (nor DP_TEST_MODEL); commit one to run this test",
            repo("models/planar_arm").display()
        );
        return;
    };
    let model_param = format!("model_path:={}", model.display());
    scenario("follow", &[&model_param, "device:=cpu"], |mut c| {
        c["start_rad"] = json!([-0.2, 0.8]);
        c["scene"] = json!({"goal_m": [-0.3, 0.6], "obstacle": [0.45, 0.45, 0.08]});
        c["reach_timeout_s"] = json!(20.0);
        c
    });
}

/// The executor's timing while planning runs all the time (`replan_rate_hz` = the control rate):
/// period error of the published trajectories as received by the peer, and of the control
/// timer inside the node. Uses the trained model when present (see [`trained_model`]), else the
/// geometric source.
/// `cargo test --features ros --test ros_node bench -- --ignored --nocapture`
#[test]
#[ignore]
fn bench_executor_period_while_planning() {
    let model = trained_model();
    let model_param = match &model {
        Some(model) => format!("model_path:={}", model.display()),
        None => "model_path:=synthetic".to_string(),
    };
    let secs: f64 = std::env::var("DP_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20.0);
    let report = scenario(
        "bench",
        &[&model_param, "device:=cpu", "replan_rate_hz:=50.0"],
        |mut c| {
            if model.is_some() {
                // The `blocked` example scene, and back to a goal near the start.
                c["start_rad"] = json!([-0.2, 0.8]);
                c["scene"] = json!({
                    "goal_m": [-0.3, 0.6], "goal_2_m": [0.6, 0.3], "obstacle": [0.45, 0.45, 0.08]
                });
            }
            c["bench_secs"] = json!(secs);
            c
        },
    );
    let stats = &report["stats"];
    let peer = &stats["bench"];
    let node = &stats["node_executor"];
    let planning = &stats["node_planning"];
    println!("\nexecutor at 50 Hz while planning runs ({model_param}, {secs} s)");
    println!("| measured at | rate Hz | period error p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|");
    println!(
        "| peer (receipt) | {:.2} | {:.3} | {:.3} | {:.3} |",
        peer["rate_hz"].as_f64().unwrap_or(f64::NAN),
        peer["period_error_ms_p50"].as_f64().unwrap_or(f64::NAN),
        peer["period_error_ms_p99"].as_f64().unwrap_or(f64::NAN),
        peer["period_error_ms_max"].as_f64().unwrap_or(f64::NAN)
    );
    println!(
        "| node (timer) | {} | {} | {} | {} |",
        node["control_rate_hz_measured"],
        node["period_error_ms_p50"],
        node["period_error_ms_p99"],
        node["period_error_ms_max"]
    );
    println!(
        "planning: latency p50 {} ms, max {} ms, outcomes {}, late {}",
        planning["latency_ms_p50"],
        planning["latency_ms_max"],
        planning["outcomes"],
        planning["late_plans"]
    );
}
