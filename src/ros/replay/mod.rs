//! `dplan replay`: the node's behaviour on a recorded bag, offline and deterministic, without
//! DDS. The bag's input messages (`joint_states`, `goal`, `obstacles`, `mode_request`) are
//! decoded with r2r (`from_serialized_bytes`) and fed to [`NodeCore`] in bag-time order; the
//! control timer ticks every `1 / control_rate_hz` of bag time and `/diagnostics` every
//! `1 / diagnostics_rate_hz`, as the node's timers do with `use_sim_time: true` under
//! `ros2 bag play --clock`. Planning runs synchronously: a request made at a tick is planned at
//! once and its result taken at the next tick (where the live node takes the result of its
//! planning thread), so the same bag and parameters always give the same plans.
//!
//! The output bag holds the input messages and what the node would have published, at the bag
//! time of the tick that published it: `joint_trajectory`, `diffusion_planner/candidates` and
//! `/diagnostics` (names resolved in `namespace`, as the node's).
//!
//! Differences from the live node (docs/REPLAY.md): no planning latency (results arrive one
//! tick after the request; the live node's take as long as planning does, at least one tick),
//! messages reach the node at their exact bag time, and the wall-clock fields of the
//! diagnostics (planning latency, tick timing) describe this process.

pub mod bag;
pub mod cdr;
pub mod msgdef;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use r2r::geometry_msgs::msg::PoseStamped;
use r2r::sensor_msgs::msg::JointState;
use r2r::std_msgs::msg::String as StringMsg;
use r2r::visualization_msgs::msg::MarkerArray;
use r2r::WrappedTypesupport;

use self::bag::{read_bag, BagWriter, InputBag, Topic};
use self::cdr::Layouts;
use self::msgdef::{MsgLibrary, ROS2MSG};
use super::convert::{self, JointOrder};
use super::core::NodeCore;
use super::geometric_source::{GeometricSource, SYNTHETIC_MODEL_PATH};
use super::params::{load_params_file, NodeParams, ParamMap, ParamValue};
use super::problems::Level;
use super::report::TickStats;
use super::source::build_planner;
use super::worker::{plan_once, PlanResult};
use super::NODE_NAME;
use crate::model::{ModelSpec, MODEL_YAML};
use crate::planning::Planner;
use crate::robot::PlanarArm;
use crate::{Error, Result};

/// Input topics (relative to the namespace) and their types.
pub const INPUTS: [(&str, &str); 4] = [
    ("joint_states", "sensor_msgs/msg/JointState"),
    ("goal", "geometry_msgs/msg/PoseStamped"),
    ("obstacles", "visualization_msgs/msg/MarkerArray"),
    ("mode_request", "std_msgs/msg/String"),
];

/// Output topics (`~` = the node's name, absolute names stay) and their types.
pub const OUTPUTS: [(&str, &str); 3] = [
    ("joint_trajectory", "trajectory_msgs/msg/JointTrajectory"),
    ("~/candidates", "visualization_msgs/msg/MarkerArray"),
    ("/diagnostics", "diagnostic_msgs/msg/DiagnosticArray"),
];

/// Command line of `dplan replay`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// Input bag: a rosbag2 directory (MCAP storage) or one .mcap file.
    pub bag: PathBuf,
    /// Output bag: a directory (metadata.yaml + .mcap), or a path ending in .mcap.
    #[arg(long)]
    pub out: PathBuf,
    /// Model folder (overrides `model_path`); without it and without a parameter file the
    /// geometric source plans (`model_path: synthetic`).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Node parameter file (ROS 2 YAML, e.g. config/planar_arm.yaml); `joints` defaults to the
    /// model's joints.
    pub params: Option<PathBuf>,
    /// The namespace the bag's topics were recorded in (`/` = root).
    #[arg(long, default_value = "/")]
    pub namespace: String,
    /// Bag time the node keeps running after the last message, seconds (less than
    /// `state_timeout_secs`, so the end of the bag does not look like lost joint states).
    #[arg(long, default_value_t = 0.25)]
    pub settle_secs: f64,
}

