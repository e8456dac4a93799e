#!/usr/bin/env python3
"""rosbag2 bags (MCAP, zstd chunks, metadata version 9) of the node's inputs, for replay tests.

Run with the ROS 2 environment's Python (rosbags and numpy are pinned in
scripts/ros-requirements.txt):

    source scripts/ros-env.sh && "$DP_ROS_PYTHON" tools/make_bags.py [--out tests/data]

Writes one bag directory per scenario (`<out>/<name>/metadata.yaml` + `<name>.mcap`) with the
topics the node subscribes to, as `ros2 bag record` would store them with the node in the root
namespace: `/joint_states` (sensor_msgs/msg/JointState, 100 Hz), `/goal`
(geometry_msgs/msg/PoseStamped), `/obstacles` (visualization_msgs/msg/MarkerArray, 1 Hz, the
whole set each time: DELETEALL, then the circles as CYLINDERs) and `/mode_request`
(std_msgs/msg/String). Bag time starts at BAG_START_NS; the replay publishes it as `/clock`.

Scenarios (seeded, deterministic: the same command writes the same messages):
- `reach`: a fixed obstacle and goals in sequence, drawn with a seeded generator.
- `modes`: goals with mode requests `elbow_up`, `elbow_down`, `any` (the mode names of
  `model_path: synthetic`, src/ros/geometric_source.rs).
- `bad_input`: a goal in another frame, a NaN goal, a goal out of reach and one inside an
  obstacle; obstacles covering the robot, in another frame and with a negative size; an unknown
  mode; joint states with mismatched arrays, NaN positions, an unknown joint, and a gap; then a
  good goal that is reached.

The recorded joint states come from a simple closed-loop model of the arm (not from the
planner, so the bags do not depend on it): after each valid goal (and a reaction time), the
joints move along the straight joint-space line to the goal's inverse-kinematics solution on the
requested elbow branch (for `any`: the branch closer in joint space whose line is free), under
a velocity command limited by the braking curve sqrt(2 a d) and the velocity limit,
acceleration-limited and integrated at 100 Hz; the line is checked collision-free against the
obstacles (capsule links) with a margin. So "the goal is reached" is checkable: the recorded
states arrive at every valid goal and rest there until the next one.

Each bag's metadata (`custom_data: diffusion_planner/scenario`) holds a JSON description the
tests read: the robot, the goals (time, position, requested mode, expected elbow branch, when the
recorded states arrive) and, for `bad_input`, each bad input with the diagnostics it must cause.
"""

import argparse
import json
import math
import pathlib
import shutil

import numpy as np
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability
from rosbags.interfaces import QosTime
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

TS = get_typestore(Stores.ROS2_JAZZY)
JointState = TS.types['sensor_msgs/msg/JointState']
PoseStamped = TS.types['geometry_msgs/msg/PoseStamped']
MarkerArray = TS.types['visualization_msgs/msg/MarkerArray']
Marker = TS.types['visualization_msgs/msg/Marker']
String = TS.types['std_msgs/msg/String']
Header = TS.types['std_msgs/msg/Header']
Time = TS.types['builtin_interfaces/msg/Time']
Duration = TS.types['builtin_interfaces/msg/Duration']
Pose = TS.types['geometry_msgs/msg/Pose']
Point = TS.types['geometry_msgs/msg/Point']
Quaternion = TS.types['geometry_msgs/msg/Quaternion']
Vector3 = TS.types['geometry_msgs/msg/Vector3']
ColorRGBA = TS.types['std_msgs/msg/ColorRGBA']
CompressedImage = TS.types['sensor_msgs/msg/CompressedImage']
MeshFile = TS.types['visualization_msgs/msg/MeshFile']

BAG_START_NS = 1_700_000_000 * 10**9
STATE_PERIOD_S = 0.01
OBSTACLE_PERIOD_S = 1.0
FRAME = 'base_link'
SCENARIO_KEY = 'diffusion_planner/scenario'

