"""The Franka Panda (urdf/panda/) in MuJoCo, without the planner: the model against the URDF
read independently here (xml.etree, joint_limits.yaml, a forward kinematics of our own), a
7-joint trajectory through the JointTrajectoryController front end tracked within a stated
tolerance, gravity, contacts with 3-D obstacles, the effort limits. Tracking figures are
printed (pytest -s) and recorded in docs/SIM.md."""

import math
import time
import xml.etree.ElementTree as ET

import mujoco
import numpy as np
import pytest
import yaml
from conftest import ROOT

from mujoco_sim.arm import ADD, CUBE, CYLINDER, SPHERE, ArmModel, MarkerIn, MarkerSet
from mujoco_sim.config import ConfigError, Physics, load
from mujoco_sim.jtc import JtcSettings, Point, Trajectory
from mujoco_sim.simulation import Simulation, status

URDF = ROOT / 'urdf' / 'panda' / 'panda.urdf'
LIMITS = ROOT / 'urdf' / 'panda' / 'joint_limits.yaml'
PHYSICS = ROOT / 'config' / 'mujoco_panda.yaml'
JOINTS = [f'panda_joint{i}' for i in range(1, 8)]
READY = [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785]
FRAME = 'panda_link0'
# Tracking tolerances for the test motions (measured 2026-12: docs/SIM.md "The Panda").
MAX_TRACKING_RAD = 0.005
RMS_TRACKING_RAD = 0.003


def panda():
    return load(URDF, PHYSICS)


def simulation(physics=None, initial=READY):
    robot, default = panda()
    return Simulation(robot, physics or default, JtcSettings(list(JOINTS)), list(initial), 0.01,
                      0.01, FRAME)


def urdf_joints():
    root = ET.parse(URDF).getroot()
    return root, {j.get('name'): j for j in root.iter('joint')}


def rotation(rpy):
    r, p, y = rpy
    rx = np.array([[1, 0, 0], [0, math.cos(r), -math.sin(r)], [0, math.sin(r), math.cos(r)]])
    ry = np.array([[math.cos(p), 0, math.sin(p)], [0, 1, 0], [-math.sin(p), 0, math.cos(p)]])
    rz = np.array([[math.cos(y), -math.sin(y), 0], [math.sin(y), math.cos(y), 0], [0, 0, 1]])
    return rz @ ry @ rx


def axis_rotation(axis, angle):
    k = np.asarray(axis, float) / np.linalg.norm(axis)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(angle) * kx + (1 - math.cos(angle)) * kx @ kx


def urdf_fk(q, link='panda_hand'):
    """The origin of `link` in the root frame by chaining the URDF's joint origins (no MuJoCo)."""
    _, joints = urdf_joints()
    by_child = {j.find('child').get('link'): j for j in joints.values()}
    chain = []
    while link in by_child:
        chain.append(by_child[link])
        link = by_child[link].find('parent').get('link')
    values = dict(zip(JOINTS, q))
    R, p = np.eye(3), np.zeros(3)
    for j in reversed(chain):
        origin = j.find('origin')
        xyz = [float(v) for v in origin.get('xyz', '0 0 0').split()]
        rpy = [float(v) for v in origin.get('rpy', '0 0 0').split()]
        p = p + R @ np.array(xyz)
        R = R @ rotation(rpy)
        if j.get('type') == 'revolute':
            axis = [float(v) for v in j.find('axis').get('xyz').split()]
            R = R @ axis_rotation(axis, values.get(j.get('name'), 0.0))
    return p


