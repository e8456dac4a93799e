//! `dplan closed-loop`: the node's behaviour ([`NodeCore`]), its planner and the simulated arm
//! ([`Simulation`]) in simulated time, without DDS, over random scenes of the reference task.
//!
//! **Scenes**: the held-out scenes of `dplan eval` ([`held_out_scenes`]: the data config's
//! scene sampler and robot from a ChaCha8 stream seeded with `--seed`, draws where the expert
//! finds no path skipped), so closed-loop and open-loop numbers describe the same scenes. The
//! seed must differ from the training data's (the data config's and the model's).
//!
//! **The loop** (per scene, from rest at the scene's start): the obstacles and the goal reach
//! the node and the simulation at time 0. The simulation updates at `--update-rate-hz` (the
//! controller manager, 100 Hz) and each joint state goes to the node at once; the node ticks at
//! its `control_rate_hz` (`--params`, the shipped `config/planar_arm.yaml`: 50 Hz) and every
//! trajectory it publishes reaches the controller at once (adopted at the next update).
//! Planning requests are served like the node's planning thread: one at a time, a newer
//! request replacing one not started, the newest result taken at the next tick. A planning
//! call runs synchronously when it starts; its result becomes available **a latency later in
//! simulated time**: by default the call's measured wall time (so the robot waits as long as it
//! would on this machine; results then vary a little between runs), or a fixed `--latency-ms`
//! (deterministic on the CPU).
//!
//! **Success**: the end effector within `goal_tolerance_m` of the goal with the joints at rest
//! (the simulation's goal check) before `--timeout-secs` of simulated time. Also counted:
//! collision episodes of the simulated arm (swept between updates), trajectories the
//! controller rejected, time to goal, mode switches (the chosen candidate's geometric label
//! changes between adopted plans), and planning latency (wall time of each call).

#[path = "closed_loop_args.rs"]
mod args;

use std::time::Instant;

use serde::Serialize;

pub use args::ClosedLoopArgs;

use super::simulation::Simulation;
use super::trajectory::JointTrajectory;
use super::validate::JtcSettings;
use crate::eval::{held_out_scenes, percentile, HeldOutScene};
use crate::model::{ModelSpec, MODEL_YAML};
use crate::planning::{Plan, PlanOutcome, Planner};
use crate::ros::core::NodeCore;
use crate::ros::executor::Motion;
use crate::ros::geometric_source::SYNTHETIC_MODEL_PATH;
use crate::ros::inputs::{marker, GoalIn, JointStateIn, MarkerIn};
use crate::ros::params::{load_params_file, NodeParams, ParamValue};
use crate::ros::source::build_planner;
use crate::ros::worker::{PlanFailure, PlanRequest, PlanResult};
use crate::sample_cli::matching_label_scheme;
use crate::task::generate::DataConfig;
use crate::task::{LabelScheme, Scene};
use crate::{Error, Result};

/// The node name whose section of `--params` is read.
const NODE_NAME: &str = "diffusion_planner";

/// The outcome of one scene.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SceneResult {
    /// Position in the held-out draws (as `dplan eval` numbers them).
    pub draw: usize,
    /// The scene (start, goal, obstacles), so another simulator can run the same ones.
    pub scene: Scene,
    pub success: bool,
    /// Simulated seconds from the goal to reaching it.
    pub time_to_goal_secs: Option<f64>,
    pub collisions: u64,
    pub min_clearance_m: Option<f64>,
    pub rejected_trajectories: u64,
    pub mode_switches: u64,
    /// The chosen candidates' labels in order of adoption (repeats collapsed).
    pub modes: Vec<String>,
    pub planning_calls: u64,
    pub failed_calls: u64,
    pub no_valid_candidate: u64,
    pub late_plans: u64,
    pub final_goal_distance_m: Option<f64>,
    pub max_tracking_error_rad: f64,
    pub sim_secs: f64,
    /// Wall-clock milliseconds of each planning call.
    #[serde(skip)]
    pub latencies_ms: Vec<f64>,
}