/// What a replay did.
#[derive(Debug, Clone, Default)]
pub struct ReplaySummary {
    /// Messages fed to the node, per input topic.
    pub inputs: BTreeMap<String, u64>,
    /// Topics of the bag that are not inputs of the node (copied, not fed).
    pub other_topics: Vec<String>,
    /// Messages written per topic of the output bag.
    pub outputs: BTreeMap<String, u64>,
    pub control_ticks: u64,
    pub planning_calls: u64,
    /// Bag time replayed, seconds.
    pub bag_secs: f64,
    /// Wall time of the replay, seconds.
    pub wall_secs: f64,
    /// The node's log lines: (seconds since the bag start, level, text).
    pub logs: Vec<(f64, Level, String)>,
}

impl ReplaySummary {
    /// A few lines for the terminal.
    pub fn text(&self) -> String {
        let mut out = format!(
            "replayed {:.1} s of bag time in {:.2} s: {} control ticks, {} planning calls\n",
            self.bag_secs, self.wall_secs, self.control_ticks, self.planning_calls
        );
        out += &format!("inputs: {:?}\noutputs: {:?}\n", self.inputs, self.outputs);
        if !self.other_topics.is_empty() {
            out += &format!("copied, not fed: {:?}\n", self.other_topics);
        }
        let errors = self.logs.iter().filter(|l| l.1 == Level::Error).count();
        out += &format!("node log: {} lines, {errors} errors\n", self.logs.len());
        out
    }
}

/// Resolves a topic name as rcl does for a node `NODE_NAME` in `namespace`.
pub fn resolve(name: &str, namespace: &str) -> String {
    let ns = namespace.trim_end_matches('/');
    if let Some(rest) = name.strip_prefix("~/") {
        format!("{ns}/{NODE_NAME}/{rest}")
    } else if name.starts_with('/') {
        name.to_string()
    } else {
        format!("{ns}/{name}")
    }
}

/// The node parameters of a replay: the parameter file (if any), `--model` over `model_path`
/// (`synthetic` when neither gives one), `joints` from the model when not given.
pub fn replay_params(args: &ReplayArgs) -> Result<NodeParams> {
    let mut map: ParamMap = match &args.params {
        Some(path) => load_params_file(path, NODE_NAME, &args.namespace)?,
        None => ParamMap::new(),
    };
    if let Some(model) = &args.model {
        map.insert(
            "model_path".into(),
            ParamValue::String(model.display().to_string()),
        );
    }
    let model_path = match map.get("model_path") {
        Some(ParamValue::String(p)) => p.clone(),
        Some(_) => String::new(), // NodeParams names the wrong type
        None => {
            map.insert(
                "model_path".into(),
                ParamValue::String(SYNTHETIC_MODEL_PATH.into()),
            );
            SYNTHETIC_MODEL_PATH.into()
        }
    };
    if !map.contains_key("joints") && !model_path.is_empty() {
        let joints = if model_path == SYNTHETIC_MODEL_PATH {
            GeometricSource::reference()?.arm().joint_names()
        } else {
            let spec = ModelSpec::load(&Path::new(&model_path).join(MODEL_YAML))?;
            spec.robot.joints.iter().map(|j| j.name.clone()).collect()
        };
        map.insert("joints".into(), ParamValue::StringArray(joints));
    }
    NodeParams::from_map(&map)
}

/// `dplan replay`.
pub fn run(args: &ReplayArgs) -> Result<ReplaySummary> {
    if !(args.settle_secs >= 0.0 && args.settle_secs.is_finite()) {
        return Err(Error::config(
            "--settle-secs",
            format!("is {}, expected >= 0", args.settle_secs),
        ));
    }
    let params = replay_params(args)?;
    let input = read_bag(&args.bag)?;
    replay(
        &input,
        &params,
        &args.namespace,
        args.settle_secs,
        &args.out,
    )
}

