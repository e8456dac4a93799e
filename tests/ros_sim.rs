//! The simulated arm and the node over real DDS (feature `ros`; run in the environment of
//! `scripts/ros-env.sh`): `diffusion_planner_sim` owns the time (`publish_clock`), the node
//! (`model_path: synthetic`, `use_sim_time`) plans on it, and an r2r peer in this process sends
//! an obstacle and a goal and reads the simulator's `/diagnostics` until the goal is reached.
//! Both binaries run in a namespace of their own on the domain of `ROS_DOMAIN_ID`, and must exit
//! 0 on SIGINT. The closed loop over many scenes, without DDS, is `dplan closed-loop`.
#![cfg(feature = "ros")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output};
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use r2r::diagnostic_msgs::msg::DiagnosticArray;
use r2r::geometry_msgs::msg::PoseStamped;
use r2r::visualization_msgs::msg::{Marker, MarkerArray};
use r2r::QosProfile;

const NODE_BINARY: &str = env!("CARGO_BIN_EXE_diffusion_planner");
const SIM_BINARY: &str = env!("CARGO_BIN_EXE_diffusion_planner_sim");
/// The whole scenario must finish within this (it takes a few seconds).
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(25);

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

struct Process {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

fn start(name: &'static str, binary: &str, dir: &Path, args: &[String]) -> Process {
    let log = dir.join(format!("{name}.log"));
    let out = std::fs::File::create(&log).expect("create a log");
    let child = Command::new(binary)
        .args(args)
        .stdout(out.try_clone().expect("clone the log handle"))
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("start {binary}: {e}"));
    Process { name, child, log }
}

