//! The node's spin loop: subscriptions, publishers and timers around [`NodeCore`], with planning
//! on its own thread ([`PlanningWorker`]).
//!
//! One thread spins the node and runs everything but planning: each `spin_once` returns when a
//! message or a timer is due; messages go to the core at once, the control timer (ROS clock, so
//! `use_sim_time` works) takes the newest planning result, ticks the core, hands a planning
//! request to the worker and publishes the trajectory; the diagnostics timer publishes
//! `/diagnostics`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use r2r::diagnostic_msgs::msg::DiagnosticArray;
use r2r::geometry_msgs::msg::PoseStamped;
use r2r::sensor_msgs::msg::JointState;
use r2r::std_msgs::msg::String as StringMsg;
use r2r::trajectory_msgs::msg::JointTrajectory;
use r2r::visualization_msgs::msg::MarkerArray;
use r2r::QosProfile;

use super::clock::TimeBase;
use super::convert::{self, JointOrder};
use super::core::NodeCore;
use super::params::NodeParams;
use super::problems::Level;
use super::report::TickStats;
use super::source::build_planner;
use super::worker::{request_realtime_priority, start_background_pool, PlanningWorker};
use crate::{Error, Result};

/// How long `spin_once` waits when nothing is due (bounds the reaction to a stop request).
const SPIN_TIMEOUT: Duration = Duration::from_millis(50);
/// How long shutdown waits for a running planning call.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

fn ros(what: &str) -> impl FnOnce(r2r::Error) -> Error + '_ {
    move |e| Error::Invalid(format!("{what}: {e}"))
}

/// The ROS clock's reading, seconds (`last` when it cannot be read).
fn ros_now_secs(clock: &Mutex<r2r::Clock>, last: f64) -> f64 {
    let mut clock = clock.lock().unwrap_or_else(|p| p.into_inner());
    clock.get_now().map(convert::clock_secs).unwrap_or(last)
}

