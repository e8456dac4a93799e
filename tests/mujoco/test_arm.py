"""The planar arm in MuJoCo: the MJCF, the drives, contacts, markers and bad input."""

import math

import mujoco
import pytest
import yaml
from conftest import ROOT

from mujoco_sim.arm import (ADD, CUBE, CYLINDER, DELETE, DELETEALL, SPHERE, ArmModel, MarkerIn,
                            MarkerSet, Obstacle, mjcf)
from mujoco_sim.config import ConfigError, Physics, RobotDescription, load_robot
from mujoco_sim.jtc import JtcSettings, Point, Trajectory
from mujoco_sim.simulation import Simulation, status

PHYSICS = ROOT / 'config' / 'mujoco_planar_arm.yaml'
JOINTS = ['shoulder', 'elbow']


def physics():
    return Physics.load(PHYSICS)


def simulation(initial=(-0.3, 0.6), joints=JOINTS):
    return Simulation(RobotDescription.planar_2link(), physics(), JtcSettings(list(joints)),
                      list(initial), 0.01, 0.02)


def test_the_robot_descriptions_agree_with_the_urdf_and_the_physics_file():
    import xml.etree.ElementTree as ET
    robot = load_robot(ROOT / 'config' / 'data_planar_arm.yaml')
    assert robot == RobotDescription.planar_2link() == load_robot('synthetic')
    assert load_robot(ROOT / 'models' / 'planar_arm') == robot
    urdf = ET.parse(ROOT / 'urdf' / 'planar_arm.urdf').getroot()
    joints = {j.get('name'): j for j in urdf.iter('joint')}
    p = physics()
    for i, joint in enumerate(robot.joints):
        limit = joints[joint.name].find('limit')
        assert float(limit.get('lower')) == pytest.approx(joint.lower_rad)
        assert float(limit.get('upper')) == pytest.approx(joint.upper_rad)
        assert float(limit.get('effort')) == p.effort_limits_nm[i]
    assert float(joints['elbow'].find('origin').get('xyz').split()[0]) == robot.link_lengths_m[0]


def test_the_mjcf_loads_with_the_configured_masses_limits_and_drives():
    robot = RobotDescription.planar_2link()
    p = physics()
    model = mujoco.MjModel.from_xml_string(mjcf(robot, p, [Obstacle('cylinder', (0.5, 0.5),
                                                                    (0.1, 0.1))]))
    assert model.nq == 2 and model.nu == 4 and model.opt.timestep == p.timestep_secs
    assert model.body_mass[1:3].tolist() == pytest.approx(p.link_masses_kg)
    assert model.jnt_range.flatten().tolist() == pytest.approx([-math.pi, math.pi, -2.8, 2.8])
    assert model.jnt_actfrcrange.flatten().tolist() == pytest.approx([-50.0, 50.0, -50.0, 50.0])
    assert model.dof_damping.tolist() == pytest.approx(p.joint_damping_nms_per_rad)
    assert model.dof_armature.tolist() == pytest.approx(p.armature_kgm2)


def test_every_physics_key_is_checked_by_name():
    good = yaml.safe_load(PHYSICS.read_text())
    Physics.from_dict(good)
    for change, key in [({'colour': 'red'}, '`colour`'), ({'kp_nm_per_rad': [1.0]}, '`kp_nm_per_rad`'),
                        ({'timestep_secs': -1.0}, '`timestep_secs`'),
                        ({'integrator': 'magic'}, '`integrator`'),
                        ({'link_masses_kg': [1.0, math.nan]}, '`link_masses_kg`')]:
        with pytest.raises(ConfigError, match=key):
            Physics.from_dict({**good, **change})
    missing = dict(good)
    del missing['effort_limits_nm']
    with pytest.raises(ConfigError, match='`effort_limits_nm`: required'):
        Physics.from_dict(missing)


def test_the_drives_track_a_step_within_the_effort_limits():
    arm = ArmModel(RobotDescription.planar_2link(), physics(), [0.0, 0.0])
    arm.set_targets([0.5, -0.5], [0.0, 0.0])
    peak = 0.0
    for _ in range(2000):
        arm.step()
        peak = max(peak, *(abs(t) for t in arm.actuator_torques()))
    assert peak == pytest.approx(50.0, rel=1e-6), 'a 0.5 rad step saturates at the effort limit'
    assert arm.positions() == pytest.approx([0.5, -0.5], abs=1e-4)
    assert max(abs(v) for v in arm.velocities()) < 1e-3


