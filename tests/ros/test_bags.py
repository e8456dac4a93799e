"""The committed replay bags (tests/data, written by tools/make_bags.py) read back with rosbags,
are what the generator writes today (seeded, deterministic), stay small, and describe scenarios
that hold: the recorded joint states arrive at every valid goal and never hit an obstacle."""

import importlib.util
import json
import math
import pathlib

import pytest
import yaml
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import Reader

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT / 'tests' / 'data'
SCENARIOS = ['reach', 'modes', 'bad_input']
INPUT_TYPES = {
    '/joint_states': 'sensor_msgs/msg/JointState',
    '/goal': 'geometry_msgs/msg/PoseStamped',
    '/obstacles': 'visualization_msgs/msg/MarkerArray',
    '/mode_request': 'std_msgs/msg/String',
}


def load_generator():
    spec = importlib.util.spec_from_file_location('make_bags', ROOT / 'tools' / 'make_bags.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def metadata_of(path):
    text = (path / 'metadata.yaml').read_text()
    return yaml.safe_load(text)['rosbag2_bagfile_information']


def scenario_of(path):
    return json.loads(metadata_of(path)['custom_data']['diffusion_planner/scenario'])


def raw_messages(path):
    with AnyReader([path]) as reader:
        return [(c.topic, c.msgtype, t, bytes(raw)) for c, t, raw in reader.messages()]


@pytest.mark.parametrize('name', SCENARIOS)
def test_bag_reads_back_with_anyreader(name):
    path = DATA / name
    assert (path / 'metadata.yaml').is_file()
    metadata = metadata_of(path)
    assert metadata['version'] == 9
    assert metadata['storage_identifier'] == 'mcap'
    with Reader(path) as reader:
        counted = {c.topic: c.msgcount for c in reader.connections}
    assert counted == {t['topic_metadata']['name']: t['message_count']
                       for t in metadata['topics_with_message_count']}
    with AnyReader([path]) as reader:
        topics = {c.topic: c.msgtype for c in reader.connections}
        assert set(topics) <= set(INPUT_TYPES) and '/joint_states' in topics
        assert all(INPUT_TYPES[t] == ty for t, ty in topics.items())
        seen = {}
        last = 0
        for connection, t, raw in reader.messages():
            msg = reader.deserialize(raw, connection.msgtype)
            assert t >= last, 'messages in time order'
            last = t
            seen[connection.topic] = seen.get(connection.topic, 0) + 1
            if connection.topic == '/joint_states':
                stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
                assert stamp == t, 'joint states stamped with their bag time'
    assert seen == counted, 'metadata message counts match the file'
    scenario = scenario_of(path)
    duration = (last - scenario['bag_start_ns']) / 1e9
    assert abs(duration - scenario['duration_s']) < 0.02


def test_bags_are_small():
    total = sum(f.stat().st_size for name in SCENARIOS for f in (DATA / name).iterdir())
    assert total < 2 * 1024 * 1024, total


def test_generator_writes_the_committed_bags(tmp_path):
    generator = load_generator()
    for name in SCENARIOS:
        build, seed = generator.SCENARIOS[name]
        written = generator.write_bag(build(seed), tmp_path)
        assert raw_messages(written) == raw_messages(DATA / name), (
            f'{name}: tests/data differs from what tools/make_bags.py writes; run it')
        assert scenario_of(written) == scenario_of(DATA / name)


def joint_positions(msg, joints):
    names = list(msg.name)
    if len(msg.position) != len(names) or not all(j in names for j in joints):
        return None
    q = [float(msg.position[names.index(j)]) for j in joints]
    return q if all(math.isfinite(x) for x in q) else None


@pytest.mark.parametrize('name', SCENARIOS)
def test_recorded_states_reach_every_goal_without_collision(name):
    generator = load_generator()
    path = DATA / name
    scenario = scenario_of(path)
    start = scenario['bag_start_ns']
    joints = scenario['joints']
    valid = [o for o in scenario['obstacles'] if o['valid']]
    states = []
    with AnyReader([path]) as reader:
        for connection, t, raw in reader.messages():
            if connection.topic != '/joint_states':
                continue
            q = joint_positions(reader.deserialize(raw, connection.msgtype), joints)
            if q is not None:
                states.append(((t - start) / 1e9, q))
    assert len(states) > 50 * scenario['duration_s']
    for (t, q) in states:
        current = [o for o in valid if o['t'] <= t]
        circles = current[-1]['circles'] if current else []
        assert generator.clearance_m(q, circles) > 0.0, f'{name}: collision at {t:.2f} s'
    goals = scenario['goals']
    assert goals, name
    tolerance = scenario['goal_tolerance_m']
    for i, goal in enumerate(goals):
        until = goals[i + 1]['t'] if i + 1 < len(goals) else scenario['duration_s']
        resting = [q for (t, q) in states if goal['arrive_t'] + 0.05 <= t <= until]
        assert len(resting) > 100, f'{name}: rests at goal {i} for at least a second'
        for q in resting:
            x, y = generator.end_effector(q)
            assert math.hypot(x - goal['goal_m'][0], y - goal['goal_m'][1]) < tolerance
            assert generator.branch_of(q) == goal['branch']
        if goal['mode'] != 'any':
            assert goal['branch'] == goal['mode']