/// The result of `dplan closed-loop` (the `--json` file).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClosedLoopReport {
    pub model: String,
    pub seed: u64,
    pub scenes: usize,
    /// Draws skipped because the expert found no path.
    pub infeasible_scenes: usize,
    pub successes: usize,
    pub success_rate: f64,
    /// Collision episodes over all scenes (must be 0).
    pub collisions: u64,
    pub scenes_with_collisions: usize,
    pub rejected_trajectories: u64,
    pub time_to_goal_p50_secs: Option<f64>,
    pub time_to_goal_p90_secs: Option<f64>,
    pub mode_switches: u64,
    pub scenes_with_mode_switches: usize,
    pub planning_calls: u64,
    pub planning_latency_ms_p50: Option<f64>,
    pub planning_latency_ms_p99: Option<f64>,
    pub min_clearance_m: Option<f64>,
    /// The largest joint tracking error of the simulated arm over all scenes (radians; how far
    /// the arm fell behind infeasible commands, see docs/SIM.md).
    pub max_tracking_error_rad: f64,
    /// `measured wall time` or `fixed N ms`.
    pub latency_model: String,
    pub timeout_secs: f64,
    pub acceleration_limit_scale: f64,
    /// Moving trajectories stamped with the node's clock (`stamp_trajectories`, unless
    /// `--unstamped`); otherwise stamp 0.
    pub stamped: bool,
    pub control_rate_hz: f64,
    pub update_rate_hz: f64,
    pub wall_secs: f64,
    pub per_scene: Vec<SceneResult>,
}

impl ClosedLoopReport {
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| Error::Invalid(e.to_string()))
    }

    /// A short text summary.
    pub fn summary(&self) -> String {
        let opt = |v: Option<f64>, unit: &str| v.map_or("n/a".into(), |v| format!("{v:.2} {unit}"));
        format!(
            "closed loop: {} scenes ({} infeasible draws skipped), model {}, seed {}\n\
             success rate          {:.3} ({} / {})\n\
             collisions            {} (in {} scenes)\n\
             rejected trajectories {}\n\
             time to goal p50/p90  {} / {}\n\
             mode switches         {} (in {} scenes)\n\
             planning latency      p50 {} / p99 {} ({} calls; latency model: {})\n\
             joints                acceleration limits x {}\n\
             min clearance         {}\n\
             max tracking error    {:.4} rad\n",
            self.scenes,
            self.infeasible_scenes,
            self.model,
            self.seed,
            self.success_rate,
            self.successes,
            self.scenes,
            self.collisions,
            self.scenes_with_collisions,
            self.rejected_trajectories,
            opt(self.time_to_goal_p50_secs, "s"),
            opt(self.time_to_goal_p90_secs, "s"),
            self.mode_switches,
            self.scenes_with_mode_switches,
            opt(self.planning_latency_ms_p50, "ms"),
            opt(self.planning_latency_ms_p99, "ms"),
            self.planning_calls,
            self.latency_model,
            self.acceleration_limit_scale,
            self.min_clearance_m
                .map_or("-".to_string(), |c| format!("{:.1} mm", 1e3 * c)),
            self.max_tracking_error_rad,
        )
    }
}

/// The node's parameters from `--params` with `--model`, `--seed` and `--device`.
fn node_params(args: &ClosedLoopArgs) -> Result<NodeParams> {
    let mut map = load_params_file(&args.params, NODE_NAME, "")?;
    map.insert(
        "model_path".into(),
        ParamValue::String(args.model.display().to_string()),
    );
    let seed = i64::try_from(args.seed)
        .map_err(|_| Error::config("seed", format!("{} does not fit a ROS integer", args.seed)))?;
    map.insert("seed".into(), ParamValue::Integer(seed));
    let mut params = NodeParams::from_map(&map)?;
    params.device = args.device;
    params.stamp_trajectories &= !args.unstamped;
    Ok(params)
}