def planned(start, end, secs=2.0, n=40):
    points = []
    for k in range(1, n + 1):
        u = k / n
        s, ds = 3 * u * u - 2 * u ** 3, (6 * u - 6 * u * u) / secs
        points.append(Point([a + (b - a) * s for a, b in zip(start, end)],
                            [(b - a) * ds if k < n else 0.0 for a, b in zip(start, end)],
                            [], [], u * secs))
    return Trajectory(0.0, list(JOINTS), points)


def test_a_planned_motion_is_tracked_to_the_goal():
    sim = simulation()
    sim.set_goal(RobotDescription.planar_2link().end_effector([0.7, 1.1]), 0.0)
    assert sim.receive_trajectory(planned([-0.3, 0.6], [0.7, 1.1]), 0.0) is None
    for k in range(400):
        sim.update(k * 0.01)
    r = sim.report()
    assert r['goal_reached'] and r['contacts'] == 0
    assert 0 < r['max_tracking_error_rad'] < 0.005, r['max_tracking_error_rad']
    assert 0 < r['rms_tracking_error_rad'] <= r['max_tracking_error_rad']
    assert r['saturated_updates'] == 0 and r['physics_steps'] == 3990


def test_a_late_update_runs_the_missed_ones_and_tracks_as_if_on_time():
    # The same motion with every tenth update 60 ms late (the process stalled): the missed
    # controller updates run first, so the arm tracks as well as with regular updates.
    sim = simulation()
    assert sim.receive_trajectory(planned([-0.3, 0.6], [0.7, 1.1]), 0.0) is None
    times = [k * 0.01 for k in range(400) if k % 10 not in range(4, 10) or k >= 300]
    for t in times:
        sim.update(t)
    r = sim.report()
    assert r['catch_up_updates'] == 400 - len(times)
    assert r['updates'] == 400 and r['physics_steps'] == 3990
    assert 0 < r['max_tracking_error_rad'] < 0.005, r['max_tracking_error_rad']
    assert r['saturated_updates'] == 0


def test_irregular_updates_track_as_well_as_regular_ones():
    # Updates 2 ms and 12 ms apart in turn (a jittery process): the drives' target moves at
    # the rate of one command per period whatever the spacing, so the arm tracks as with
    # regular updates (0.7 mrad; ramping to each command by the next update instead gave
    # 24 mrad and 127 saturated updates).
    sim = simulation()
    assert sim.receive_trajectory(planned([-0.3, 0.6], [0.7, 1.1]), 0.0) is None
    t = 0.0
    for k in range(400):
        sim.update(t)
        t += 0.002 if k % 2 == 0 else 0.012
    r = sim.report()
    assert r['catch_up_updates'] == 0
    assert 0 < r['max_tracking_error_rad'] < 0.002, r['max_tracking_error_rad']
    assert r['saturated_updates'] == 0


def test_a_link_driven_into_a_box_makes_one_contact_episode():
    sim = simulation(initial=(0.0, 0.0))
    # A box across the forearm's way when the shoulder turns to +1 rad.
    box = MarkerIn('scene', 0, CUBE, ADD, 'base_link', (0.45, 0.45, 0.0), (0, 0, 0, 1),
                   (0.1, 0.1, 0.1))
    assert sim.on_markers([box], 0.0) is None
    sim.receive_trajectory(planned([0.0, 0.0], [1.0, 0.0]), 0.0)
    for k in range(300):
        sim.update(k * 0.01)
    r = sim.report()
    assert r['contacts'] == 1 and r['contact_steps'] > 100 and r['in_contact']
    assert r['min_clearance_m'] < 0 and r['max_penetration_m'] > 0
    assert r['positions_rad'][0] < 0.9, 'the box stopped the arm'
    assert r['max_tracking_error_rad'] > 0.1
    level, message, values = status(r, 'sim: arm')
    assert level == 2 and 'in collision' in message and dict(values)['collisions'] == '1'


def marker(kind=CYLINDER, action=ADD, ns='o', id=0, x=0.5, frame='base_link', lifetime=0.0,
           scale=(0.2, 0.2, 0.1)):
    return MarkerIn(ns, id, kind, action, frame, (x, 0.2, 0.0), (0, 0, 0, 1), scale, lifetime)


