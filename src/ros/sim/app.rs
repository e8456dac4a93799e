//! The simulator's spin loop (`diffusion_planner_sim`): [`Simulation`] behind ROS topics.
//!
//! - in: `joint_trajectory_controller/joint_trajectory` (trajectory_msgs/JointTrajectory,
//!   reliable like the node's publisher; relative, so `/joint_trajectory_controller/...` in the
//!   root namespace), `obstacles` (visualization_msgs/MarkerArray, parsed as the node parses
//!   them) and `goal` (geometry_msgs/PoseStamped in `base_frame`, for the goal statistics);
//! - out: `joint_states` (sensor_msgs/JointState at `update_rate_hz`, stamp = simulated time),
//!   `/clock` (rosgraph_msgs/Clock, only with `publish_clock`) and `/diagnostics`.
//!
//! Time: with `publish_clock: false` the simulation runs on the node's ROS clock (the system
//! clock), one update per tick of a wall timer. With `publish_clock: true` the simulator owns
//! the time: it starts at 0, advances by exactly one period per update, and updates every
//! `period / real_time_factor` of wall time; the other nodes follow it with `use_sim_time`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use r2r::diagnostic_msgs::msg::DiagnosticArray;
use r2r::geometry_msgs::msg::PoseStamped;
use r2r::rosgraph_msgs::msg::Clock;
use r2r::sensor_msgs::msg::JointState;
use r2r::std_msgs::msg::Header;
use r2r::trajectory_msgs::msg::JointTrajectory as RosTrajectory;
use r2r::visualization_msgs::msg::MarkerArray;
use r2r::QosProfile;

use super::params::{load_robot, SimParams};
use crate::robot::PlanarArm;
use crate::ros::convert;
use crate::ros::inputs::{Inputs, EVENT_EXPIRY_SECS};
use crate::ros::problems::{Area, Level, Problems};
use crate::ros::report::StatusReport;
use crate::sim::{JointSample, JointTrajectory, Rule, Simulation, TrajectoryPoint};
use crate::{Error, Result};

/// How long `spin_once` waits when nothing is due.
const SPIN_TIMEOUT: Duration = Duration::from_millis(20);
/// The simulator never ages its inputs; the node's staleness rule does not apply here.
const NO_STATE_TIMEOUT_SECS: f64 = f64::MAX;

fn ros(what: &str) -> impl FnOnce(r2r::Error) -> Error + '_ {
    move |e| Error::Invalid(format!("{what}: {e}"))
}

/// A ROS time in seconds.
fn time_secs(t: &r2r::builtin_interfaces::msg::Time) -> f64 {
    f64::from(t.sec) + f64::from(t.nanosec) * 1e-9
}

/// The message as the simulated controller sees it.
pub fn trajectory_in(msg: &RosTrajectory) -> JointTrajectory {
    JointTrajectory {
        stamp_secs: time_secs(&msg.header.stamp),
        joint_names: msg.joint_names.clone(),
        points: msg
            .points
            .iter()
            .map(|p| TrajectoryPoint {
                positions: p.positions.clone(),
                velocities: p.velocities.clone(),
                accelerations: p.accelerations.clone(),
                effort: p.effort.clone(),
                time_from_start_secs: convert::duration_secs(&p.time_from_start),
            })
            .collect(),
    }
}

fn joint_state(sample: &JointSample) -> JointState {
    JointState {
        header: Header {
            stamp: convert::to_time(sample.stamp_secs),
            frame_id: String::new(),
        },
        name: sample.names.clone(),
        position: sample.positions.clone(),
        velocity: sample.velocities.clone(),
        effort: Vec::new(),
    }
}

/// Logs a rejected trajectory once per rule until another rule or an accepted message.
#[derive(Default)]
struct RejectionLog {
    last_rule: Option<Rule>,
}