/// The evaluation seed must not be the training data's.
fn check_seed(args: &ClosedLoopArgs, data: &DataConfig) -> Result<()> {
    let mut training = vec![data.seed];
    if args.model.as_os_str() != SYNTHETIC_MODEL_PATH {
        let spec = ModelSpec::load(&args.model.join(MODEL_YAML))?;
        training.extend(spec.training.data_seed);
    }
    if training.contains(&args.seed) {
        return Err(Error::config(
            "seed",
            format!(
                "{} is a training data seed ({training:?}); closed-loop scenes need another",
                args.seed
            ),
        ));
    }
    Ok(())
}

/// Runs the closed loop over `--scenes` scenes (see the module docs); writes `--json`.
/// `progress(done, total)` is called after each scene.
pub fn run_closed_loop(
    args: &ClosedLoopArgs,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<ClosedLoopReport> {
    args.validate()?;
    let started = Instant::now();
    let data = DataConfig::load(&args.data_config)?;
    check_seed(args, &data)?;
    let params = node_params(args)?;
    let built = build_planner(&params)?;
    if built.arm.description() != &data.robot {
        return Err(Error::config(
            "data_config.robot",
            format!(
                "{} describes another robot than the planner's ({} vs {})",
                args.data_config.display(),
                data.robot.name,
                built.arm.description().name
            ),
        ));
    }
    let scheme = matching_label_scheme(&built.mode_names).unwrap_or(LabelScheme::SideElbow);
    let held_out = held_out_scenes(&data, scheme, args.seed, args.scenes, &mut |_| {})?;
    let mut planner = built.planner;
    let mut per_scene = Vec::with_capacity(held_out.scenes.len());
    for (i, scene) in held_out.scenes.iter().enumerate() {
        planner.reset();
        let mut run = SceneRun::new(args, &params, &built.mode_names, &built.arm, scene)?;
        per_scene.push(run.run(&mut planner)?);
        progress(i + 1, held_out.scenes.len());
    }
    let report = aggregate(args, &params, held_out.infeasible, per_scene, started);
    if let Some(path) = &args.json {
        std::fs::write(path, report.to_json()?).map_err(|e| Error::io(path, e))?;
    }
    Ok(report)
}

fn aggregate(
    args: &ClosedLoopArgs,
    params: &NodeParams,
    infeasible: usize,
    per_scene: Vec<SceneResult>,
    started: Instant,
) -> ClosedLoopReport {
    let successes = per_scene.iter().filter(|s| s.success).count();
    let times: Vec<f64> = per_scene
        .iter()
        .filter_map(|s| s.time_to_goal_secs)
        .collect();
    let latencies: Vec<f64> = per_scene
        .iter()
        .flat_map(|s| s.latencies_ms.iter().copied())
        .collect();
    let scenes = per_scene.len();
    ClosedLoopReport {
        model: args.model.display().to_string(),
        seed: args.seed,
        scenes,
        infeasible_scenes: infeasible,
        successes,
        success_rate: successes as f64 / scenes.max(1) as f64,
        collisions: per_scene.iter().map(|s| s.collisions).sum(),
        scenes_with_collisions: per_scene.iter().filter(|s| s.collisions > 0).count(),
        rejected_trajectories: per_scene.iter().map(|s| s.rejected_trajectories).sum(),
        time_to_goal_p50_secs: percentile(&times, 0.5),
        time_to_goal_p90_secs: percentile(&times, 0.9),
        mode_switches: per_scene.iter().map(|s| s.mode_switches).sum(),
        scenes_with_mode_switches: per_scene.iter().filter(|s| s.mode_switches > 0).count(),
        planning_calls: per_scene.iter().map(|s| s.planning_calls).sum(),
        planning_latency_ms_p50: percentile(&latencies, 0.5),
        planning_latency_ms_p99: percentile(&latencies, 0.99),
        min_clearance_m: per_scene
            .iter()
            .filter_map(|s| s.min_clearance_m)
            .reduce(f64::min),
        max_tracking_error_rad: per_scene
            .iter()
            .map(|s| s.max_tracking_error_rad)
            .fold(0.0, f64::max),
        latency_model: match args.latency_ms {
            Some(ms) => format!("fixed {ms} ms"),
            None => "measured wall time".into(),
        },
        timeout_secs: args.timeout_secs,
        acceleration_limit_scale: args.acceleration_limit_scale,
        stamped: params.stamp_trajectories,
        control_rate_hz: params.control_rate_hz,
        update_rate_hz: args.update_rate_hz,
        wall_secs: started.elapsed().as_secs_f64(),
        per_scene,
    }
}

/// A planning call in flight: its result and when it becomes available (simulated time).
struct InFlight {
    result: PlanResult,
    done_secs: f64,
}

/// One scene's loop state.
struct SceneRun<'a> {
    args: &'a ClosedLoopArgs,
    draw: usize,
    scene: Scene,
    core: NodeCore,
    sim: Simulation,
    joint_names: Vec<String>,
    in_flight: Option<InFlight>,
    pending: Option<PlanRequest>,
    ready: Option<PlanResult>,
    latencies_ms: Vec<f64>,
    modes: Vec<String>,
    mode_switches: u64,
    calls: u64,
}

