"""The Python JTC port against the common fixture that the Rust controller replays
(src/sim/jtc_fixture_tests.rs)."""

import math
import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / 'tools'))

import gen_jtc_fixture  # noqa: E402
from mujoco_sim.jtc import (JtcSettings, Point, Trajectory, TrajectoryController,  # noqa: E402
                            interpolate)

JOINTS = ['shoulder', 'elbow']


def test_the_port_still_writes_the_fixture_the_rust_test_replays():
    text = gen_jtc_fixture.fixture_text()
    assert (ROOT / 'tests' / 'fixtures' / 'jtc_cases.json').read_text() == text, \
        'run python tools/gen_jtc_fixture.py and the Rust test (cargo test --lib sim::)'


def test_cubic_reaches_its_end_points_and_holds():
    a = Point([0.0], [1.0])
    b = Point([1.0], [0.0])
    mid = interpolate(0.0, a, 2.0, b, 2.0)
    assert abs(mid.positions[0] - 1.0) < 1e-12 and abs(mid.velocities[0]) < 1e-12
    jtc = TrajectoryController(JtcSettings(JOINTS), [0.0, 0.0], 0.01)
    msg = Trajectory(0.0, ['elbow', 'shoulder'], [Point([0.2, 0.1], [0.0, 0.0], [], [], 0.5)])
    assert jtc.receive(msg, 0.0) is None
    for k in range(100):
        command = jtc.update(k * 0.01, Point([0.0, 0.0], [0.0, 0.0]))
    assert command.positions == [0.1, 0.2], 'reordered to controller order, held at the end'


def test_bad_messages_name_their_rule_and_change_nothing():
    jtc = TrajectoryController(JtcSettings(JOINTS), [0.3, -0.2], 0.01)
    cases = {
        'unknown_joint': Trajectory(0.0, ['shoulder', 'wrist'], [Point([0.0, 0.0], [], [], [], 1.0)]),
        'field_size': Trajectory(0.0, JOINTS, [Point([0.0], [], [], [], 1.0)]),
        'non_finite': Trajectory(0.0, JOINTS, [Point([math.nan, 0.0], [], [], [], 1.0)]),
        'joint_count': Trajectory(0.0, ['shoulder'], [Point([0.0], [], [], [], 1.0)]),
    }
    for rule, msg in cases.items():
        assert jtc.receive(msg, 0.0).rule == rule
    assert jtc.update(0.0, Point([0.3, -0.2], [0.0, 0.0])).positions == [0.3, -0.2]
    assert jtc.stats.rejected == 4 and jtc.stats.accepted == 0