/// SIGINT, then the exit status and the log.
fn stop(mut p: Process) -> (ExitStatus, String) {
    if p.child.try_wait().expect("poll").is_none() {
        Command::new("kill")
            .args(["-INT", &p.child.id().to_string()])
            .status()
            .expect("kill -INT");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = p.child.try_wait().expect("poll") {
            break status;
        }
        if Instant::now() > deadline {
            p.child.kill().ok();
            break p.child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let log = std::fs::read_to_string(&p.log).unwrap_or_default();
    (status, format!("--- {} ---\n{log}", p.name))
}

fn values(status: &r2r::diagnostic_msgs::msg::DiagnosticStatus) -> BTreeMap<String, String> {
    status
        .values
        .iter()
        .map(|kv| (kv.key.clone(), kv.value.clone()))
        .collect()
}

fn marker(frame: &str, id: i32, center: [f64; 2], radius: f64) -> Marker {
    let mut m = Marker {
        id,
        ns: "test".into(),
        type_: Marker::CYLINDER as i32,
        action: Marker::ADD as i32,
        ..Default::default()
    };
    m.header.frame_id = frame.into();
    m.pose.position.x = center[0];
    m.pose.position.y = center[1];
    m.pose.orientation.w = 1.0;
    m.scale.x = 2.0 * radius;
    m.scale.y = 2.0 * radius;
    m.scale.z = 0.1;
    m
}

#[test]
fn the_node_drives_the_simulated_arm_to_a_goal_on_sim_time() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let namespace = format!("/dp_sim_test_{}", std::process::id());
    let ros_args = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = vec!["--ros-args".into(), "-r".into()];
        args.push(format!("__ns:={namespace}"));
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let sim_config = repo("config/sim_planar_arm.yaml").display().to_string();
    let node_config = repo("config/planar_arm.yaml").display().to_string();
    let sim = start(
        "sim",
        SIM_BINARY,
        dir.path(),
        &ros_args(&[
            "--params-file",
            &sim_config,
            "-p",
            "model_path:=synthetic",
            "-p",
            "publish_clock:=true",
            "-p",
            "diagnostics_rate_hz:=10.0",
            // Actuators stronger than the planning limits: the stamp-0 replacement jitter would
            // otherwise make strict joints trail the plan by up to 0.2 rad (docs/SIM.md), and
            // this test is about the loop over DDS, not about that.
            "-p",
            "acceleration_limit_scale:=20.0",
        ]),
    );
    let node = start(
        "node",
        NODE_BINARY,
        dir.path(),
        &ros_args(&[
            "--params-file",
            &node_config,
            "-p",
            "model_path:=synthetic",
            "-p",
            "device:=cpu",
            "-p",
            "use_sim_time:=true",
            "-r",
            "joint_trajectory:=joint_trajectory_controller/joint_trajectory",
        ]),
    );

    let ctx = r2r::Context::create().expect("r2r context");
    let mut peer = r2r::Node::create(ctx, "sim_test_peer", &namespace).expect("peer node");
    let goal_pub = peer
        .create_publisher::<PoseStamped>("goal", QosProfile::default())
        .expect("goal publisher");
    let obstacles_pub = peer
        .create_publisher::<MarkerArray>("obstacles", QosProfile::default())
        .expect("obstacles publisher");
    let mut diagnostics = peer
        .subscribe::<DiagnosticArray>("/diagnostics", QosProfile::default())
        .expect("diagnostics subscription");
    let sim_id = format!("{namespace}/diffusion_planner_sim");
    let node_id = format!("{namespace}/diffusion_planner");

    // Start [-0.3, 0.6] (config/sim_planar_arm.yaml); an obstacle off the way; the goal.
    let obstacles = MarkerArray {
        markers: vec![marker("base_link", 0, [0.6, 0.6], 0.08)],
    };
    let mut goal = PoseStamped::default();
    goal.header.frame_id = "base_link".into();
    goal.pose.position.x = 0.1;
    goal.pose.position.y = 0.6;
    goal.pose.orientation.w = 1.0;

    let started = Instant::now();
    let mut last_send = None::<Instant>;
    let mut sim_arm = BTreeMap::new();
    let mut node_inputs = BTreeMap::new();
    let mut reached = false;
    while started.elapsed() < SCENARIO_TIMEOUT {
        peer.spin_once(Duration::from_millis(20));
        while let Some(Some(msg)) = diagnostics.next().now_or_never() {
            for status in &msg.status {
                if status.hardware_id == sim_id && status.name.ends_with(": arm") {
                    sim_arm = values(status);
                } else if status.hardware_id == node_id && status.name.ends_with(": inputs") {
                    node_inputs = values(status);
                }
            }
        }
        let get = |m: &BTreeMap<String, String>, k: &str| m.get(k).cloned().unwrap_or_default();
        // Volatile topics: repeat until both nodes have the obstacle, then the goal (a goal
        // message is a new goal, so it stops once both have it).
        let obstacles_known =
            get(&sim_arm, "obstacles") == "1" && get(&node_inputs, "obstacles") == "1";
        let sim_goals: u64 = get(&sim_arm, "goals_received").parse().unwrap_or(0);
        let goal_known =
            sim_goals > 0 && !matches!(get(&node_inputs, "goal_m").as_str(), "" | "n/a" | "none");
        if last_send.is_none_or(|t| t.elapsed() > Duration::from_millis(300)) {
            if !obstacles_known {
                obstacles_pub
                    .publish(&obstacles)
                    .expect("publish obstacles");
                last_send = Some(Instant::now());
            } else if !goal_known {
                goal_pub.publish(&goal).expect("publish the goal");
                last_send = Some(Instant::now());
            }
        }
        if get(&sim_arm, "goal_reached") == "true" {
            reached = true;
            break;
        }
    }
    let elapsed = started.elapsed();
    let (node_status, node_log) = stop(node);
    let (sim_status, sim_log) = stop(sim);
    let logs = format!("{node_log}\n{sim_log}");
    println!(
        "sim status after {:.1} s: {sim_arm:#?}",
        elapsed.as_secs_f64()
    );
    assert!(
        reached,
        "goal not reached in {SCENARIO_TIMEOUT:?}: {sim_arm:#?}\n{node_inputs:#?}\n{logs}"
    );
    assert_eq!(sim_arm["collisions"], "0", "{logs}");
    assert_eq!(
        sim_arm["trajectories_rejected"], "0",
        "{sim_arm:#?}\n{logs}"
    );
    assert_ne!(sim_arm["trajectories_accepted"], "0");
    assert_eq!(sim_arm["goals_reached"], "1");
    let min_clearance: f64 = sim_arm["min_clearance_m"].parse().expect("a clearance");
    assert!(min_clearance > 0.0, "{min_clearance}");
    let distance: f64 = sim_arm["goal_distance_m"].parse().expect("a distance");
    assert!(distance <= 0.02, "{distance}");
    // Sim time ran: the simulator's clock advanced (it starts at 0).
    let sim_secs: f64 = sim_arm["sim_time_s"].parse().expect("sim time");
    assert!(sim_secs > 0.5, "{sim_secs}");
    assert!(node_status.success(), "node exit {node_status}\n{logs}");
    assert!(sim_status.success(), "sim exit {sim_status}\n{logs}");
    assert!(sim_log.contains("shutting down"), "{logs}");
    assert!(!logs.contains("panicked"), "{logs}");
}

fn run_sim(args: &[&str]) -> Output {
    Command::new(SIM_BINARY)
        .args(args)
        .output()
        .expect("run diffusion_planner_sim")
}

#[test]
fn the_simulator_reads_its_config_and_names_bad_parameters() {
    let config = repo("config/sim_planar_arm.yaml").display().to_string();
    let ok = run_sim(&["--check-params", "--ros-args", "--params-file", &config]);
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(stdout.contains("parameters are valid") && stdout.contains("\"shoulder\""));
    let bad = run_sim(&[
        "--check-params",
        "--ros-args",
        "--params-file",
        &config,
        "-p",
        "update_rate_hz:=100",
        "-p",
        "publish_clock:=maybe",
    ]);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("`update_rate_hz`") && stderr.contains("100.0"),
        "{stderr}"
    );
    assert!(stderr.contains("`publish_clock`"), "{stderr}");
}
