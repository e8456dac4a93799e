"""bag_checks.py catches what it is meant to catch: output bags written here by hand (no node)
against the committed `reach` bag, one good and several with a planted fault."""

import json
import math
import pathlib
import sys

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import bag_checks  # noqa: E402

DATA = pathlib.Path(__file__).resolve().parents[2] / 'tests' / 'data'
TS = get_typestore(Stores.ROS2_JAZZY)
T = {name: TS.types[name] for name in [
    'trajectory_msgs/msg/JointTrajectory', 'trajectory_msgs/msg/JointTrajectoryPoint',
    'std_msgs/msg/Header', 'builtin_interfaces/msg/Time', 'builtin_interfaces/msg/Duration',
    'diagnostic_msgs/msg/DiagnosticArray', 'diagnostic_msgs/msg/DiagnosticStatus',
    'diagnostic_msgs/msg/KeyValue']}
JOINTS = ['shoulder', 'elbow']


def trajectory(points, stamp_sec=0):
    """points: [(t, q, v)]"""
    P = T['trajectory_msgs/msg/JointTrajectoryPoint']
    return T['trajectory_msgs/msg/JointTrajectory'](
        header=T['std_msgs/msg/Header'](stamp=T['builtin_interfaces/msg/Time'](
            sec=stamp_sec, nanosec=0), frame_id=''),
        joint_names=JOINTS,
        points=[P(positions=np.array(q, dtype=np.float64),
                  velocities=np.array(v, dtype=np.float64),
                  accelerations=np.array([], dtype=np.float64),
                  effort=np.array([], dtype=np.float64),
                  time_from_start=T['builtin_interfaces/msg/Duration'](
                      sec=int(t), nanosec=round((t % 1) * 1e9)))
                for t, q, v in points])


def ik_elbow_down(x, y, l1=0.5, l2=0.4):
    elbow = math.acos((x * x + y * y - l1 * l1 - l2 * l2) / (2 * l1 * l2))
    return [math.atan2(y, x) - math.atan2(l2 * math.sin(elbow), l1 + l2 * math.cos(elbow)), elbow]


def diagnostics(state, label):
    S = T['diagnostic_msgs/msg/DiagnosticStatus']
    KV = T['diagnostic_msgs/msg/KeyValue']
    return T['diagnostic_msgs/msg/DiagnosticArray'](
        header=T['std_msgs/msg/Header'](stamp=T['builtin_interfaces/msg/Time'](sec=0, nanosec=0),
                                        frame_id=''),
        status=[S(level=0, name='diffusion_planner: executor', message=state, hardware_id='',
                  values=[KV(key='state', value=state)]),
                S(level=0, name='diffusion_planner: planning', message='ok', hardware_id='',
                  values=[KV(key='chosen_mode_label', value=label),
                          KV(key='requested_mode', value='any')])])


def write_output(path, fault=None):
    """A replay output that does what the `reach` scenario asks (the commanded state jumps to
    each goal's recorded target in one motion), with `fault` planted."""
    scenario = bag_checks.load_scenario(DATA / 'reach')
    start = scenario['bag_start_ns']
    goals = scenario['goals']
    messages = []
    q = [-0.3, 0.6]
    t = 0.02
    k = 0
    while t <= scenario['duration_s']:
        current = [g for g in goals if g['t'] <= t]
        target = current[-1]['target_rad'] if current else q
        moving = current and t < current[-1]['t'] + 0.1
        if moving:
            msg = trajectory([(0.02, q, [0.0, 0.0]), (1.0, target, [0.0, 0.0])])
        else:
            q = target
            msg = trajectory([(0.02, q, [0.0, 0.0])])
        if fault == 'stamp' and k == 100:
            msg = trajectory([(0.02, q, [0.0, 0.0])], stamp_sec=5)
        if fault == 'collision' and k == 60:
            # To the obstacle's centre (0.45, 0.35) with the end effector.
            msg = trajectory([(0.02, q, [0.0, 0.0]), (1.0, ik_elbow_down(0.45, 0.35),
                                                      [0.0, 0.0])])
        messages.append(('/joint_trajectory', start + round(t * 1e9), msg))
        if k % 25 == 0:
            state = 'goal reached' if current and t > current[-1]['arrive_t'] else 'holding'
            if fault == 'never_reached':
                state = 'following'
            label = current[-1]['branch'] if current else 'none'
            messages.append(('/diagnostics', start + round(t * 1e9), diagnostics(state, label)))
        t = round(t + 0.02, 9)
        k += 1
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        conns = {
            '/joint_trajectory': w.add_connection(
                '/joint_trajectory', 'trajectory_msgs/msg/JointTrajectory', typestore=TS),
            '/diagnostics': w.add_connection(
                '/diagnostics', 'diagnostic_msgs/msg/DiagnosticArray', typestore=TS)}
        for topic, t_ns, msg in messages:
            w.write(conns[topic], t_ns, TS.serialize_cdr(msg, msg.__msgtype__))
    return path


def failed(checker):
    return [c['name'] for c in checker.checks if not c['ok']]


def test_a_good_output_passes(tmp_path):
    checker = bag_checks.run(DATA / 'reach', write_output(tmp_path / 'good'))
    assert not failed(checker), json.dumps(checker.checks, indent=1)
    assert checker.stats['moving_trajectories'] > 0


def test_planted_faults_are_caught(tmp_path):
    for fault, expected in [
        ('stamp', 'every trajectory passes the JTC rules'),
        ('collision', 'every moving trajectory is collision-free'),
        ('never_reached', '"goal reached" reported'),
    ]:
        checker = bag_checks.run(DATA / 'reach', write_output(tmp_path / fault, fault))
        names = failed(checker)
        assert any(expected in n for n in names), (fault, names)


def test_comparison_flags_a_different_end(tmp_path):
    good = bag_checks.run(DATA / 'reach', write_output(tmp_path / 'a'))
    other = bag_checks.run(DATA / 'reach', write_output(tmp_path / 'b'))
    bag_checks.compare(good, other, 'sequence')
    assert not failed(good)
    other.stats['goals'][2]['final_rad'] = [x + 0.1 for x in other.stats['goals'][2]['final_rad']]
    other.stats['goals'][3]['labels'] = ['elbow_up']
    bag_checks.compare(good, other, 'sequence')
    names = failed(good)
    assert any('goal 2' in n and 'final commanded position' in n for n in names), names
    assert any('goal 3' in n and 'labels' in n for n in names), names
    assert math.isfinite(good.stats['min_clearance_m'])
