"""Writes tests/fixtures/jtc_cases.json: message sequences through the Python port of the
JointTrajectoryController (tools/mujoco_sim/jtc.py) with its verdicts and sampled commands, the
common fixture that keeps it equal to the Rust controller (src/sim/jtc.rs, checked by
src/sim/jtc_fixture_tests.rs within 1e-9; tests/mujoco/test_jtc.py checks the port still
writes this file).

    python tools/gen_jtc_fixture.py [--check]

Deterministic (random.Random(17) for the fuzzed sequences). Non-finite numbers are written as
the strings "NaN", "inf", "-inf" (JSON has none).
"""

import argparse
import json
import math
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mujoco_sim.jtc import JtcSettings, Point, Trajectory, TrajectoryController  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / 'tests' / 'fixtures' / 'jtc_cases.json'
JOINTS = ['shoulder', 'elbow']
PERIOD = 0.01


def num(x):
    if math.isnan(x):
        return 'NaN'
    if math.isinf(x):
        return 'inf' if x > 0 else '-inf'
    return x


def nums(values):
    return [num(v) for v in values]


def point_json(p: Point, with_time=True):
    out = {'positions': nums(p.positions), 'velocities': nums(p.velocities),
           'accelerations': nums(p.accelerations)}
    if with_time:
        out['effort'] = nums(p.effort)
        out['time_from_start_secs'] = num(p.time_from_start_secs)
    return out


def msg_json(m: Trajectory):
    return {'stamp_secs': num(m.stamp_secs), 'joint_names': list(m.joint_names),
            'points': [point_json(p) for p in m.points]}


class Case:
    def __init__(self, name, initial=(-0.3, 0.6), period=PERIOD, **settings):
        self.name = name
        self.settings = JtcSettings(list(settings.pop('joints', JOINTS)), **settings)
        self.initial = list(initial)
        self.period = period
        self.jtc = TrajectoryController(self.settings, self.initial, period)
        self.events = []
        # A measured state for interpolate_from_desired_state: false (a lagging arm).
        self.q = list(initial)

    def receive(self, msg, at):
        rejection = self.jtc.receive(msg, at)
        self.events.append({'receive': {'at': at, 'msg': msg_json(msg)},
                            'expect': {'rule': None if rejection is None else rejection.rule}})

    def update(self, at):
        measured = Point(list(self.q), [0.1 * i for i in range(len(self.q))])
        command = self.jtc.update(at, measured)
        self.events.append({'update': {'at': at, 'measured': point_json(measured, False)},
                            'expect': {'commanded': point_json(command, False),
                                       'desired': point_json(self.jtc.desired, False),
                                       'remaining_secs': self.jtc.remaining_secs(at)}})
        # The measured state trails the command a little.
        self.q = [0.8 * q + 0.2 * c for q, c in zip(self.q, command.positions)]

    def updates(self, start, count, period=None):
        period = self.period if period is None else period
        for k in range(count):
            self.update(start + k * period)

    def json(self):
        s = self.settings
        return {'name': self.name,
                'settings': {'joints': s.joints,
                             'allow_partial_joints_goal': s.allow_partial_joints_goal,
                             'allow_nonzero_velocity_at_trajectory_end':
                                 s.allow_nonzero_velocity_at_trajectory_end,
                             'interpolate_from_desired_state': s.interpolate_from_desired_state,
                             'effort_command_interface': s.effort_command_interface},
                'initial_positions': self.initial, 'update_period_secs': self.period,
                'events': self.events}


def curve(t):
    """A smooth joint-space motion and its velocity (the plan the node streams)."""
    return ([-0.3 + 0.4 * math.sin(0.8 * t), 0.6 - 0.5 * math.sin(0.5 * t)],
            [0.32 * math.cos(0.8 * t), -0.25 * math.cos(0.5 * t)])


def plan_msg(t0, stamp, dt=0.02, n=8, names=JOINTS, fields='pv', end_at_rest=True):
    points = []
    for k in range(1, n + 1):
        p, v = curve(t0 + k * dt)
        last = k == n
        if last and end_at_rest:
            v = [0.0, 0.0]
        pt = Point(p, v if 'v' in fields else [], [0.0, 0.0] if 'a' in fields else [], [],
                   k * dt)
        if 'a' in fields and not last:
            pt.accelerations = [-0.256 * math.sin(0.8 * (t0 + k * dt)),
                                0.125 * math.sin(0.5 * (t0 + k * dt))]
        points.append(pt)
    order = [JOINTS.index(j) for j in names]
    for pt in points:
        for f in ('positions', 'velocities', 'accelerations'):
            vals = getattr(pt, f)
            if vals:
                setattr(pt, f, [vals[i] for i in order])
    return Trajectory(stamp, list(names), points)