def test_the_panda_loads_with_the_urdfs_joints_limits_and_masses():
    root, joints = urdf_joints()
    published = yaml.safe_load(LIMITS.read_text())['joint_limits']
    robot, physics = panda()
    arm = ArmModel(robot, physics, READY)
    m = arm.model
    assert robot.joint_names == JOINTS and m.nq == m.nv == 7 and m.nu == 14
    assert [m.joint(i).name for i in range(m.njnt)] == JOINTS, 'the fingers are welded'
    assert sorted(robot.locked_joints) == ['panda_finger_joint1', 'panda_finger_joint2']
    for i, name in enumerate(JOINTS):
        limit = joints[name].find('limit')
        lower, upper = m.jnt_range[i]
        entry = published[name]
        assert (lower, upper) == pytest.approx((entry['min_position'], entry['max_position']))
        assert float(limit.get('lower')) <= lower < upper <= float(limit.get('upper')), \
            'the published range lies inside the URDF\'s'
        effort = float(limit.get('effort'))
        assert effort == (87.0 if i < 4 else 12.0), "Franka's published torque limits"
        assert m.jnt_actfrcrange[i].tolist() == [-effort, effort]
        assert robot.joints[i].max_velocity_rad_s == entry['max_velocity']
        axis = [float(v) for v in joints[name].find('axis').get('xyz').split()]
        assert m.jnt_axis[i].tolist() == axis
    assert m.dof_damping.tolist() == pytest.approx(physics.joint_damping_nms_per_rad)
    assert m.dof_armature.tolist() == pytest.approx(physics.armature_kgm2)
    urdf_mass = sum(float(link.find('inertial/mass').get('value')) for link in root.iter('link')
                    if link.find('inertial') is not None)
    assert float(m.body_mass.sum()) == pytest.approx(urdf_mass)
    assert m.opt.timestep == physics.timestep_secs and m.opt.gravity[2] == pytest.approx(-9.81)
    assert all(m.body_gravcomp[1:] == 1.0) and all(m.jnt_actgravcomp == 1)
    # MuJoCo's tool site against the URDF's kinematics chained here, at a few poses.
    for q in (READY, [0.5, 0.3, -0.4, -1.8, 0.6, 2.0, -0.7], [-1.2, -1.0, 1.0, -2.6, -1.5, 0.8, 2.0]):
        arm.reset(q)
        assert arm.end_effector() == pytest.approx(urdf_fk(q).tolist(), abs=1e-6)
    arm.reset(READY)
    assert arm.end_effector() == pytest.approx([0.307, 0.0, 0.5903], abs=1e-3)
    assert arm.clearance() > 0.1, 'the arm is clear of the table'


def test_the_physics_file_is_checked_by_name():
    good = yaml.safe_load(PHYSICS.read_text())
    Physics.from_dict(good, 'p', 7, urdf=True)
    for change, key in [({'link_masses_kg': [1.0] * 7}, '`link_masses_kg`: unknown'),
                        ({'gravity_compensation': 'yes'}, '`gravity_compensation`'),
                        ({'kp_nm_per_rad': [1.0]}, '`kp_nm_per_rad`'),
                        ({'table': {'center_m': [0, 0, 0]}}, '`table`'),
                        ({'table': {'center_m': [0, 0, 0], 'size_m': [1, -1, 1]}}, '`table.size_m`')]:
        with pytest.raises(ConfigError, match=key):
            Physics.from_dict({**good, **change}, 'p', 7, urdf=True)


def test_effort_limits_above_the_urdfs_are_refused(tmp_path):
    text = PHYSICS.read_text().replace('[87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0]',
                                       '[87.0, 87.0, 87.0, 87.0, 20.0, 12.0, 12.0]')
    text = text.replace('../urdf/panda/joint_limits.yaml', str(LIMITS))
    (tmp_path / 'p.yaml').write_text(text)
    with pytest.raises(ConfigError, match='`effort_limits_nm`: 20.0 N m for `panda_joint5`'):
        load(URDF, tmp_path / 'p.yaml')
    with pytest.raises(ConfigError, match='`tool_link`: `nowhere`'):
        (tmp_path / 'q.yaml').write_text(text.replace('tool_link: panda_hand', 'tool_link: nowhere'))
        load(URDF, tmp_path / 'q.yaml')


def planned(waypoints, secs_per_segment=1.0, n=10):
    """A JointTrajectory through `waypoints` (the first is the start): smoothstep segments of
    `n` points each, with velocities, ending at rest."""
    points = []
    for s, (a, b) in enumerate(zip(waypoints, waypoints[1:])):
        for k in range(1, n + 1):
            u = k / n
            f, df = 3 * u * u - 2 * u ** 3, (6 * u - 6 * u * u) / secs_per_segment
            points.append(Point([x + (y - x) * f for x, y in zip(a, b)],
                                [(y - x) * df for x, y in zip(a, b)], [], [],
                                (s + u) * secs_per_segment))
    points[-1].velocities = [0.0] * len(JOINTS)
    return Trajectory(0.0, list(JOINTS), points)


MOTION = [READY, [0.8, 0.3, -0.6, -1.6, 0.7, 2.2, -0.3], [-0.6, -0.2, 0.5, -2.2, -0.8, 1.2, 1.5],
          READY]


def run(sim, trajectory, secs):
    assert sim.receive_trajectory(trajectory, 0.0) is None
    start = time.perf_counter()
    for k in range(int(round(secs * 100)) + 1):
        sim.update(k * 0.01)
    return sim.report(), time.perf_counter() - start