/// Creates the ROS context from the process arguments (`--ros-args ...`) and the node
/// `diffusion_planner_sim`, then reads and validates its parameters.
pub fn create_node() -> Result<(r2r::Node, SimParams)> {
    let ctx = crate::ros::node::create_context()?;
    let node = r2r::Node::create(ctx, super::params::SIM_NODE_NAME, "")
        .map_err(|e| crate::ros::node::ros_error("creating the node", e))?;
    let params = SimParams::from_map(&crate::ros::node::read_params(&node))?;
    Ok((node, params))
}

/// Runs the simulator until `stop` is set (SIGINT).
pub fn run(mut node: r2r::Node, params: SimParams, stop: Arc<AtomicBool>) -> Result<()> {
    let logger = node.logger().to_string();
    let robot = load_robot(&params.model_path)?;
    let arm = PlanarArm::new(robot)?;
    let mut sim = Simulation::new(
        arm.clone(),
        params.jtc_settings(),
        params.initial_positions.clone(),
        params.update_period_secs(),
        params.goal_tolerance_m,
    )?
    .with_acceleration_limit_scale(params.acceleration_limit_scale)?;
    let mut inputs = Inputs::new(
        arm.joint_names(),
        &params.base_frame,
        NO_STATE_TIMEOUT_SECS,
        params.static_obstacles.clone(),
        Vec::new(),
    );
    let mut problems = Problems::new();
    sim.set_obstacles(inputs.obstacles());
    r2r::log_info!(
        &logger,
        "simulating `{}` (joints {:?}) from {:?} at {} Hz; {}",
        arm.description().name,
        params.joints,
        params.initial_positions,
        params.update_rate_hz,
        if params.publish_clock {
            format!(
                "publishing /clock at {}x real time",
                params.real_time_factor
            )
        } else {
            "on the system clock".to_string()
        }
    );

    let mut trajectories = node
        .subscribe::<RosTrajectory>(
            "joint_trajectory_controller/joint_trajectory",
            QosProfile::default(),
        )
        .map_err(ros("subscribing to the controller topic"))?;
    let mut obstacles = node
        .subscribe::<MarkerArray>("obstacles", QosProfile::default())
        .map_err(ros("subscribing to obstacles"))?;
    let mut goals = node
        .subscribe::<PoseStamped>("goal", QosProfile::default())
        .map_err(ros("subscribing to goal"))?;
    let joint_states_pub = node
        .create_publisher::<JointState>("joint_states", QosProfile::default())
        .map_err(ros("advertising joint_states"))?;
    let clock_pub = if params.publish_clock {
        Some(
            node.create_publisher::<Clock>("/clock", QosProfile::default())
                .map_err(ros("advertising /clock"))?,
        )
    } else {
        None
    };
    let diagnostics_pub = node
        .create_publisher::<DiagnosticArray>("/diagnostics", QosProfile::default())
        .map_err(ros("advertising /diagnostics"))?;
    let wall_period = if params.publish_clock {
        params.update_period_secs() / params.real_time_factor
    } else {
        params.update_period_secs()
    };
    let mut update_timer = node
        .create_wall_timer(Duration::from_secs_f64(wall_period))
        .map_err(ros("creating the update timer"))?;
    let mut diagnostics_timer = node
        .create_wall_timer(Duration::from_secs_f64(1.0 / params.diagnostics_rate_hz))
        .map_err(ros("creating the diagnostics timer"))?;
    let clock = node.get_ros_clock();
    let read_clock = |last: f64| -> f64 {
        let mut clock = clock.lock().unwrap_or_else(|p| p.into_inner());
        clock.get_now().map(convert::clock_secs).unwrap_or(last)
    };
    let node_name = node
        .name()
        .unwrap_or_else(|_| super::params::SIM_NODE_NAME.to_string());
    let hardware_id = node
        .fully_qualified_name()
        .unwrap_or_else(|_| node_name.clone());

    let mut now = if params.publish_clock {
        0.0
    } else {
        read_clock(0.0)
    };
    let mut rejections = RejectionLog::default();
    let mut publish_failures = 0u64;
    let publish = |sim: &mut Simulation, now: f64, failures: &mut u64| {
        let sample = sim.update(now);
        if let Some(clock_pub) = &clock_pub {
            let msg = Clock {
                clock: convert::to_time(now),
            };
            *failures += u64::from(clock_pub.publish(&msg).is_err());
        }
        *failures += u64::from(joint_states_pub.publish(&joint_state(&sample)).is_err());
    };
    publish(&mut sim, now, &mut publish_failures);
    while !stop.load(Ordering::SeqCst) {
        node.spin_once(SPIN_TIMEOUT);
        if !params.publish_clock {
            now = read_clock(now);
        }
        while let Some(Some(msg)) = trajectories.next().now_or_never() {
            match sim.receive_trajectory(&trajectory_in(&msg), now) {
                Ok(()) => rejections.last_rule = None,
                Err(rejection) => {
                    if rejections.last_rule != Some(rejection.rule()) {
                        r2r::log_error!(&logger, "trajectory rejected: {rejection}");
                        rejections.last_rule = Some(rejection.rule());
                    }
                }
            }
        }
        while let Some(Some(msg)) = obstacles.next().now_or_never() {
            inputs.on_obstacles(&convert::markers_in(&msg), now, &mut problems);
            sim.set_obstacles(inputs.obstacles());
        }
        while let Some(Some(msg)) = goals.next().now_or_never() {
            inputs.on_goal(&convert::goal_in(&msg), now, &mut problems);
            if let Some((goal_m, _)) = inputs.goal() {
                sim.set_goal(goal_m, now);
            }
        }
        let mut update_due = false;
        while let Some(tick) = update_timer.tick().now_or_never() {
            update_due |= tick.is_ok();
        }
        if update_due {
            if params.publish_clock {
                now += params.update_period_secs();
            }
            publish(&mut sim, now, &mut publish_failures);
        }
        let mut diagnostics_due = false;
        while let Some(tick) = diagnostics_timer.tick().now_or_never() {
            diagnostics_due |= tick.is_ok();
        }
        if diagnostics_due {
            let reports = statuses(&sim, &problems, &node_name);
            let msg = convert::diagnostics(&reports, &hardware_id, now);
            publish_failures += u64::from(diagnostics_pub.publish(&msg).is_err());
        }
        if publish_failures > 0 {
            problems.event(
                "publish",
                Area::Executor,
                Level::Error,
                "publishing failed (rcl error)".into(),
                now,
                EVENT_EXPIRY_SECS,
            );
            publish_failures = 0;
        }
        problems.expire(now);
        for line in problems.take_logs() {
            match line.level {
                Level::Error => r2r::log_error!(&logger, "{}", line.text),
                Level::Warn => r2r::log_warn!(&logger, "{}", line.text),
                Level::Ok => r2r::log_info!(&logger, "{}", line.text),
            }
        }
    }
    let report = sim.report();
    r2r::log_info!(
        &logger,
        "shutting down after {:.2} s simulated: {} collisions, {} of {} trajectories rejected, \
         goals reached {} of {}",
        report.sim_time_secs,
        report.collisions,
        report.trajectories_rejected,
        report.trajectories_accepted + report.trajectories_rejected,
        report.goals_reached,
        report.goals_received
    );
    Ok(())
}

/// The simulator's statuses: the arm (collisions, trajectories, tracking, goal) and its
/// inputs (obstacles and goal messages it could not use).
fn statuses(sim: &Simulation, problems: &Problems, node_name: &str) -> Vec<StatusReport> {
    let input_problems: Vec<String> = problems
        .in_area(Area::Inputs)
        .map(|(key, p)| format!("{key}: {}", p.text))
        .collect();
    vec![
        sim.report().status(&format!("{node_name}: arm")),
        StatusReport {
            name: format!("{node_name}: inputs"),
            level: problems.level(Area::Inputs),
            message: if input_problems.is_empty() {
                "ok".into()
            } else {
                input_problems.join("; ")
            },
            values: vec![("obstacles".into(), sim.obstacles().len().to_string())],
        },
    ]
}