def test_markers_follow_rviz_semantics():
    s = MarkerSet()
    assert s.apply([marker(), marker(SPHERE, id=1), marker(CUBE, id=2), marker(ns='p')], 0.0) is None
    kinds = [o.kind for o in s.obstacles()]
    assert kinds == ['cylinder', 'sphere', 'box', 'cylinder']
    assert s.obstacles()[0].size_m == (0.1, 0.1), 'radius, half height >= min height / 2'
    assert s.apply([marker(action=DELETE, id=1)], 1.0) is None and len(s.obstacles()) == 3
    assert s.apply([marker(action=DELETEALL, ns='o')], 1.0) is None and len(s.obstacles()) == 1
    assert s.apply([marker(action=DELETEALL, ns='')], 1.0) is None and s.obstacles() == []
    assert s.apply([marker(lifetime=0.5)], 2.0) is None
    assert not s.expire(2.4) and s.expire(2.5) and s.obstacles() == []
    for bad, text in [(marker(kind=0), 'ARROW'), (marker(action=7), 'unknown action'),
                      (marker(frame='map'), 'frame `map`'), (marker(scale=(0, 0, 1)), 'radius'),
                      (marker(x=math.nan), 'not finite')]:
        s.apply([marker()], 3.0)
        error = s.apply([marker(id=5, x=0.9), bad], 3.0)
        assert error and text in error and not s.valid
        assert [o.center_m[0] for o in s.obstacles()] == [0.5], 'applied whole or not at all'


def test_a_bad_obstacle_set_holds_the_arm_until_a_valid_one():
    sim = simulation()
    sim.receive_trajectory(planned([-0.3, 0.6], [0.7, 1.1]), 0.0)
    for k in range(50):
        sim.update(k * 0.01)
    error = sim.on_markers([marker(kind=11)], 0.5)
    assert 'TRIANGLE_LIST' in error
    held = sim.report()['positions_rad']
    for k in range(50, 150):
        sim.update(k * 0.01)
    r = sim.report()
    assert r['holding'] and r['positions_rad'] == pytest.approx(held, abs=0.02)
    assert status(r, 'sim: arm')[0] == 1
    assert sim.on_markers([marker(x=-0.6)], 1.5) is None
    for k in range(150, 500):
        sim.update(k * 0.01)
    assert sim.report()['positions_rad'] == pytest.approx([0.7, 1.1], abs=1e-3)


def test_bad_trajectories_are_rejected_and_the_arm_holds():
    sim = simulation()
    bad = [Trajectory(0.0, JOINTS, [Point([math.nan, 0.0], [], [], [], 1.0)]),
           Trajectory(0.0, JOINTS, [Point([0.1, 0.2, 0.3], [], [], [], 1.0)]),
           Trajectory(0.0, ['shoulder', 'wrist'], [Point([0.1, 0.2], [], [], [], 1.0)])]
    rules = [sim.receive_trajectory(m, 0.0).rule for m in bad]
    assert rules == ['non_finite', 'field_size', 'unknown_joint']
    for k in range(100):
        sim.update(k * 0.01)
    r = sim.report()
    assert r['positions_rad'] == pytest.approx([-0.3, 0.6], abs=1e-6)
    assert r['trajectories_rejected'] == 3 and r['rejected_by_rule'] == {
        'field_size': 1, 'non_finite': 1, 'unknown_joint': 1}
    level, message, values = status(r, 'sim: arm')
    assert level == 1 and 'unknown_joint' not in message and 'rule 4' in message
    assert dict(values)['rejected_by_rule'] == '1 field_size, 1 non_finite, 1 unknown_joint'


def test_reset_puts_the_arm_at_rest_and_restarts_the_counters():
    sim = simulation()
    sim.receive_trajectory(planned([-0.3, 0.6], [0.7, 1.1]), 0.0)
    for k in range(100):
        sim.update(k * 0.01)
    sim.reset([1.0, -1.0])
    sim.update(1.0)
    sim.update(1.01)
    r = sim.report()
    assert r['positions_rad'] == pytest.approx([1.0, -1.0], abs=1e-6)
    assert r['trajectories_accepted'] == 0 and r['updates'] == 2


def test_joint_states_at_1_khz_run_one_physics_step_per_update():
    sim = Simulation(RobotDescription.planar_2link(), physics(), JtcSettings(list(JOINTS)),
                     [-0.3, 0.6], 0.001, 0.02)
    sim.receive_trajectory(planned([-0.3, 0.6], [0.2, 0.9]), 0.0)
    for k in range(3000):
        sim.update(k * 0.001)
    r = sim.report()
    assert r['physics_steps'] == 2999 and r['positions_rad'] == pytest.approx([0.2, 0.9], abs=1e-3)
    assert r['max_tracking_error_rad'] < 0.005
    with pytest.raises(ValueError, match='`update_rate_hz`'):
        Simulation(RobotDescription.planar_2link(), physics(), JtcSettings(list(JOINTS)),
                   [0.0, 0.0], 0.0005, 0.02)