fn decode<T: WrappedTypesupport>(data: &[u8], topic: &str, t_ns: u64) -> Result<T> {
    T::from_serialized_bytes(data).map_err(|e| {
        Error::Invalid(format!(
            "cannot decode the message on `{topic}` at {t_ns} ns: {e}"
        ))
    })
}

/// The node's output topics (in [`OUTPUTS`] order) and their layouts.
struct Outputs {
    names: Vec<String>,
    layouts: Layouts,
}

impl Outputs {
    /// The CDR bytes of `msg` for output `k`: exact length, zeroed padding (see [`cdr`]).
    fn encode<T: WrappedTypesupport>(&self, k: usize, msg: &T) -> Result<Vec<u8>> {
        let topic = self.names.get(k).map_or("?", String::as_str);
        let type_name = OUTPUTS.get(k).map_or("?", |o| o.1);
        let mut bytes = msg.to_serialized_bytes().map_err(|e| {
            Error::Invalid(format!("cannot serialise a message for `{topic}`: {e}"))
        })?;
        self.layouts
            .canonicalize(type_name, &mut bytes)
            .map_err(|e| Error::Invalid(format!("serialised message for `{topic}`: {e}")))?;
        Ok(bytes)
    }
}

fn secs(t_ns: u64) -> f64 {
    t_ns as f64 * 1e-9
}

fn period_ns(rate_hz: f64) -> u64 {
    ((1e9 / rate_hz).round() as u64).max(1)
}

/// The node without ROS on bag time: [`NodeCore`], its planner run synchronously, and the
/// output bag it publishes into.
struct OfflineNode<'a> {
    params: &'a NodeParams,
    core: NodeCore,
    planner: Planner,
    arm: PlanarArm,
    order: JointOrder,
    /// The result of the last request, taken at the next control tick.
    pending: Option<PlanResult>,
    ticks: TickStats,
    writer: BagWriter,
    outputs: Outputs,
    /// Output bag topic of each of [`OUTPUTS`].
    output_topics: Vec<usize>,
    hardware_id: String,
}

impl<'a> OfflineNode<'a> {
    fn new(params: &'a NodeParams, namespace: &str, writer: BagWriter) -> Result<Self> {
        let built = build_planner(params)?;
        let order = JointOrder::new(&params.joints, &built.arm.joint_names())?;
        let core = NodeCore::from_params(params, built.arm.clone(), built.mode_names);
        let mut node = OfflineNode {
            params,
            core,
            planner: built.planner,
            arm: built.arm,
            order,
            pending: None,
            ticks: TickStats::default(),
            writer,
            outputs: Outputs {
                names: OUTPUTS.iter().map(|(n, _)| resolve(n, namespace)).collect(),
                layouts: Layouts::default(),
            },
            output_topics: Vec::new(),
            hardware_id: resolve(NODE_NAME, namespace),
        };
        let library = MsgLibrary::from_env()?;
        for (name, type_name) in OUTPUTS {
            let def = library.definition(type_name)?;
            node.outputs.layouts.add_schema(&def.type_name, &def.text)?;
            let topic = node.writer.add_topic(Topic {
                name: resolve(name, namespace),
                type_name: def.type_name,
                schema_encoding: ROS2MSG.into(),
                schema: def.text.into_bytes(),
                type_hash: def.type_hash,
            })?;
            node.output_topics.push(topic);
        }
        Ok(node)
    }

    /// Publishes `msg` on output `k` at `t_ns`.
    fn publish<T: WrappedTypesupport>(&mut self, k: usize, t_ns: u64, msg: &T) -> Result<()> {
        let bytes = self.outputs.encode(k, msg)?;
        let topic = self.output_topics.get(k).copied().unwrap_or(usize::MAX);
        self.writer.write(topic, t_ns, &bytes)
    }