impl<'a> SceneRun<'a> {
    fn new(
        args: &'a ClosedLoopArgs,
        params: &NodeParams,
        mode_names: &[String],
        arm: &crate::robot::PlanarArm,
        held_out: &HeldOutScene,
    ) -> Result<Self> {
        let scene = &held_out.scene;
        let joint_names = arm.joint_names();
        let mut core = NodeCore::from_params(params, arm.clone(), mode_names.to_vec());
        let mut sim = Simulation::new(
            arm.clone(),
            JtcSettings::recommended(joint_names.clone()),
            scene.start_rad.clone(),
            1.0 / args.update_rate_hz,
            params.goal_tolerance_m,
        )?
        .with_acceleration_limit_scale(args.acceleration_limit_scale)?;
        let markers: Vec<MarkerIn> = std::iter::once(MarkerIn {
            ns: "scene".into(),
            action: marker::DELETEALL,
            ..Default::default()
        })
        .chain(scene.obstacles.iter().enumerate().map(|(i, o)| MarkerIn {
            ns: "scene".into(),
            id: i32::try_from(i).unwrap_or(i32::MAX),
            kind: marker::CYLINDER,
            action: marker::ADD,
            frame_id: params.base_frame.clone(),
            position_m: [o.center_m[0], o.center_m[1], 0.0],
            scale_m: [2.0 * o.radius_m, 2.0 * o.radius_m, 0.1],
            lifetime_secs: 0.0,
        }))
        .collect();
        core.on_obstacles(&markers, 0.0);
        sim.set_obstacles(scene.obstacles.clone());
        core.on_goal(
            &GoalIn {
                frame_id: params.base_frame.clone(),
                position_m: [scene.goal_m[0], scene.goal_m[1], 0.0],
            },
            0.0,
        );
        sim.set_goal(scene.goal_m, 0.0);
        Ok(SceneRun {
            args,
            draw: held_out.draw,
            scene: scene.clone(),
            core,
            sim,
            joint_names,
            in_flight: None,
            pending: None,
            ready: None,
            latencies_ms: Vec::new(),
            modes: Vec::new(),
            mode_switches: 0,
            calls: 0,
        })
    }

    /// Runs a planning call for `request` starting at `start_secs`.
    fn start(&mut self, planner: &mut Planner, request: PlanRequest, start_secs: f64) {
        let started = Instant::now();
        let outcome = planner
            .plan(&request.observation)
            .map_err(|e| PlanFailure::Error(e.to_string()));
        let wall_secs = started.elapsed().as_secs_f64();
        self.calls += 1;
        self.latencies_ms.push(wall_secs * 1e3);
        let latency_secs = self.args.latency_ms.map_or(wall_secs, |ms| ms * 1e-3);
        self.in_flight = Some(InFlight {
            result: PlanResult {
                id: request.id,
                requested_secs: request.requested_secs,
                wall_secs,
                outcome,
            },
            done_secs: start_secs + latency_secs,
        });
    }