# The reference arm (RobotDescription::planar_2link, config/planar_arm.yaml).
JOINTS = ['shoulder', 'elbow']
LINKS_M = [0.5, 0.4]
LINK_RADIUS_M = 0.03
LIMITS_RAD = [math.pi, 2.8]
GOAL_TOLERANCE_M = 0.02
# The recorded robot: the arm's limits (as the node's plans use them) and a short reaction time,
# so that it arrives about when the node's plan ends. (A robot that lags its plan by more than
# the replan period meets a limitation of the node with mode requests: see docs/REPLAY.md.)
MAX_VELOCITY_RAD_S = 1.5
MAX_ACCELERATION_RAD_S2 = 3.0
REACTION_S = 0.1
# Clearance the recorded motion keeps from every obstacle (beyond the link radius), metres.
MARGIN_M = 0.03
# Measurement noise of the recorded positions (seeded), radians.
NOISE_RAD = 1e-4
START_RAD = [-0.3, 0.6]

RELIABLE = Qos(QosHistory.KEEP_LAST, 10, QosReliability.RELIABLE, QosDurability.VOLATILE,
               QosTime(0, 0), QosTime(0, 0), QosLiveliness.AUTOMATIC, QosTime(0, 0), False)


# --- geometry ----------------------------------------------------------------------------------
def fk_points(q):
    x, y, angle = 0.0, 0.0, 0.0
    points = [(x, y)]
    for qi, length in zip(q, LINKS_M):
        angle += qi
        x += length * math.cos(angle)
        y += length * math.sin(angle)
        points.append((x, y))
    return points


def end_effector(q):
    return fk_points(q)[-1]


def clearance_m(q, circles):
    """Smallest distance between a link capsule and a circle (negative: collision)."""
    points = fk_points(q)
    best = math.inf
    for (cx, cy, r) in circles:
        for (ax, ay), (bx, by) in zip(points, points[1:]):
            dx, dy = bx - ax, by - ay
            s = max(0.0, min(1.0, ((cx - ax) * dx + (cy - ay) * dy) / (dx * dx + dy * dy)))
            best = min(best, math.hypot(ax + s * dx - cx, ay + s * dy - cy) - r - LINK_RADIUS_M)
    return best


def ik(goal, branch):
    """Joint positions reaching `goal` on `branch` ('elbow_up': elbow < 0), or None."""
    x, y = goal
    l1, l2 = LINKS_M
    c = (x * x + y * y - l1 * l1 - l2 * l2) / (2 * l1 * l2)
    if not -1.0 <= c <= 1.0:
        return None
    elbow = math.acos(c) * (-1.0 if branch == 'elbow_up' else 1.0)
    shoulder = math.atan2(y, x) - math.atan2(l2 * math.sin(elbow), l1 + l2 * math.cos(elbow))
    shoulder = math.atan2(math.sin(shoulder), math.cos(shoulder))
    q = [shoulder, elbow]
    if any(abs(v) > lim for v, lim in zip(q, LIMITS_RAD)):
        return None
    return q


def branch_of(q):
    return 'elbow_up' if q[1] < 0.0 else 'elbow_down'


def line_clearance_m(a, b, circles):
    steps = 200
    return min(clearance_m([a[j] + (b[j] - a[j]) * k / steps for j in range(2)], circles)
               for k in range(steps + 1))


def choose_target(q, goal, mode, circles):
    """The configuration the recorded robot moves to: IK on the requested branch (any: the
    nearer free one) whose straight joint-space line keeps MARGIN_M; None if there is none."""
    branches = ['elbow_up', 'elbow_down'] if mode == 'any' else [mode]
    options = []
    for branch in branches:
        target = ik(goal, branch)
        if target is None or line_clearance_m(q, target, circles) < MARGIN_M:
            continue
        options.append((max(abs(t - s) for t, s in zip(target, q)), branch, target))
    return min(options)[2] if options else None