def simple(times, positions, velocities=None, accelerations=None, stamp=0.0, names=JOINTS):
    pts = []
    for i, t in enumerate(times):
        pts.append(Point(list(positions[i]), list(velocities[i]) if velocities else [],
                         list(accelerations[i]) if accelerations else [], [], t))
    return Trajectory(stamp, list(names), pts)


def cases():
    out = []

    c = Case('hold_before_any_message')
    c.updates(0.0, 5)
    out.append(c)

    for kind, vel, acc in (('linear', None, None),
                           ('cubic', [[0.5, -0.2], [0.0, 0.0]], None),
                           ('quintic', [[0.5, -0.2], [0.0, 0.0]], [[1.0, 0.5], [0.0, 0.0]])):
        c = Case(f'stamp0_{kind}')
        c.updates(1.0, 3)
        c.receive(simple([0.15, 0.4], [[0.0, 0.2], [0.3, -0.1]], vel, acc), 1.025)
        c.updates(1.03, 50)
        out.append(c)

    c = Case('stamped_in_the_future_and_in_the_past')
    c.updates(2.0, 2)
    c.receive(simple([0.1, 0.3], [[0.0, 0.5], [0.2, 0.4]], [[0.3, 0.0], [0.0, 0.0]],
                     stamp=2.1), 2.015)
    c.updates(2.02, 30)
    # Ends in the past: rejected (rule 6).
    c.receive(simple([0.1, 0.2], [[0.1, 0.1], [0.2, 0.2]], stamp=1.5), 2.33)
    # Started in the past, ends in the future: sampled mid-trajectory.
    c.receive(simple([0.2, 0.6], [[0.1, 0.1], [-0.2, 0.3]], [[0.5, 0.5], [0.0, 0.0]],
                     stamp=2.0), 2.335)
    c.updates(2.34, 40)
    out.append(c)

    for interpolate in (True, False):
        c = Case(f'node_stream_50hz_interpolate_{str(interpolate).lower()}',
                 initial=curve(3.0)[0], interpolate_from_desired_state=interpolate)
        t = 3.0
        for tick in range(40):
            if tick % 2 == 0:
                c.receive(plan_msg(t, t, names=JOINTS if tick % 4 else ['elbow', 'shoulder']),
                          t + 0.003)
            c.update(t + 0.005)
            t += PERIOD
        c.updates(t + 0.005, 30)
        out.append(c)

    c = Case('node_stream_stamp0_with_jitter', initial=curve(4.0)[0])
    rng = random.Random(3)
    t = 4.0
    for tick in range(30):
        if tick % 2 == 0:
            c.receive(plan_msg(t, 0.0), t + rng.uniform(0.0, 0.009))
        c.update(t + rng.uniform(0.0, 0.002))
        t += PERIOD
    out.append(c)

    c = Case('partial_goal', allow_partial_joints_goal=True)
    c.updates(0.0, 2)
    c.receive(simple([0.2, 0.5], [[0.4], [0.8]], [[0.5], [0.0]], names=['elbow']), 0.015)
    c.updates(0.02, 60)
    out.append(c)

    c = Case('nonzero_end_velocity_allowed', allow_nonzero_velocity_at_trajectory_end=True)
    c.receive(simple([0.1, 0.2], [[0.0, 0.6], [0.1, 0.7]], [[0.5, 0.5], [0.5, 0.5]]), 0.005)
    c.updates(0.0, 40)
    out.append(c)

    c = Case('rejections_by_rule')
    nan = math.nan
    good = simple([0.1, 0.2], [[0.0, 0.6], [0.1, 0.7]], [[0.5, 0.5], [0.0, 0.0]])
    c.updates(0.0, 2)
    bad = [
        Trajectory(0.0, ['shoulder'], good.points),                       # 1
        Trajectory(0.0, [], []),                                          # 1 (count first)
        Trajectory(0.0, JOINTS, []),                                      # 3
        Trajectory(0.0, ['shoulder', 'wrist'], good.points),              # 4
        simple([0.1, 0.2], [[0.0, 0.6], [0.1, 0.7]], [[0.5, 0.5], [0.0, 0.1]]),   # 5
        simple([0.1, 0.2], [[0.0, 0.6], [0.1, 0.7]], stamp=0.001),        # 6 (now 0.3)
        simple([0.2, 0.2], [[0.0, 0.6], [0.1, 0.7]]),                     # 7
        simple([0.2, nan], [[0.0, 0.6], [0.1, 0.7]]),                     # 7 (NaN time)
        Trajectory(0.0, JOINTS, [Point([0.1], [], [], [], 0.1)]),         # 8
        Trajectory(0.0, JOINTS, [Point([0.1, 0.2], [0.0], [], [], 0.1)]),  # 8
        Trajectory(0.0, JOINTS, [Point([0.1, 0.2], [], [], [1.0, 1.0], 0.1)]),  # 9
        Trajectory(0.0, ['elbow', 'elbow'], good.points),                 # duplicate
        simple([0.1, 0.2], [[nan, 0.6], [0.1, 0.7]]),                     # non-finite
        simple([0.1, 0.2], [[0.0, 0.6], [0.1, math.inf]]),                # non-finite
        simple([0.1, math.inf], [[0.0, 0.6], [0.1, 0.7]]),                # non-finite time
        simple([0.1, 0.2], [[0.0, 0.6], [0.1, 0.7]], stamp=math.inf),     # non-finite stamp
    ]
    for msg in bad:
        c.receive(msg, 0.3)
    c.updates(0.31, 3)
    c.receive(good, 0.335)
    c.updates(0.34, 30)
    out.append(c)

    rng = random.Random(17)
    for n in range(4):
        c = Case(f'fuzz_{n}', initial=[rng.uniform(-1, 1), rng.uniform(-1, 1)],
                 interpolate_from_desired_state=bool(n % 2),
                 allow_partial_joints_goal=n >= 2)
        t = 10.0 * n
        for _ in range(80):
            if rng.random() < 0.3:
                c.receive(fuzz_msg(rng, t), t + rng.uniform(0.0, 0.01))
            t += PERIOD + rng.uniform(-0.002, 0.002)
            c.update(t)
        out.append(c)
    return out


