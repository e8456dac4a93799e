//! Smoke tests of the ROS side over real rcl and DDS (feature `ros`; run with the environment of
//! `scripts/ros-env.sh`, which also supplies `DP_ROS_PYTHON`, a Python with rclpy):
//! - the node binary reads parameters through rcl (`--params-file`, `-p`) and fails on bad ones
//!   naming the key;
//! - an rclpy peer and an r2r node exchange messages over DDS on loopback (the domain is
//!   `ROS_DOMAIN_ID`, which `scripts/test` sets per run; topic names carry the process id).
#![cfg(feature = "ros")]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use r2r::builtin_interfaces::msg::Duration as RosDuration;
use r2r::sensor_msgs::msg::JointState;
use r2r::trajectory_msgs::msg::{JointTrajectory, JointTrajectoryPoint};
use r2r::QosProfile;

const NODE_BINARY: &str = env!("CARGO_BIN_EXE_diffusion_planner");

fn repo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(path)
        .display()
        .to_string()
}

fn run_node(args: &[&str]) -> Output {
    Command::new(NODE_BINARY)
        .args(args)
        .output()
        .expect("run diffusion_planner")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_node_reads_the_shipped_config_through_rcl() {
    let config = repo("config/planar_arm.yaml");
    let out = run_node(&["--check-params", "--ros-args", "--params-file", &config]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("parameters are valid"), "{stdout}");
    assert!(stdout.contains("\"shoulder\""), "{stdout}");
    assert!(stdout.contains("control_rate_hz: 50.0"), "{stdout}");
    assert!(stdout.contains("static_obstacles: []"), "{stdout}");
}

#[test]
fn command_line_overrides_win_and_bad_parameters_name_the_key() {
    let config = repo("config/planar_arm.yaml");
    let ok = run_node(&[
        "--check-params",
        "--ros-args",
        "--params-file",
        &config,
        "-p",
        "num_samples:=64",
        "-p",
        "static_obstacles:=[0.6, 0.0, 0.1]",
    ]);
    let stdout = text(&ok.stdout);
    assert!(ok.status.success(), "{stdout}\n{}", text(&ok.stderr));
    assert!(stdout.contains("num_samples: 64"), "{stdout}");
    assert!(stdout.contains("radius_m: 0.1"), "{stdout}");

    let bad = run_node(&[
        "--check-params",
        "--ros-args",
        "--params-file",
        &config,
        "-p",
        "control_rate_hz:=50",
        "-p",
        "sampler:=euler",
        "-p",
        "contol_rate_hz:=50.0",
    ]);
    let stderr = text(&bad.stderr);
    assert_eq!(bad.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("`control_rate_hz`: expected a double, found integer 50"));
    assert!(stderr.contains("`sampler`"), "{stderr}");
    assert!(
        stderr.contains("`contol_rate_hz`: unknown parameter"),
        "{stderr}"
    );

    let missing = run_node(&["--check-params"]);
    let stderr = text(&missing.stderr);
    assert_eq!(missing.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("`model_path`: is required"), "{stderr}");
    assert!(stderr.contains("`joints`: is required"), "{stderr}");
}

#[test]
fn a_parameter_file_rcl_rejects_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        "diffusion_planner:\n  ros__parameters:\n    static_obstacles: [1, 0.0, 0.1]\n",
    )
    .unwrap();
    let out = run_node(&[
        "--check-params",
        "--ros-args",
        "--params-file",
        &file.display().to_string(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("rcl rejected"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// rclpy publishes JointState; r2r receives it and answers with a JointTrajectory built from
/// it, which rclpy receives and prints.
#[test]
fn rclpy_and_r2r_exchange_messages_over_dds() {
    let prefix = format!("/dp_smoke_{}", std::process::id());
    let states_topic = format!("{prefix}/joint_states");
    let trajectory_topic = format!("{prefix}/joint_trajectory");
    let ctx = r2r::Context::create().unwrap();
    let mut node = r2r::Node::create(ctx, "dp_smoke_r2r", "").unwrap();
    let mut states = node
        .subscribe::<JointState>(&states_topic, QosProfile::sensor_data())
        .unwrap();
    let publisher = node
        .create_publisher::<JointTrajectory>(&trajectory_topic, QosProfile::default())
        .unwrap();

    let python = std::env::var("DP_ROS_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut peer = Command::new(&python)
        .arg(repo("tests/ros/dds_peer.py"))
        .args([&states_topic, &trajectory_topic, "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {python}: {e}"));

    let deadline = Instant::now() + Duration::from_secs(40);
    let mut received: Option<JointState> = None;
    let status = loop {
        node.spin_once(Duration::from_millis(10));
        while let Some(Some(msg)) = states.next().now_or_never() {
            received = Some(msg);
        }
        if let Some(state) = &received {
            let reply = JointTrajectory {
                joint_names: state.name.clone(),
                points: vec![JointTrajectoryPoint {
                    positions: state.position.clone(),
                    velocities: vec![0.0; state.position.len()],
                    time_from_start: RosDuration {
                        sec: 0,
                        nanosec: 20_000_000,
                    },
                    ..Default::default()
                }],
                ..Default::default()
            };
            publisher.publish(&reply).unwrap();
        }
        if let Some(status) = peer.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            peer.kill().ok();
            break peer.wait().unwrap();
        }
    };
    let out = peer.wait_with_output().unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    let state = received.expect("r2r received no JointState from rclpy");
    assert_eq!(state.name, ["shoulder", "elbow"]);
    assert_eq!(state.position, [0.25, -0.5]);
    assert!(status.success(), "peer: {status}\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("joints=['shoulder', 'elbow'] positions=[0.25, -0.5] t=0.020000000"),
        "{stdout}"
    );
}