# --- the recorded robot ------------------------------------------------------------------------
class Robot:
    """Closed loop along the straight line to the target: speed command min(v_max,
    sqrt(2 a (remaining))) along the line, acceleration-limited, integrated each period."""

    def __init__(self, q):
        self.q = list(q)
        self.v = [0.0, 0.0]
        self.target = None
        self.start = None
        self.speed = 0.0  # along the line, in units of the largest joint's rad/s
        self.move_at = math.inf

    def command(self, target, at):
        self.start = list(self.q)
        self.target = list(target)
        self.move_at = at
        self.speed = 0.0

    def step(self, t, dt):
        if self.target is None or t < self.move_at:
            self.v = [0.0, 0.0]
            return
        delta = [b - a for a, b in zip(self.start, self.target)]
        length = max(abs(d) for d in delta)
        done = max(abs(q - s) for q, s in zip(self.q, self.start))
        remaining = max(0.0, length - done)
        if length == 0.0 or remaining < 1e-9:
            self.q, self.v, self.target = list(self.target), [0.0, 0.0], None
            return
        wanted = min(MAX_VELOCITY_RAD_S, math.sqrt(2.0 * MAX_ACCELERATION_RAD_S2 * remaining))
        change = max(-MAX_ACCELERATION_RAD_S2 * dt, min(MAX_ACCELERATION_RAD_S2 * dt,
                                                        wanted - self.speed))
        self.speed = max(0.0, self.speed + change)
        advance = min(self.speed * dt, remaining)
        if remaining - advance < 1e-6:
            self.q, self.v, self.target = list(self.target), [0.0, 0.0], None
            return
        self.q = [q + d / length * advance for q, d in zip(self.q, delta)]
        self.v = [d / length * self.speed for d in delta]