def test_a_7_joint_trajectory_is_tracked_with_gravity_compensated_by_the_drives():
    # Three segments of 1.5 s through the workspace (joint speeds up to 1.8 rad/s), then 1 s
    # at rest; 100 Hz updates, 1 kHz physics, gravity on and compensated inside the effort limit.
    sim = simulation()
    robot = sim.robot
    sim.set_goal(urdf_fk(READY).tolist(), 0.0)
    r, wall = run(sim, planned(MOTION, 1.5), 5.5)
    print(f"\nPanda, 3 x 1.5 s motion: max tracking error {r['max_tracking_error_rad'] * 1e3:.2f} "
          f"mrad, RMS {r['rms_tracking_error_rad'] * 1e3:.2f} mrad, "
          f"{wall / r['physics_steps'] * 1e6:.1f} us per physics step (with the controller)")
    assert 0 < r['max_tracking_error_rad'] < MAX_TRACKING_RAD, r['max_tracking_error_rad']
    assert 0 < r['rms_tracking_error_rad'] < RMS_TRACKING_RAD, r['rms_tracking_error_rad']
    assert r['positions_rad'] == pytest.approx(READY, abs=1e-4)
    assert r['saturated_updates'] == 0 and r['contacts'] == 0 and r['trajectories_rejected'] == 0
    assert r['goal_reached'] and r['goal_distance_m'] < 1e-3 and len(r['goal_m']) == 3
    assert r['min_clearance_m'] > 0.05, 'the table was never approached'
    level, message, values = status(r, 'sim: arm')
    assert level == 0 and len(dict(values)['positions_rad'].split(', ')) == 7
    assert robot.joint_names == JOINTS


def test_without_gravity_compensation_the_stiff_drives_sag():
    robot, physics = panda()
    physics.gravity_compensation = False
    sim = Simulation(robot, physics, JtcSettings(list(JOINTS)), READY, 0.01, 0.01, FRAME)
    r, _ = run(sim, planned([READY, READY], 0.5), 2.0)
    sag = max(abs(a - b) for a, b in zip(r['positions_rad'], READY))
    assert 1e-3 < sag < 0.02, sag       # gravity / kp: ~8 mrad at joint 4
    sim = simulation()
    r, _ = run(sim, planned([READY, READY], 0.5), 2.0)
    assert max(abs(a - b) for a, b in zip(r['positions_rad'], READY)) < 1e-6


def cube(x=0.40, y=0.0, z=0.50, yaw=math.pi / 6, size=0.12):
    return MarkerIn('box', 0, CUBE, ADD, FRAME, (x, y, z),
                    (0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)), (size, size, size))


SWEEP_START = [-1.0] + READY[1:]
SWEEP_END = [1.0] + READY[1:]
# The same sweep of joint 1 with the shoulder leaned back half way (joint 2 at -1.2 rad).
LEANED = [0.0, -1.2] + READY[2:]


def test_a_sweep_through_a_box_makes_contacts_and_one_around_it_none():
    through = simulation(initial=SWEEP_START)
    assert through.on_markers([cube()], 0.0) is None
    r, _ = run(through, planned([SWEEP_START, SWEEP_END], 2.0), 3.0)
    assert r['contacts'] >= 1 and r['contact_steps'] > 10 and r['max_penetration_m'] > 0
    assert r['min_clearance_m'] < 0
    assert status(r, 'sim: arm')[0] >= 1
    around = simulation(initial=SWEEP_START)
    assert around.on_markers([cube()], 0.0) is None
    r, _ = run(around, planned([SWEEP_START, LEANED, SWEEP_END], 1.0), 3.0)
    assert r['contacts'] == 0 and r['contact_steps'] == 0
    assert 0.01 < r['min_clearance_m'] < 0.1, r['min_clearance_m']
    assert r['positions_rad'] == pytest.approx(SWEEP_END, abs=1e-4)
    assert r['max_tracking_error_rad'] < MAX_TRACKING_RAD