    /// The planning thread up to `now`: finished calls hand their result over (the newest
    /// wins) and the pending request starts when the previous call ends.
    fn advance_worker(&mut self, planner: &mut Planner, now: f64) {
        while let Some(done_secs) = self.in_flight.as_ref().map(|f| f.done_secs) {
            if done_secs > now {
                return;
            }
            if let Some(finished) = self.in_flight.take() {
                self.ready = Some(finished.result);
            }
            if let Some(request) = self.pending.take() {
                self.start(planner, request, done_secs);
            }
        }
    }

    /// Records the chosen label of an outcome the executor adopted (`before`: the active
    /// trajectory before the result was taken).
    fn record_mode(&mut self, outcome: &PlanOutcome, before: Option<&Plan>, now: f64) {
        let executor = self.core.executor();
        let adopted = outcome.plan.is_some()
            && executor.active_plan() != before
            && executor.motion(now) == Motion::Following;
        if !adopted {
            return;
        }
        let Some(label) = outcome
            .chosen
            .and_then(|c| outcome.candidates.get(c))
            .and_then(|c| c.label.clone())
        else {
            return;
        };
        match self.modes.last() {
            Some(last) if *last == label => {}
            Some(_) => {
                self.mode_switches += 1;
                self.modes.push(label);
            }
            None => self.modes.push(label),
        }
    }

    fn run(&mut self, planner: &mut Planner) -> Result<SceneResult> {
        let period = 1.0 / self.args.update_rate_hz;
        let node_period = self.core.executor().period_secs();
        let steps = (self.args.timeout_secs / period).ceil() as u64;
        let mut next_tick = 0.0;
        for k in 0..=steps {
            let now = k as f64 * period;
            let sample = self.sim.update(now);
            self.core.on_joint_state(
                &JointStateIn {
                    stamp_secs: now,
                    names: sample.names,
                    positions: sample.positions,
                    velocities_len: sample.velocities.len(),
                    efforts_len: 0,
                },
                now,
            );
            if self.sim.goal_reached() {
                break;
            }
            // A tick is due when `now` reaches it (within rounding of the update grid).
            if now + 1e-9 < next_tick {
                continue;
            }
            next_tick += node_period;
            self.advance_worker(planner, now);
            if let Some(result) = self.ready.take() {
                let before = self.core.executor().active_plan().cloned();
                if let Some(outcome) = self.core.on_result(result, now) {
                    self.record_mode(&outcome, before.as_ref(), now);
                }
            }
            let busy = self.in_flight.is_some() || self.pending.is_some();
            let out = self.core.tick(now, busy);
            if let Some(request) = out.request {
                if self.in_flight.is_some() {
                    self.pending = Some(request);
                } else {
                    self.start(planner, request, now);
                }
            }
            if let Some(points) = out.command {
                let mut msg = JointTrajectory::from_command_points(&self.joint_names, &points);
                msg.stamp_secs = out.stamp_secs.unwrap_or(0.0);
                // A rejection is counted by the simulation.
                let _ = self.sim.receive_trajectory(&msg, now);
            }
        }
        let report = self.sim.report();
        let stats = &self.core.stats;
        Ok(SceneResult {
            draw: self.draw,
            scene: self.scene.clone(),
            success: report.goal_reached,
            time_to_goal_secs: report.time_to_goal_secs,
            collisions: report.collisions,
            min_clearance_m: report.min_clearance_m,
            rejected_trajectories: report.trajectories_rejected,
            mode_switches: self.mode_switches,
            modes: self.modes.clone(),
            planning_calls: self.calls,
            failed_calls: stats.failed,
            no_valid_candidate: stats.no_plan,
            late_plans: stats.late,
            final_goal_distance_m: report.goal_distance_m,
            max_tracking_error_rad: report.max_tracking_error_rad,
            sim_secs: report.sim_time_secs,
            latencies_ms: std::mem::take(&mut self.latencies_ms),
        })
    }
}

#[cfg(test)]
#[path = "closed_loop_tests.rs"]
mod tests;