# --- messages ----------------------------------------------------------------------------------
def stamp(t_ns):
    return Time(sec=t_ns // 10**9, nanosec=t_ns % 10**9)


def header(t_ns, frame=''):
    return Header(stamp=stamp(t_ns), frame_id=frame)


def joint_state(t_ns, names, positions, velocities=()):
    return JointState(header=header(t_ns), name=list(names),
                      position=np.array(positions, dtype=np.float64),
                      velocity=np.array(velocities, dtype=np.float64),
                      effort=np.array([], dtype=np.float64))


def goal_msg(t_ns, xy, frame=FRAME):
    return PoseStamped(header=header(t_ns, frame), pose=Pose(
        position=Point(x=float(xy[0]), y=float(xy[1]), z=0.0),
        orientation=Quaternion(x=0.0, y=0.0, z=0.0, w=1.0)))


def marker(t_ns, frame, ns, mid, kind, action, xyr=(0.0, 0.0, 0.0), size=None):
    x, y, r = xyr
    d = 2.0 * r if size is None else size
    return Marker(
        header=header(t_ns, frame), ns=ns, id=mid, type=kind, action=action,
        pose=Pose(position=Point(x=float(x), y=float(y), z=0.0),
                  orientation=Quaternion(x=0.0, y=0.0, z=0.0, w=1.0)),
        scale=Vector3(x=d, y=d, z=0.5), color=ColorRGBA(r=0.8, g=0.2, b=0.2, a=1.0),
        lifetime=Duration(sec=0, nanosec=0), frame_locked=False, points=[], colors=[],
        texture_resource='',
        texture=CompressedImage(header=header(0), format='', data=np.array([], dtype=np.uint8)),
        uv_coordinates=[], text='', mesh_resource='',
        mesh_file=MeshFile(filename='', data=np.array([], dtype=np.uint8)),
        mesh_use_embedded_materials=False)


def obstacles_msg(t_ns, circles, frame=FRAME, size=None):
    """The whole set: DELETEALL (namespace `obstacles`), then one CYLINDER per circle."""
    markers = [marker(t_ns, frame, 'obstacles', 0, Marker.CYLINDER, Marker.DELETEALL)]
    for i, c in enumerate(circles):
        markers.append(marker(t_ns, frame, 'obstacles', i, Marker.CYLINDER, Marker.ADD, c, size))
    return MarkerArray(markers=markers)


# --- scenarios ---------------------------------------------------------------------------------
class Scenario:
    """Collects timed messages and the description the tests read."""

    def __init__(self, name, seed, duration_s):
        self.name = name
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.duration_s = duration_s
        self.messages = []  # (t_ns, topic, msgtype, msg)
        self.goals = []
        self.events = []
        # (t_s, circles, frame, size, valid): the set published from t_s on.
        self.obstacle_schedule = []
        self.robot = Robot(START_RAD)
        self.valid_circles = []
        self.mode = 'any'
        self.pending = []  # (t_s, target): commands for the recorded robot
        self.sim_t = 0.0
        self.states = []  # (t_s, q, v)

    def at(self, t_s):
        return BAG_START_NS + round(t_s * 1e9)

    def add(self, t_s, topic, msg):
        self.messages.append((self.at(t_s), topic, msg.__msgtype__, msg))

    def set_obstacles(self, t_s, circles, frame=FRAME, size=None, valid=True):
        self.obstacle_schedule.append((t_s, [tuple(c) for c in circles], frame, size, valid))
        if valid:
            self.valid_circles = [tuple(c) for c in circles]

    def goal(self, t_s, xy, mode='any', frame=FRAME, follow=True):
        """A goal, followed at the same time by a mode request when `mode` differs from the
        current one (a mode request alone, at the old goal, would leave the node without a
        labelled candidate: docs/NODE.md, limitations). `follow`: the recorded robot moves
        there."""
        self.add(t_s, '/goal', goal_msg(self.at(t_s), xy, frame))
        if mode != self.mode:
            self.add(t_s, '/mode_request', String(data=mode))
            self.mode = mode
        if follow:
            self.follow(t_s, xy)

    def follow(self, t_s, xy):
        """The recorded robot goes to `xy` (in the current mode) from `t_s` on: one entry of the
        goal list the tests check."""
        target = choose_target(self.robot_q_at(t_s), xy, self.mode, self.valid_circles)
        if target is None:
            raise ValueError(f'{self.name}: no free straight line to {xy} ({self.mode})')
        self.pending.append((t_s + REACTION_S, target))
        self.goals.append({'t': t_s, 'goal_m': list(xy), 'mode': self.mode,
                           'branch': branch_of(target), 'target_rad': target})

    def event(self, t_s, what, text, hold=None, area='inputs', level=2):
        """A bad input at `t_s`: the diagnostics status `area` must show `text` at `level` or
        above within a few seconds; `hold` = (from, until): the node stops then (braking first
        if it moves) and holds at one position."""
        self.events.append({'t': t_s, 'what': what, 'area': area, 'level': level,
                            'text': text, 'hold': list(hold) if hold else None})

    def robot_q_at(self, t_s):
        """The recorded robot's joints at `t_s` (it is simulated as far as the scenario has been
        written, so each goal's target is chosen from where the robot is then)."""
        self.simulate_until(t_s)
        return list(self.robot.q)

    def simulate_until(self, t_s):
        while self.sim_t <= t_s + 1e-9:
            t = self.sim_t
            for (at, target) in list(self.pending):
                if at <= t + 1e-9:
                    self.robot.command(target, at)
                    self.pending.remove((at, target))
            self.robot.step(t, STATE_PERIOD_S)
            self.states.append((t, list(self.robot.q), list(self.robot.v)))
            self.sim_t = round(self.sim_t + STATE_PERIOD_S, 9)

    def render(self, state_override=None):
        """Joint states (with `state_override(t, q, v)` -> list of (names, positions,
        velocities) or None for the normal message) and the periodic obstacle messages."""
        self.simulate_until(self.duration_s)
        for (t, q, v) in self.states:
            if t > self.duration_s:
                break
            noisy = [x + float(self.rng.normal(0.0, NOISE_RAD)) for x in q]
            out = state_override(t, noisy, v) if state_override else None
            for names, positions, velocities in (out if out is not None
                                                  else [(JOINTS, noisy, v)]):
                self.add(t, '/joint_states', joint_state(self.at(t), names, positions, velocities))
            self.check_clearance(t, q)
        schedule = sorted(self.obstacle_schedule, key=lambda e: e[0])
        for i, (t0, circles, frame, size, _) in enumerate(schedule):
            t1 = schedule[i + 1][0] if i + 1 < len(schedule) else self.duration_s + 1e-9
            t = t0
            while t < t1 and t <= self.duration_s:
                self.add(t, '/obstacles', obstacles_msg(self.at(t), circles, frame, size))
                t = round(t + OBSTACLE_PERIOD_S, 9)
        for g in self.goals:
            g['arrive_t'] = next((round(t, 3) for (t, q, _) in self.states if t >= g['t']
                                  and max(abs(a - b) for a, b in zip(q, g['target_rad'])) < 1e-9),
                                 None)
            if g['arrive_t'] is None:
                raise ValueError(f'{self.name}: the recorded robot never arrives at {g}')
        self.messages.sort(key=lambda m: m[0])

    def check_clearance(self, t, q):
        circles = self.valid_circles_at(t)
        if circles and clearance_m(q, circles) < 0.0:
            raise ValueError(f'{self.name}: recorded robot collides at {t:.2f} s ({q})')

    def valid_circles_at(self, t):
        current = []
        for (t0, circles, _, _, valid) in sorted(self.obstacle_schedule, key=lambda e: e[0]):
            if t0 <= t and valid:
                current = circles
        return current

    def description(self):
        return {
            'name': self.name, 'seed': self.seed, 'duration_s': self.duration_s,
            'bag_start_ns': BAG_START_NS, 'joints': JOINTS, 'link_lengths_m': LINKS_M,
            'link_radius_m': LINK_RADIUS_M, 'goal_tolerance_m': GOAL_TOLERANCE_M,
            'base_frame': FRAME,
            'obstacles': [{'t': t, 'circles': [list(c) for c in circles], 'frame': frame,
                           'size': size, 'valid': valid}
                          for (t, circles, frame, size, valid) in self.obstacle_schedule],
            'goals': self.goals, 'events': self.events,
        }


def random_goal(s, q, circles, mode='any', min_move_m=0.25):
    """A reachable goal away from the obstacles, at least `min_move_m` from the end effector,
    with a free straight joint-space line from `q` on the wanted branch."""
    for _ in range(1000):
        radius = s.rng.uniform(0.35, 0.8)
        angle = s.rng.uniform(-0.8 * math.pi, 0.8 * math.pi)
        xy = (round(radius * math.cos(angle), 3), round(radius * math.sin(angle), 3))
        ex, ey = end_effector(q)
        if math.hypot(xy[0] - ex, xy[1] - ey) < min_move_m:
            continue
        if any(math.hypot(xy[0] - cx, xy[1] - cy) < r + 0.12 for (cx, cy, r) in circles):
            continue
        if choose_target(q, xy, mode, circles) is not None:
            return xy
    raise ValueError('no goal found')


def scenario_reach(seed):
    s = Scenario('reach', seed, 45.0)
    obstacle = (0.45, 0.35, 0.08)
    s.set_obstacles(0.2, [obstacle])
    for k in range(6):
        t = 1.0 + 7.0 * k
        s.goal(t, random_goal(s, s.robot_q_at(t), [obstacle]))
    s.render()
    return s


def scenario_modes(seed):
    s = Scenario('modes', seed, 29.0)
    obstacle = (0.05, 0.6, 0.08)
    s.set_obstacles(0.2, [obstacle])
    for k, mode in enumerate(['any', 'elbow_up', 'elbow_down', 'any']):
        t = 1.0 + 7.0 * k
        s.goal(t, random_goal(s, s.robot_q_at(t), [obstacle], mode), mode)
    s.render()
    return s


def scenario_bad_input(seed):
    s = Scenario('bad_input', seed, 45.0)
    obstacle = (0.45, -0.5, 0.08)
    s.set_obstacles(0.2, [obstacle])
    s.goal(1.0, (0.3, 0.6), frame='map', follow=False)
    s.event(1.0, 'goal in another frame', 'frame `map`', hold=(1.1, 2.9))
    s.goal(3.0, (math.nan, 0.6), follow=False)
    s.event(3.0, 'NaN goal', 'not finite', hold=(3.1, 4.9))
    s.goal(5.0, (2.0, 0.0), follow=False)
    s.event(5.0, 'goal out of reach', 'outside the reachable workspace', hold=(5.1, 6.9))
    s.goal(7.0, (obstacle[0], obstacle[1]), follow=False)
    s.event(7.0, 'goal inside an obstacle', 'inside obstacles', hold=(7.1, 8.9))
    # An obstacle on the robot and a good goal: planning refuses the start in collision; once
    # the obstacles are back to normal, the node plans to the kept goal and the robot goes.
    s.set_obstacles(9.0, [(0.0, 0.0, 0.3)], valid=False)
    s.goal(9.5, (-0.2, 0.7), follow=False)
    s.event(9.5, 'obstacle on the robot', 'start configuration collides', hold=(9.1, 11.9))
    s.set_obstacles(12.0, [obstacle])
    s.follow(12.0, (-0.2, 0.7))
    # Bad obstacle messages: the whole message is rejected, the node holds.
    s.set_obstacles(17.0, [obstacle], frame='map', valid=False)
    s.event(17.0, 'obstacles in another frame', 'obstacles message rejected', hold=(17.1, 18.9))
    s.set_obstacles(19.0, [obstacle], size=-0.1, valid=False)
    s.event(19.0, 'obstacle with a negative size', 'obstacles message rejected',
            hold=(19.1, 20.9))
    s.set_obstacles(21.0, [obstacle])
    s.add(22.0, '/mode_request', String(data='sideways'))
    s.event(22.0, 'unknown mode', 'unknown mode `sideways`')
    s.add(23.0, '/mode_request', String(data='any'))
    # Joint states: a message with mismatched arrays, NaN positions, one of ours missing with an
    # unknown joint instead, and a gap (the node stops after state_timeout_secs, 0.5 s).
    s.event(24.0, 'joint_states with mismatched arrays', '2 names but 3 positions')
    s.event(25.0, 'NaN joint positions', 'no valid position', hold=(25.6, 26.45))
    s.event(27.5, 'an unknown joint, one of ours missing', '"elbow"', hold=(28.1, 28.95))
    s.event(30.0, 'joint states stop', 'no valid position', hold=(30.6, 30.95))
    s.goal(32.0, (0.3, 0.55))

    def override(t, q, v):
        if abs(t - 24.0) < 1e-6:
            return [(JOINTS, q, v), (JOINTS, q + [0.0], [])]
        if 25.0 <= t < 26.5:
            return [(JOINTS, [math.nan, math.nan], [])]
        if 27.5 <= t < 29.0:
            return [(['shoulder', 'wrist'], [q[0], 0.0], [])]
        if 30.0 <= t < 31.0:
            return []
        return None
    s.render(override)
    return s


SCENARIOS = {'reach': (scenario_reach, 7), 'modes': (scenario_modes, 11),
             'bad_input': (scenario_bad_input, 3)}


def write_bag(s, out_dir):
    path = out_dir / s.name
    if path.exists():
        shutil.rmtree(path)
    counts = {}
    w = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
    # STORAGE: zstd-compressed MCAP chunks (rosbag2's mcap plugin preset `zstd_fast` does the
    # same); the bag stays readable by any MCAP reader.
    w.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
    w.set_custom_data(SCENARIO_KEY, json.dumps(s.description(), sort_keys=True))
    with w:
        connections = {}
        for topic, msgtype in [('/joint_states', JointState.__msgtype__),
                               ('/goal', PoseStamped.__msgtype__),
                               ('/obstacles', MarkerArray.__msgtype__),
                               ('/mode_request', String.__msgtype__)]:
            if any(m[1] == topic for m in s.messages):
                connections[topic] = w.add_connection(topic, msgtype, typestore=TS,
                                                      offered_qos_profiles=[RELIABLE])
        for t_ns, topic, msgtype, msg in s.messages:
            w.write(connections[topic], t_ns, TS.serialize_cdr(msg, msgtype))
            counts[connections[topic].id] = counts.get(connections[topic].id, 0) + 1
        # rosbags 0.11.9's Writer.write counts every message twice (writer.py L298-299), so the
        # metadata.yaml would list double counts; set the true ones.
        w.counts.update(counts)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', type=pathlib.Path,
                        default=pathlib.Path(__file__).resolve().parent.parent / 'tests' / 'data')
    parser.add_argument('--only', nargs='*', choices=sorted(SCENARIOS))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.only or SCENARIOS:
        build, seed = SCENARIOS[name]
        s = build(seed)
        path = write_bag(s, args.out)
        size = sum(f.stat().st_size for f in path.iterdir())
        print(f'{path}: {len(s.messages)} messages, {s.duration_s:.0f} s, '
              f'{len(s.goals)} goals, {len(s.events)} bad inputs, {size / 1024:.0f} KiB')


if __name__ == '__main__':
    main()
