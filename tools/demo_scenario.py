"""Scenario driver of `scripts/demo`: plays the user of the diffusion_planner node and records.

    python demo_scenario.py --out DIR --model PATH|synthetic [--duration SECS] [--quick]
    python demo_scenario.py --sim-args     # the simulated arm's parameters, one token a line

Run with `$DP_ROS_PYTHON` (rclpy, rosbags) in the ROS environment of `scripts/ros-env.sh`,
while the node (`diffusion_planner`) and the simulated arm (`diffusion_planner_sim`) run in the
same ROS domain. It

- waits until both are up: the arm's `/joint_states`, the node's first trajectory, both
  nodes' `/diagnostics`, and both subscribed to the inputs it publishes;
- plays a sequence of phases: the obstacle glides to a new place while the arm rests (a
  `MarkerArray` with a DELETEALL and the current circles, several times a second), a mode
  request (a `left` mode of the model, later a `right` one; `elbow_up` / `elbow_down` for the
  synthetic source), then a goal; the next phase starts when the arm is at rest at the goal,
  or after a timeout;
- records every topic of the domain, as it appears, into a rosbag2 bag (MCAP, metadata
  version 9) `DIR/recording/` with `rosbags`, then reads the bag back to count its messages;
- writes the trace `DIR/trace.json` that `dplan demo-report` turns into the summary, plots
  and report (format: `src/demo/trace.rs`).

Exit status: 0 when the scenario ran (whatever the robot did; the report judges), 1 when it
could not (the node or the arm never came up, the recording failed).
"""

import argparse
import importlib
import json
import math
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import yaml

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from rclpy.signals import SignalHandlerOptions
from rosbags.highlevel import AnyReader
from rosbags.interfaces import (Qos, QosDurability, QosHistory, QosLiveliness, QosReliability,
                                QosTime)
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from visualization_msgs.msg import Marker, MarkerArray

ROOT = Path(__file__).resolve().parents[1]
TRACE_FORMAT_VERSION = 1
NODE_NAME = 'diffusion_planner'
SIM_NAME = 'diffusion_planner_sim'
CONTROLLER_TOPIC = '/joint_trajectory_controller/joint_trajectory'
SYNTHETIC = 'synthetic'
# The synthetic source's modes (docs/NODE.md) and the arm it is written for.
SYNTHETIC_MODES = ['elbow_up', 'elbow_down']
SYNTHETIC_ROBOT_FILE = ROOT / 'config' / 'data_planar_arm.yaml'
GOAL_TOLERANCE_M = 0.02
AT_REST_RAD_S = 1e-3
TRACE_PERIOD_S = 0.05
OBSTACLE_STEP_S = 0.2
DWELL_S = 0.6


def say(text):
    print(f'demo: {text}', flush=True)


# --- the scenario -----------------------------------------------------------------------------

class Phase:
    """Optionally glide the obstacle to `obstacle` (x, y, r), optionally request a mode
    (family `left`/`right`/`any` with an elbow preference), then send `goal`."""

    def __init__(self, goal, obstacle=None, mode=None, timeout_s=None):
        self.goal = goal
        self.obstacle = obstacle
        self.mode = mode
        self.timeout_s = timeout_s


# The reference arm starts at START_RAD (end effector at about (0.82, 0.13)). The obstacle
# blocks the straight joint-space motion to most goals (both elbow branches), so the arm has to
# go around it; it moves between goals, while the arm rests. Each mode request is feasible on
# the side it names (the trained model's `left_*` / `right_*`) with the elbow branch it names
# (the synthetic source's `elbow_*`). Chosen with a geometric search over the synthetic
# source's candidates (straight paths and shoulder-swing detours) with 3 cm clearance.
START_RAD = [-0.2, 0.8]
FULL = [
    Phase(goal=(-0.48, 0.19), obstacle=(0.51, 0.39, 0.08)),
    Phase(goal=(-0.14, 0.46)),
    Phase(goal=(0.83, -0.06), obstacle=(0.36, -0.23, 0.08), mode=('left', 'elbow_up')),
    Phase(goal=(-0.61, 0.29), obstacle=(0.08, -0.41, 0.08), mode=('right', 'elbow_down')),
    Phase(goal=(0.35, -0.12), mode=('any', None)),
    Phase(goal=(-0.28, -0.54), obstacle=(-0.65, -0.23, 0.08)),
]
QUICK = [
    Phase(goal=(-0.46, -0.01), obstacle=(-0.38, -0.24, 0.08)),
    Phase(goal=(0.55, -0.46), obstacle=(0.15, -0.45, 0.08), mode=('left', 'elbow_up')),
    Phase(goal=(-0.41, 0.12), mode=('right', 'elbow_down')),
]