/// Runs the node until `stop` is set (SIGINT); returns after the planning thread stopped (or
/// [`SHUTDOWN_WAIT`] passed).
pub fn run(mut node: r2r::Node, params: NodeParams, stop: Arc<AtomicBool>) -> Result<()> {
    let logger = node.logger().to_string();
    let pool_lowered = start_background_pool();
    let built = build_planner(&params)?;
    let order = JointOrder::new(&params.joints, &built.arm.joint_names())?;
    r2r::log_info!(
        &logger,
        "planning with {}; control {} Hz, replan {} Hz, {} candidates",
        built.description,
        params.control_rate_hz,
        params.replan_rate_hz,
        params.num_samples
    );
    let mut core = NodeCore::from_params(&params, built.arm.clone(), built.mode_names);
    let arm = built.arm;
    let worker = PlanningWorker::spawn(built.planner)
        .map_err(|e| Error::Invalid(format!("starting the planning thread: {e}")))?;
    if !pool_lowered {
        r2r::log_warn!(
            &logger,
            "could not lower the planning threads' priority; planning competes with the \
             executor at equal priority"
        );
    }

    if params.use_sim_time {
        node.get_time_source()
            .enable_sim_time(&mut node)
            .map_err(ros("enabling sim time"))?;
    }
    let mut joint_states = node
        .subscribe::<JointState>("joint_states", QosProfile::sensor_data())
        .map_err(ros("subscribing to joint_states"))?;
    let mut goals = node
        .subscribe::<PoseStamped>("goal", QosProfile::default())
        .map_err(ros("subscribing to goal"))?;
    let mut obstacles = node
        .subscribe::<MarkerArray>("obstacles", QosProfile::default())
        .map_err(ros("subscribing to obstacles"))?;
    let mut modes = node
        .subscribe::<StringMsg>("mode_request", QosProfile::default())
        .map_err(ros("subscribing to mode_request"))?;
    let trajectory_pub = node
        .create_publisher::<JointTrajectory>("joint_trajectory", QosProfile::default())
        .map_err(ros("advertising joint_trajectory"))?;
    let markers_pub = node
        .create_publisher::<MarkerArray>("~/candidates", QosProfile::default())
        .map_err(ros("advertising ~/candidates"))?;
    let diagnostics_pub = node
        .create_publisher::<DiagnosticArray>("/diagnostics", QosProfile::default())
        .map_err(ros("advertising /diagnostics"))?;
    let mut control_timer = node
        .create_timer(Duration::from_secs_f64(params.control_period_secs()))
        .map_err(ros("creating the control timer"))?;
    let mut diagnostics_timer = node
        .create_timer(Duration::from_secs_f64(1.0 / params.diagnostics_rate_hz))
        .map_err(ros("creating the diagnostics timer"))?;
    let clock = node.get_ros_clock();
    let node_name = node.name().unwrap_or_else(|_| super::NODE_NAME.to_string());
    let hardware_id = node
        .fully_qualified_name()
        .unwrap_or_else(|_| node_name.clone());

    // Last, so that the threads created above keep their normal or lower priority.
    let realtime = request_realtime_priority();
    r2r::log_info!(
        &logger,
        "executor thread: {}",
        if realtime {
            "real-time scheduling (SCHED_FIFO)"
        } else {
            "normal scheduling (real-time priority not permitted)"
        }
    );
    let wall_origin = Instant::now();
    let mut ticks = TickStats::default();
    // The core runs on node time: the ROS clock made continuous across backward jumps
    // (`clock.rs`); stamps going out are ROS time again, joint-state stamps coming in node time.
    let mut time_base = TimeBase::default();
    let mut ros_now = 0.0;
    let mut now = 0.0;
    let mut publish_failures = 0u64;
    let mut panicked = None;
    while !stop.load(Ordering::SeqCst) {
        node.spin_once(SPIN_TIMEOUT);
        // A panic here (a bug) must not leave the robot on a trajectory nobody watches: it is
        // caught, the robot brakes (one last message) and the node exits with status 1, so a
        // supervisor (launch `respawn`) restarts it. Every message already ends at rest at a
        // collision-checked point, so even without the braking message the arm stops.
        let iteration = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            ros_now = ros_now_secs(&clock, ros_now);
            let jump;
            (now, jump) = time_base.update(ros_now);
            if let Some(by_secs) = jump {
                core.clock_jumped_back(by_secs, now);
            }
            while let Some(Some(msg)) = joint_states.next().now_or_never() {
                let mut state = convert::joint_state_in(&msg);
                state.stamp_secs = time_base.from_ros(state.stamp_secs);
                core.on_joint_state(&state, now);
            }
            while let Some(Some(msg)) = goals.next().now_or_never() {
                core.on_goal(&convert::goal_in(&msg), now);
            }
            while let Some(Some(msg)) = obstacles.next().now_or_never() {
                core.on_obstacles(&convert::markers_in(&msg), now);
            }
            while let Some(Some(msg)) = modes.next().now_or_never() {
                core.on_mode(&msg.data, now);
            }
            let mut control_due = false;
            while let Some(tick) = control_timer.tick().now_or_never() {
                control_due |= tick.is_ok();
            }
            if control_due {
                ticks.tick(
                    wall_origin.elapsed().as_secs_f64(),
                    params.control_period_secs(),
                );
                if let Some(result) = worker.take_result() {
                    if let Some(outcome) = core.on_result(result, now) {
                        let markers =
                            convert::candidate_markers(&outcome, &arm, &params.base_frame);
                        publish_failures += u64::from(markers_pub.publish(&markers).is_err());
                    }
                }
                let out = core.tick(now, worker.is_busy());
                if let Some(request) = out.request {
                    worker.submit(request);
                }
                if let Some(points) = out.command {
                    let stamp = out.stamp_secs.map(|t| time_base.to_ros(t));
                    let msg = convert::trajectory(&points, &order, stamp);
                    match trajectory_pub.publish(&msg) {
                        Ok(()) => ticks.published += 1,
                        Err(_) => publish_failures += 1,
                    }
                }
            }
            let mut diagnostics_due = false;
            while let Some(tick) = diagnostics_timer.tick().now_or_never() {
                diagnostics_due |= tick.is_ok();
            }
            if diagnostics_due {
                let reports = core.diagnostics(&node_name, now, &ticks);
                let msg = convert::diagnostics(&reports, &hardware_id, time_base.to_ros(now));
                publish_failures += u64::from(diagnostics_pub.publish(&msg).is_err());
            }
            if publish_failures > 0 {
                core.problems_mut().event(
                    "publish",
                    super::problems::Area::Executor,
                    Level::Error,
                    "publishing failed (rcl error)".into(),
                    now,
                    super::inputs::EVENT_EXPIRY_SECS,
                );
                publish_failures = 0;
            }
            for line in core.problems_mut().take_logs() {
                match line.level {
                    Level::Error => r2r::log_error!(&logger, "{}", line.text),
                    Level::Warn => r2r::log_warn!(&logger, "{}", line.text),
                    Level::Ok => r2r::log_info!(&logger, "{}", line.text),
                }
            }
        }));
        if let Err(payload) = iteration {
            panicked = Some(super::worker::panic_message(payload.as_ref()));
            break;
        }
    }
    if let Some(message) = &panicked {
        r2r::log_error!(
            &logger,
            "the spin thread panicked: {message}; braking and exiting"
        );
        let braking = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            core.brake(now)
                .map(|points| convert::trajectory(&points, &order, None))
        }));
        if let Ok(Some(msg)) = braking {
            let _ = trajectory_pub.publish(&msg);
        }
    }
    r2r::log_info!(&logger, "shutting down");
    if !worker.shutdown(SHUTDOWN_WAIT) {
        r2r::log_warn!(
            &logger,
            "the planning call still running after {:?} is abandoned",
            SHUTDOWN_WAIT
        );
    }
    match panicked {
        Some(message) => Err(Error::Invalid(format!(
            "the spin thread panicked: {message}"
        ))),
        None => Ok(()),
    }
}