    /// One input message (`INPUTS[role]`) at its bag time.
    fn feed(&mut self, role: usize, topic: &str, t_ns: u64, data: &[u8]) -> Result<()> {
        let now = secs(t_ns);
        let core = &mut self.core;
        match role {
            0 => core.on_joint_state(
                &convert::joint_state_in(&decode::<JointState>(data, topic, t_ns)?),
                now,
            ),
            1 => core.on_goal(
                &convert::goal_in(&decode::<PoseStamped>(data, topic, t_ns)?),
                now,
            ),
            2 => core.on_obstacles(
                &convert::markers_in(&decode::<MarkerArray>(data, topic, t_ns)?),
                now,
            ),
            _ => core.on_mode(&decode::<StringMsg>(data, topic, t_ns)?.data, now),
        }
        Ok(())
    }

    /// The control timer, as app.rs runs it: the pending result, the core's tick, a planning
    /// request (planned at once, its result pending until the next tick), the trajectory.
    /// Returns whether it planned.
    fn control_tick(&mut self, t_ns: u64) -> Result<bool> {
        let now = secs(t_ns);
        self.ticks.tick(now, self.params.control_period_secs());
        if let Some(result) = self.pending.take() {
            if let Some(outcome) = self.core.on_result(result, now) {
                let markers =
                    convert::candidate_markers(&outcome, &self.arm, &self.params.base_frame);
                self.publish(1, t_ns, &markers)?;
            }
        }
        let tick = self.core.tick(now, false);
        let planned = tick.request.is_some();
        if let Some(request) = tick.request {
            let started = Instant::now();
            let outcome = plan_once(&mut self.planner, &request.observation);
            self.pending = Some(PlanResult {
                id: request.id,
                requested_secs: request.requested_secs,
                wall_secs: started.elapsed().as_secs_f64(),
                outcome,
            });
        }
        if let Some(points) = tick.command {
            let msg = convert::trajectory(&points, &self.order, tick.stamp_secs);
            self.publish(0, t_ns, &msg)?;
            self.ticks.published += 1;
        }
        Ok(planned)
    }

    fn diagnostics_tick(&mut self, t_ns: u64) -> Result<()> {
        let now = secs(t_ns);
        let reports = self.core.diagnostics(NODE_NAME, now, &self.ticks);
        let msg = convert::diagnostics(&reports, &self.hardware_id, now);
        self.publish(2, t_ns, &msg)
    }
}