def resolve_mode(spec, names):
    """The model's mode name for (family, elbow): `family_elbow` when the model has it, else
    its first `family*` mode, else the elbow alone (the synthetic source); `any` for none."""
    if spec is None:
        return None
    family, elbow = spec
    if family == 'any':
        return 'any'
    if elbow and f'{family}_{elbow}' in names:
        return f'{family}_{elbow}'
    for name in names:
        if name.startswith(family):
            return name
    if elbow in names:
        return elbow
    return None


# --- the robot --------------------------------------------------------------------------------

def load_model_info(model):
    """(robot description dict, mode names) of a model folder, or of the synthetic source."""
    if model == SYNTHETIC:
        robot = yaml.safe_load(SYNTHETIC_ROBOT_FILE.read_text())['robot']
        return robot, list(SYNTHETIC_MODES)
    spec = yaml.safe_load((Path(model) / 'model.yaml').read_text())
    return spec['robot'], list(spec.get('modes', {}).get('names', []))


class Arm:
    def __init__(self, robot):
        self.names = [j['name'] for j in robot['joints']]
        self.lengths = list(robot['link_lengths_m'])
        self.radius = float(robot['link_radius_m'])
        self.base = list(robot.get('base_position_m', [0.0, 0.0]))

    def points(self, q):
        x, y = self.base
        angle = 0.0
        out = [(x, y)]
        for qi, length in zip(q, self.lengths):
            angle += qi
            x += length * math.cos(angle)
            y += length * math.sin(angle)
            out.append((x, y))
        return out

    def end_effector(self, q):
        return self.points(q)[-1]

    def clearance(self, q, circles):
        """Smallest distance between the arm's capsules and the circles (inf without any)."""
        best = math.inf
        pts = self.points(q)
        for (cx, cy, r) in circles:
            for (ax, ay), (bx, by) in zip(pts, pts[1:]):
                dx, dy = bx - ax, by - ay
                s = max(0.0, min(1.0, ((cx - ax) * dx + (cy - ay) * dy) / (dx * dx + dy * dy)))
                best = min(best, math.hypot(ax + s * dx - cx, ay + s * dy - cy) - r - self.radius)
        return best


# --- recording --------------------------------------------------------------------------------

def message_class(msgtype):
    package, kind, name = msgtype.split('/')
    return getattr(importlib.import_module(f'{package}.{kind}'), name)