@pytest.mark.parametrize('kind', ['sphere', 'cylinder', 'box'])
def test_each_marker_kind_is_a_3d_geom_that_the_sweep_hits(kind):
    q = (0.0, math.sin(math.pi / 4), 0.0, math.cos(math.pi / 4))   # 90 deg about y: axis along x
    marker = {'sphere': MarkerIn('o', 1, SPHERE, ADD, FRAME, (0.40, 0.0, 0.50), q, (0.16,) * 3),
              'cylinder': MarkerIn('o', 1, CYLINDER, ADD, FRAME, (0.40, 0.0, 0.50), q,
                                   (0.08, 0.08, 0.3)),
              'box': cube()}[kind]
    sim = simulation(initial=SWEEP_START)
    assert sim.on_markers([marker], 0.0) is None
    m = sim.arm.model
    g = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, 'obstacle0')
    assert m.geom_pos[g].tolist() == pytest.approx([0.40, 0.0, 0.50])
    expected = {'sphere': (mujoco.mjtGeom.mjGEOM_SPHERE, [0.08]),
                'cylinder': (mujoco.mjtGeom.mjGEOM_CYLINDER, [0.04, 0.15]),
                'box': (mujoco.mjtGeom.mjGEOM_BOX, [0.06, 0.06, 0.06])}[kind]
    assert m.geom_type[g] == expected[0]
    assert m.geom_size[g][:len(expected[1])].tolist() == pytest.approx(expected[1])
    if kind == 'cylinder':
        axis = sim.arm.data.geom_xmat[g].reshape(3, 3)[:, 2]
        assert np.abs(axis).tolist() == pytest.approx([1.0, 0.0, 0.0], abs=1e-9)
    r, _ = run(sim, planned([SWEEP_START, SWEEP_END], 2.0), 3.0)
    assert r['contacts'] >= 1 and r['obstacles'] == 1


def test_3d_markers_keep_their_height_and_refuse_what_the_planner_refuses():
    s = MarkerSet(FRAME, three_d=True)
    assert s.apply([cube(z=0.9)], 0.0) is None and s.obstacles()[0].center_m == (0.4, 0.0, 0.9)
    for bad, text in [(MarkerIn('o', 2, SPHERE, ADD, FRAME, (0, 0, 1), (0, 0, 0, 1), (0.1, 0.2, 0.1)),
                       'equal diameters'),
                      (MarkerIn('o', 2, CYLINDER, ADD, FRAME, (0, 0, 1), (0, 0, 0, 1), (0.1, 0.2, 0.1)),
                       'scale.x = scale.y'),
                      (MarkerIn('o', 2, CUBE, ADD, FRAME, (0, 0, math.nan), (0, 0, 0, 1), (0.1,) * 3),
                       'not finite'),
                      (MarkerIn('o', 2, 11, ADD, FRAME, (0, 0, 1), (0, 0, 0, 1), (0.1,) * 3),
                       'TRIANGLE_LIST')]:
        error = s.apply([bad], 1.0)
        assert error and text in error and len(s.obstacles()) == 1
    with pytest.raises(ValueError, match='`static_obstacles`'):
        robot, physics = panda()
        Simulation(robot, physics, JtcSettings(list(JOINTS)), READY, 0.01, 0.01, FRAME,
                   [(0.5, 0.0, 0.1)])


def test_the_drives_never_exceed_the_effort_limits():
    # A 0.6 rad step on every joint at once, and the same step into the table: the total
    # drive torque (PD + gravity compensation) reaches each joint's limit and never passes it.
    robot, physics = panda()
    limits = np.array(physics.effort_limits_nm)
    peaks = []
    for target in ([q + 0.6 for q in READY], [0.0, 1.6, 0.0, -0.3, 0.0, 1.571, 0.785]):
        arm = ArmModel(robot, physics, READY)
        arm.set_targets(target, [0.0] * 7)
        peak = np.zeros(7)
        for _ in range(3000):
            arm.step()
            peak = np.maximum(peak, np.abs(arm.actuator_torques()))
        assert all(peak <= limits * (1 + 1e-9)), peak
        peaks.append(peak)
    assert peaks[0].tolist() == pytest.approx(limits.tolist()), 'every joint saturated'
    assert arm.positions() != pytest.approx(target, abs=0.05)
    # The second target is below the table: the arm ends pressed on it, within its limits.
    assert arm.in_contact() and peaks[1][1] == pytest.approx(87.0)


def test_the_shipped_panda_sim_config_builds_the_simulation():
    from mujoco_sim.node import node_sections, read_params
    args = node_sections(['--ros-args', '--params-file', str(ROOT / 'config' / 'sim_panda.yaml')])
    section = yaml.safe_load(open(args[-1]).read())['/**']['ros__parameters']
    kinds = {bool: 'bool', float: 'double', str: 'string'}

    def ros_type(v):
        if isinstance(v, list):
            return 'string_array' if isinstance(v[0], str) else 'double_array'
        return kinds[type(v)]

    params = read_params({k: (ros_type(v), v) for k, v in section.items()})
    robot, physics = load(ROOT / params['model_path'], ROOT / params['physics_file'])
    assert params['joints'] == JOINTS == robot.joint_names
    assert params['initial_positions'] == READY
    sim = Simulation(robot, physics, JtcSettings(params['joints']), params['initial_positions'],
                     1.0 / params['update_rate_hz'], params['goal_tolerance_m'],
                     params['base_frame'], params['static_obstacles'])
    assert sim.markers.base_frame == 'panda_link0' and sim.markers.three_d