def fuzz_msg(rng, now):
    names = rng.choice([JOINTS, ['elbow', 'shoulder'], ['shoulder'], ['elbow'], ['wrist'],
                        JOINTS, JOINTS])
    n_points = rng.choice([0, 1, 2, 3, 5, 8])
    fields = rng.choice(['p', 'pv', 'pv', 'pva'])
    stamp = rng.choice([0.0, 0.0, now + rng.uniform(-0.2, 0.1), now - 5.0])
    t = 0.0
    points = []
    for k in range(n_points):
        t += rng.choice([rng.uniform(0.01, 0.3), rng.uniform(0.01, 0.3), 0.0])
        p = Point([rng.uniform(-2, 2) for _ in names], [], [], [], t)
        if 'v' in fields:
            p.velocities = [rng.uniform(-1, 1) for _ in names]
        if 'a' in fields:
            p.accelerations = [rng.uniform(-3, 3) for _ in names]
        if k == n_points - 1 and rng.random() < 0.85:
            p.velocities = [0.0] * len(p.velocities)
        if rng.random() < 0.03:
            p.positions = p.positions[:-1]
        points.append(p)
    return Trajectory(stamp, list(names), points)


def fixture_text():
    # One case per line: small, and a diff shows which case changed.
    head = {'format': 1, 'generator': 'tools/gen_jtc_fixture.py', 'tolerance': 1e-9}
    lines = [json.dumps(c.json(), separators=(',', ':'), allow_nan=False) for c in cases()]
    text = json.dumps(head)[:-1] + ', "cases": [\n' + ',\n'.join(lines) + '\n]}\n'
    json.loads(text)
    return text


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--check', action='store_true',
                        help='fail if the fixture differs from what the port writes now')
    args = parser.parse_args()
    text = fixture_text()
    if args.check:
        if OUT.read_text() != text:
            sys.exit(f'{OUT.relative_to(ROOT)} is stale: run python tools/gen_jtc_fixture.py')
        return
    OUT.write_text(text)
    print(f'wrote {OUT.relative_to(ROOT)} ({len(text)} bytes)')


if __name__ == '__main__':
    main()