def duration_time(d):
    ns = d.nanoseconds
    return QosTime(sec=ns // 1_000_000_000, nsec=ns % 1_000_000_000)


def bag_qos(profile):
    """rclpy's QoSProfile as rosbags writes it into the metadata (rmw's enum values)."""
    return Qos(history=QosHistory(int(profile.history)), depth=int(profile.depth),
               reliability=QosReliability(int(profile.reliability)),
               durability=QosDurability(int(profile.durability)),
               deadline=duration_time(profile.deadline), lifespan=duration_time(profile.lifespan),
               liveliness=QosLiveliness(int(profile.liveliness)),
               liveliness_lease_duration=duration_time(profile.liveliness_lease_duration),
               avoid_ros_namespace_conventions=bool(profile.avoid_ros_namespace_conventions))


class Recorder:
    """Subscribes to every topic as it appears and writes the raw CDR messages into a bag."""

    def __init__(self, node, path):
        self.node = node
        self.path = path
        self.typestore = get_typestore(Stores.ROS2_JAZZY)
        self.writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
        self.writer.open()
        self.topics = {}
        self.skipped = {}
        self.handlers = {}
        self.closed = False

    def on(self, topic, msg_class, handler):
        """Calls `handler(message)` for every message of `topic` (deserialised)."""
        self.handlers[topic] = (msg_class, handler)

    def discover(self):
        for topic, types in self.node.get_topic_names_and_types():
            if topic in self.topics or topic in self.skipped or not types:
                continue
            msgtype = types[0]
            try:
                cls = message_class(msgtype)
            except (ImportError, AttributeError, ValueError) as e:
                self.skipped[topic] = f'{msgtype}: no Python type ({e})'
                continue
            if msgtype not in self.typestore.types:
                self.skipped[topic] = f'{msgtype}: not in the rosbags Jazzy typestore'
                continue
            publishers = self.node.get_publishers_info_by_topic(topic)
            if not publishers:
                continue
            offered = [bag_qos(p.qos_profile) for p in publishers]
            # Like rosbag2: reliable when every publisher is (else best effort, which matches
            # both), transient local when every publisher is.
            reliable = all(p.qos_profile.reliability == ReliabilityPolicy.RELIABLE
                           for p in publishers)
            latched = all(p.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL
                          for p in publishers)
            qos = QoSProfile(
                depth=200,
                reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
                durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)
            connection = self.writer.add_connection(topic, msgtype, typestore=self.typestore,
                                                    offered_qos_profiles=offered)
            handler = self.handlers.get(topic)
            self.topics[topic] = {'msgtype': msgtype, 'messages': 0}
            self.node.create_subscription(
                cls, topic, lambda raw, t=topic, c=connection, h=handler: self.write(t, c, h, raw),
                qos, raw=True)

    def write(self, topic, connection, handler, raw):
        if self.closed:
            return
        self.writer.write(connection, time.time_ns(), bytes(raw))
        self.topics[topic]['messages'] += 1
        if handler is not None:
            cls, fn = handler
            fn(deserialize_message(raw, cls))

    def close(self):
        self.closed = True
        self.writer.close()

    def read_back(self):
        """Messages per topic as the bag holds them (proves it is readable)."""
        counts = {}
        with AnyReader([self.path]) as reader:
            for connection in reader.connections:
                counts.setdefault(connection.topic, {'msgtype': connection.msgtype,
                                                     'messages': 0})
            for connection, _, _ in reader.messages():
                counts[connection.topic]['messages'] += 1
        return counts


# --- the driver -------------------------------------------------------------------------------

def number(text):
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def integer(text):
    value = number(text)
    return int(value) if value is not None else 0


class Driver:
    def __init__(self, args):
        self.args = args
        self.robot, self.mode_names = load_model_info(args.model)
        self.arm = Arm(self.robot)
        self.node = rclpy.create_node('demo_scenario')
        self.out = Path(args.out)
        bag = self.out / 'recording'
        if bag.exists():
            shutil.rmtree(bag)
        self.recorder = Recorder(self.node, bag)
        self.recorder.on('/joint_states', JointState, self.on_joint_states)
        self.recorder.on('/diagnostics', DiagnosticArray, self.on_diagnostics)
        self.recorder.on(CONTROLLER_TOPIC, message_class('trajectory_msgs/msg/JointTrajectory'),
                         self.on_trajectory)
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.goal_pub = self.node.create_publisher(PoseStamped, '/goal', qos)
        self.obstacle_pub = self.node.create_publisher(MarkerArray, '/obstacles', qos)
        self.mode_pub = self.node.create_publisher(String, '/mode_request', qos)
        self.t0 = time.monotonic()
        self.q = None
        self.v = None
        self.trajectories = 0
        self.node_seen = False
        self.sim_seen = False
        self.circles = []
        self.trace = {
            'format_version': TRACE_FORMAT_VERSION, 'model': args.model,
            'mode_names': self.mode_names, 'robot': self.robot, 'duration_s': 0.0,
            'goals': [], 'obstacles': [], 'mode_requests': [],
            'joint_states': {'names': self.arm.names, 't_s': [], 'positions_rad': []},
            'planning': [], 'node': None, 'sim': None, 'recording': None,
            'node_parameters': dict(p.split('=', 1) for p in args.node_param), 'notes': []}
        self.last_trace_t = -math.inf
        self.mode = 'any'

    def now(self):
        return time.monotonic() - self.t0

    def note(self, text):
        say(text)
        self.trace['notes'].append(text)

    # --- callbacks ---
    def on_joint_states(self, msg):
        index = {n: i for i, n in enumerate(msg.name)}
        if not all(n in index for n in self.arm.names) or len(msg.position) != len(msg.name):
            return
        self.q = [float(msg.position[index[n]]) for n in self.arm.names]
        if len(msg.velocity) == len(msg.name):
            self.v = [float(msg.velocity[index[n]]) for n in self.arm.names]
        t = self.now()
        if t - self.last_trace_t >= TRACE_PERIOD_S:
            self.last_trace_t = t
            self.trace['joint_states']['t_s'].append(round(t, 4))
            self.trace['joint_states']['positions_rad'].append([round(x, 6) for x in self.q])

    def on_trajectory(self, _msg):
        self.trajectories += 1

    def on_diagnostics(self, msg):
        t = round(self.now(), 4)
        for status in msg.status:
            who, _, area = status.name.rpartition(': ')
            who = who.rsplit('/', 1)[-1]
            values = {kv.key: kv.value for kv in status.values}
            level = status.level if isinstance(status.level, int) else int.from_bytes(
                status.level, 'little')
            if who == NODE_NAME:
                self.node_seen = True
                if area == 'planning':
                    self.on_planning(t, level, status.message, values)
                elif area == 'executor':
                    self.control_rate_hz = number(values.get('control_rate_hz_measured'))
            elif who == SIM_NAME and area == 'arm':
                self.sim_seen = True
                self.trace['sim'] = {
                    'collisions': integer(values.get('collisions')),
                    'trajectories_accepted': integer(values.get('trajectories_accepted')),
                    'trajectories_rejected': integer(values.get('trajectories_rejected')),
                    'min_clearance_m': number(values.get('min_clearance_m')),
                    'max_tracking_error_rad': number(values.get('max_tracking_error_rad')),
                }
                self.sim_status_t = t

    def on_planning(self, t, level, message, values):
        outcomes = integer(values.get('outcomes'))
        failed = integer(values.get('failed_calls'))
        label = values.get('chosen_mode_label')
        requested = values.get('requested_mode')
        self.trace['planning'].append({
            't_s': t, 'calls': outcomes + failed, 'latency_ms': number(values.get('latency_ms_last')),
            'chosen_mode_label': label if label not in (None, '') else None,
            'requested_mode': requested if requested not in (None, '') else None,
            'level': level, 'message': message})
        self.trace['node'] = {
            'outcomes': outcomes, 'failed_calls': failed,
            'no_valid_candidate': integer(values.get('no_valid_candidate')),
            'late_plans': integer(values.get('late_plans')),
            'latency_ms_p50': number(values.get('latency_ms_p50')),
            'latency_ms_max': number(values.get('latency_ms_max')),
            'control_rate_hz': getattr(self, 'control_rate_hz', None)}

    # --- spinning ---
    def spin(self, seconds, until=None):
        deadline = time.monotonic() + seconds
        next_discovery = 0.0
        while time.monotonic() < deadline:
            if time.monotonic() >= next_discovery:
                self.recorder.discover()
                next_discovery = time.monotonic() + 0.5
            rclpy.spin_once(self.node, timeout_sec=0.01)
            if until is not None and until():
                return True
        return until is None

    def subscribed(self, topic, names):
        nodes = {i.node_name for i in self.node.get_subscriptions_info_by_topic(topic)}
        return all(n in nodes for n in names)

    def wait_ready(self, timeout_s):
        """Until the arm and the node run and listen (messages, not sleeps)."""
        say('waiting for the simulated arm and the node')
        ok = self.spin(timeout_s, until=lambda: (
            self.q is not None and self.trajectories > 0 and self.node_seen and self.sim_seen
            and self.subscribed('/goal', [NODE_NAME, SIM_NAME])
            and self.subscribed('/obstacles', [NODE_NAME, SIM_NAME])
            and self.subscribed('/mode_request', [NODE_NAME])))
        if not ok:
            missing = [what for what, seen in [
                ('/joint_states from the arm', self.q is not None),
                (f'a trajectory on {CONTROLLER_TOPIC}', self.trajectories > 0),
                ('the node\'s /diagnostics', self.node_seen),
                ('the arm\'s /diagnostics', self.sim_seen)] if not seen]
            say(f'not ready after {timeout_s:.0f} s; missing: {", ".join(missing) or "subscribers"}')
        return ok

    # --- inputs ---
    def publish_obstacles(self, circles):
        markers = [Marker(action=Marker.DELETEALL)]
        for i, (x, y, r) in enumerate(circles):
            m = Marker()
            m.header.frame_id = 'base_link'
            m.ns = 'demo_obstacles'
            m.id = i
            m.type = Marker.CYLINDER
            m.action = Marker.ADD
            m.pose.position.x, m.pose.position.y = float(x), float(y)
            m.pose.orientation.w = 1.0
            m.scale.x = m.scale.y = 2.0 * r
            m.scale.z = 0.3
            m.color.r, m.color.g, m.color.b, m.color.a = 0.8, 0.3, 0.3, 0.8
            markers.append(m)
        self.obstacle_pub.publish(MarkerArray(markers=markers))
        self.circles = [tuple(c) for c in circles]
        self.trace['obstacles'].append({
            't_s': round(self.now(), 4),
            'circles': [{'center_m': [x, y], 'radius_m': r} for (x, y, r) in circles]})

    def glide(self, target, seconds=1.6):
        """Moves the obstacle to `target` in steps while the arm rests; a step that would
        come closer than 5 cm to the arm is not taken (the glide ends there)."""
        if not self.circles:
            self.publish_obstacles([target])
            self.spin(OBSTACLE_STEP_S)
            return
        start = self.circles[0]
        steps = max(1, round(seconds / OBSTACLE_STEP_S))
        for k in range(1, steps + 1):
            u = k / steps
            circle = tuple(a + u * (b - a) for a, b in zip(start, target))
            if self.q is not None and self.arm.clearance(self.q, [circle]) < 0.05:
                self.note(f'obstacle glide stopped at {circle[:2]}: too close to the arm')
                break
            self.publish_obstacles([circle])
            self.spin(OBSTACLE_STEP_S)

    def request_mode(self, mode):
        self.mode_pub.publish(String(data=mode))
        self.mode = mode
        self.trace['mode_requests'].append({'t_s': round(self.now(), 4), 'mode': mode})

    def send_goal(self, name, goal, timeout_s):
        msg = PoseStamped()
        msg.header.frame_id = 'base_link'
        msg.header.stamp = self.node.get_clock().now().to_msg()
        msg.pose.position.x, msg.pose.position.y = float(goal[0]), float(goal[1])
        msg.pose.orientation.w = 1.0
        self.goal_pub.publish(msg)
        event = {'name': name, 't_s': round(self.now(), 4), 'goal_m': list(goal),
                 'mode': self.mode, 'reached_t_s': None, 'timeout_s': round(timeout_s, 2)}
        self.trace['goals'].append(event)
        return event

    def at(self, goal):
        if self.q is None or self.v is None:
            return False
        x, y = self.arm.end_effector(self.q)
        return (math.hypot(x - goal[0], y - goal[1]) <= GOAL_TOLERANCE_M + 1e-3
                and all(abs(v) < AT_REST_RAD_S for v in self.v))

    # --- the scenario ---
    def run(self, phases):
        budget = self.args.duration
        default_timeout = 8.0 if self.args.model == SYNTHETIC else 15.0
        for i, phase in enumerate(phases):
            left = budget - self.now()
            if left < 3.0:
                self.note(f'time budget of {budget:.0f} s used up: phases {i + 1} to '
                          f'{len(phases)} skipped')
                break
            if phase.obstacle is not None:
                self.glide(phase.obstacle)
            if phase.mode is not None:
                mode = resolve_mode(phase.mode, self.mode_names)
                if mode is None:
                    self.note(f'phase {i + 1}: the model has no mode for {phase.mode}')
                elif mode != self.mode:
                    self.request_mode(mode)
            timeout = min(phase.timeout_s or default_timeout, max(3.0, budget - self.now()))
            name = f'g{i + 1}'
            event = self.send_goal(name, phase.goal, timeout)
            say(f'{name} -> ({phase.goal[0]:.2f}, {phase.goal[1]:.2f}) m, mode {self.mode}')
            if self.spin(timeout, until=lambda: self.at(phase.goal)):
                event['reached_t_s'] = round(self.now(), 4)
                say(f'{name} reached after {event["reached_t_s"] - event["t_s"]:.1f} s')
                self.spin(DWELL_S)
            else:
                say(f'{name} not reached within {timeout:.0f} s')
        if self.mode != 'any':
            self.request_mode('any')
        # The last counters: one more status of each after the scenario.
        end = self.now()
        self.spin(3.0, until=lambda: getattr(self, 'sim_status_t', -1.0) > end
                  and self.trace['planning'] and self.trace['planning'][-1]['t_s'] > end)

    def finish(self):
        self.trace['duration_s'] = round(self.now(), 3)
        self.recorder.close()
        topics = self.recorder.read_back()
        self.trace['recording'] = {'path': 'recording', 'storage': 'mcap', 'topics': topics}
        for topic, why in sorted(self.recorder.skipped.items()):
            self.note(f'not recorded: {topic} ({why})')
        path = self.out / 'trace.json'
        path.write_text(json.dumps(self.trace, indent=1) + '\n')
        say(f'trace {path}, recording {self.out / "recording"} '
            f'({sum(t["messages"] for t in topics.values())} messages, {len(topics)} topics)')


def sim_args(model):
    """The simulated arm's ROS arguments for this scenario (its start; scripts/demo adds
    model_path): `-p` and `key:=value` on lines of their own."""
    joints = ', '.join(Arm(load_model_info(model)[0]).names)
    start = ', '.join(str(x) for x in START_RAD)
    for param in [f'joints:=[{joints}]', f'initial_positions:=[{start}]',
                  'diagnostics_rate_hz:=5.0', f'goal_tolerance_m:={GOAL_TOLERANCE_M}']:
        print('-p')
        print(param)


def interrupt(signum, _frame):
    raise KeyboardInterrupt(f'signal {signum}')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sim-args', action='store_true',
                        help='print the simulated arm\'s parameters for this scenario and exit')
    parser.add_argument('--out', help='output folder (trace.json, recording/)')
    parser.add_argument('--model', help='the node\'s model_path, or synthetic')
    parser.add_argument('--duration', type=float, default=50.0,
                        help='time budget of the scenario, seconds')
    parser.add_argument('--quick', action='store_true', help='the short scenario (3 goals)')
    parser.add_argument('--node-param', action='append', default=[], metavar='KEY=VALUE',
                        help='a parameter the node was started with, for the report (repeat)')
    parser.add_argument('--ready-timeout', type=float, default=90.0,
                        help='how long to wait for the node and the arm, seconds')
    args = parser.parse_args()
    if args.sim_args:
        sim_args(args.model or SYNTHETIC)
        return 0
    if not args.out or not args.model:
        parser.error('--out and --model are required')
    Path(args.out).mkdir(parents=True, exist_ok=True)
    # Our own handlers: SIGINT (also when started in the background, where it is ignored by
    # default) and SIGTERM end the scenario; the recording and the trace are still written.
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    driver = Driver(args)
    status = 0
    try:
        if driver.wait_ready(args.ready_timeout):
            driver.t0 = time.monotonic()
            driver.last_trace_t = -math.inf
            driver.trace['joint_states']['t_s'].clear()
            driver.trace['joint_states']['positions_rad'].clear()
            driver.trace['planning'].clear()
            driver.run(QUICK if args.quick else FULL)
        else:
            status = 1
    except KeyboardInterrupt:
        driver.note('interrupted')
        status = 1
    finally:
        try:
            driver.finish()
        except Exception as e:  # the report says what is missing; the exit status fails
            say(f'could not finish the recording: {e!r}')
            status = 1
        driver.node.destroy_node()
        rclpy.try_shutdown()
    return status


if __name__ == '__main__':
    sys.exit(main())