/// Replays `input` through the node's behaviour with `params`; writes the output bag at `out`.
pub fn replay(
    input: &InputBag,
    params: &NodeParams,
    namespace: &str,
    settle_secs: f64,
    out: &Path,
) -> Result<ReplaySummary> {
    let wall = Instant::now();
    let (Some(first), Some(last)) = (input.messages.first(), input.messages.last()) else {
        return Err(Error::Invalid("the bag has no messages".into()));
    };
    let (start_ns, last_ns) = (first.log_time_ns, last.log_time_ns);
    let end_ns = last_ns + (settle_secs * 1e9).round() as u64;

    // Which bag topic is which input.
    let mut roles: Vec<Option<usize>> = Vec::with_capacity(input.topics.len());
    let mut summary = ReplaySummary::default();
    for topic in &input.topics {
        let role = INPUTS
            .iter()
            .position(|(name, _)| resolve(name, namespace) == topic.name);
        match role.and_then(|k| INPUTS.get(k)) {
            Some((_, type_name)) if *type_name != topic.type_name => {
                return Err(Error::Invalid(format!(
                    "topic `{}` has type {}, the node subscribes with {type_name}",
                    topic.name, topic.type_name
                )))
            }
            Some(_) => {}
            None => summary.other_topics.push(topic.name.clone()),
        }
        roles.push(role);
    }

    // The output bag: the inputs as recorded, then the node's topics.
    let mut writer = BagWriter::create(out)?;
    let copied: Vec<usize> = input
        .topics
        .iter()
        .map(|t| writer.add_topic(t.clone()))
        .collect::<Result<_>>()?;
    let mut node = OfflineNode::new(params, namespace, writer)?;

    let control_ns = period_ns(params.control_rate_hz);
    let diagnostics_ns = period_ns(params.diagnostics_rate_hz);
    let mut next_control = start_ns + control_ns;
    let mut next_diagnostics = start_ns + diagnostics_ns;
    let mut messages = input.messages.iter().peekable();
    loop {
        let tick_ns = next_control.min(next_diagnostics);
        // Messages up to the tick first: the node takes what arrived before its timer fires.
        while let Some(m) = messages.next_if(|m| m.log_time_ns <= tick_ns.min(end_ns)) {
            let topic = copied.get(m.topic).copied().unwrap_or(usize::MAX);
            node.writer.write(topic, m.log_time_ns, &m.data)?;
            let (Some(Some(role)), Some(name)) = (
                roles.get(m.topic),
                input.topics.get(m.topic).map(|t| &t.name),
            ) else {
                continue;
            };
            node.feed(*role, name, m.log_time_ns, &m.data)?;
            *summary.inputs.entry(name.clone()).or_default() += 1;
        }
        if tick_ns > end_ns {
            break;
        }
        if tick_ns == next_control {
            next_control += control_ns;
            summary.control_ticks += 1;
            summary.planning_calls += u64::from(node.control_tick(tick_ns)?);
        }
        if tick_ns == next_diagnostics {
            next_diagnostics += diagnostics_ns;
            node.diagnostics_tick(tick_ns)?;
        }
        for line in node.core.problems_mut().take_logs() {
            let at = secs(tick_ns - start_ns);
            match line.level {
                Level::Error => tracing::error!("[{at:.3} s] {}", line.text),
                Level::Warn => tracing::warn!("[{at:.3} s] {}", line.text),
                Level::Ok => tracing::info!("[{at:.3} s] {}", line.text),
            }
            summary.logs.push((at, line.level, line.text));
        }
    }
    summary.outputs = node.writer.counts();
    node.writer.finish(&input.custom_data)?;
    summary.bag_secs = secs(end_ns - start_ns);
    summary.wall_secs = wall.elapsed().as_secs_f64();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_resolve_as_rcl_does() {
        assert_eq!(resolve("joint_states", "/"), "/joint_states");
        assert_eq!(resolve("joint_states", "/a/b"), "/a/b/joint_states");
        assert_eq!(
            resolve("~/candidates", "/"),
            "/diffusion_planner/candidates"
        );
        assert_eq!(
            resolve("~/candidates", "/x/"),
            "/x/diffusion_planner/candidates"
        );
        assert_eq!(resolve("/diagnostics", "/x"), "/diagnostics");
    }

    #[test]
    fn parameters_default_to_the_synthetic_source_and_its_joints() {
        let args = |params: Option<PathBuf>, model: Option<PathBuf>| ReplayArgs {
            bag: "b".into(),
            out: "o".into(),
            model,
            params,
            namespace: "/".into(),
            settle_secs: 1.0,
        };
        let p = replay_params(&args(None, None)).unwrap();
        assert_eq!(p.model_path, PathBuf::from("synthetic"));
        assert_eq!(p.joints, ["shoulder", "elbow"]);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.yaml");
        std::fs::write(
            &file,
            "diffusion_planner:\n  ros__parameters:\n    model_path: models/x\n    \
             joints: [elbow, shoulder]\n    seed: 5\n",
        )
        .unwrap();
        let p = replay_params(&args(Some(file.clone()), Some("synthetic".into()))).unwrap();
        assert_eq!(
            (p.seed, p.joints.clone()),
            (5, vec!["elbow".into(), "shoulder".into()])
        );
        assert_eq!(p.model_path, PathBuf::from("synthetic"));
        let err = replay_params(&args(None, Some(dir.path().into())))
            .unwrap_err()
            .to_string();
        assert!(err.contains("model.yaml"), "{err}");
    }
}
