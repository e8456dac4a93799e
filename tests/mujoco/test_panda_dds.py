"""The Panda in the MuJoCo node over DDS, without the planner: `mujoco_sim.node` with
config/sim_panda.yaml, an rclpy peer that publishes a 7-joint trajectory on the controller's
topic and reads /joint_states and /diagnostics until the arm is at the goal. Needs rclpy
(scripts/ros-env.sh); skipped without it unless DP_MUJOCO_DDS_TEST=1. Under 30 s."""

import importlib.util
import math
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT

REQUIRED = os.environ.get('DP_MUJOCO_DDS_TEST') == '1'
JOINTS = [f'panda_joint{i}' for i in range(1, 8)]
READY = [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785]
GOAL = [0.6, -0.4, 0.3, -2.0, 0.5, 2.0, 0.2]


def test_the_panda_node_executes_a_trajectory_over_dds(tmp_path):
    if importlib.util.find_spec('rclpy') is None:
        if REQUIRED:
            pytest.fail('rclpy missing')
        pytest.skip('rclpy missing')
    import rclpy
    from builtin_interfaces.msg import Duration
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import JointState
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint
    from visualization_msgs.msg import Marker, MarkerArray

    ns = f'/dp_mujoco_panda_test_{os.getpid()}'
    log = open(tmp_path / 'sim.log', 'w')
    report = tmp_path / 'report.json'
    sim = subprocess.Popen(
        [sys.executable, '-m', 'mujoco_sim.node', '--ros-args', '-r', f'__ns:={ns}',
         '--params-file', 'config/sim_panda.yaml',
         '-p', 'diagnostics_rate_hz:=5.0', '-p', f'report_file:={report}'],
        stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    rclpy.init(args=[])
    node = rclpy.create_node('mujoco_panda_test', namespace=ns)
    got = {'state': None, 'states': 0, 'arm': {}}

    def on_state(msg):
        got['state'] = msg
        got['states'] += 1

    def on_diag(msg):
        for s in msg.status:
            if s.hardware_id == f'{ns}/diffusion_planner_sim' and s.name.endswith(': arm'):
                got['arm'] = {kv.key: kv.value for kv in s.values}

    node.create_subscription(JointState, 'joint_states', on_state, 50)
    node.create_subscription(DiagnosticArray, '/diagnostics', on_diag, 10)
    pub = node.create_publisher(JointTrajectory,
                                'joint_trajectory_controller/joint_trajectory', 10)
    markers_pub = node.create_publisher(MarkerArray, 'obstacles', 10)

    def box_overhead():
        # A shelf 9.6 cm above the arm in the ready pose (nearer than the table, 14.1 cm).
        m = Marker()
        m.header.frame_id = 'panda_link0'
        m.ns, m.id, m.type, m.action = 'shelf', 1, Marker.CUBE, Marker.ADD
        m.pose.position.x, m.pose.position.y, m.pose.position.z = 0.3, 0.0, 0.9
        m.pose.orientation.w = 1.0
        m.scale.x, m.scale.y, m.scale.z = 0.4, 0.4, 0.05
        markers_pub.publish(MarkerArray(markers=[m]))

    def spin_until(predicate, secs):
        deadline = time.monotonic() + secs
        while time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.02)
            if predicate():
                return True
        return False

    def trajectory():
        msg = JointTrajectory()
        msg.joint_names = list(JOINTS)
        points = []
        for k, secs in ((1, 0.6), (2, 1.2), (3, 1.8)):
            u = k / 3
            s = 3 * u * u - 2 * u ** 3
            p = JointTrajectoryPoint()
            p.positions = [a + (b - a) * s for a, b in zip(READY, GOAL)]
            p.velocities = [0.0] * 7 if k == 3 else \
                [(b - a) * (6 * u - 6 * u * u) / 1.8 for a, b in zip(READY, GOAL)]
            p.time_from_start = Duration(sec=int(secs), nanosec=int(round(secs % 1 * 1e9)))
            points.append(p)
        msg.points = points
        return msg

    try:
        assert spin_until(lambda: got['state'] is not None and got['arm'], 20.0), \
            (tmp_path / 'sim.log').read_text()
        state = got['state']
        assert list(state.name) == JOINTS
        assert list(state.position) == pytest.approx(READY, abs=1e-3), 'held under gravity'
        deadline = time.monotonic() + 5.0
        while got['arm'].get('obstacles') != '1' and time.monotonic() < deadline:
            box_overhead()
            spin_until(lambda: got['arm'].get('obstacles') == '1', 0.5)
        assert got['arm'].get('obstacles') == '1', got['arm']
        # The node's clearance is the one computed here in-process for the same box: the
        # marker's height reached MuJoCo.
        from mujoco_sim.arm import ArmModel, Obstacle
        from mujoco_sim.config import load
        robot, physics = load(ROOT / 'urdf' / 'panda' / 'panda.urdf',
                              ROOT / 'config' / 'mujoco_panda.yaml')
        expected = ArmModel(robot, physics, READY,
                            [Obstacle('box', (0.3, 0.0, 0.9), (0.2, 0.2, 0.025))]).clearance()
        assert 0.09 < expected < 0.1
        assert float(got['arm']['clearance_m']) == pytest.approx(expected, abs=2e-4)
        # Published until the node has taken it (a peer's first message can go before discovery).
        deadline = time.monotonic() + 5.0
        while got['arm'].get('trajectories_accepted', '0') == '0' and time.monotonic() < deadline:
            pub.publish(trajectory())
            spin_until(lambda: got['arm'].get('trajectories_accepted', '0') != '0', 0.5)
        assert got['arm'].get('trajectories_accepted') == '1', got['arm']
        start = time.monotonic()

        def at_goal():
            s = got['state']
            return max(abs(a - b) for a, b in zip(s.position, GOAL)) < 1e-3 and \
                max(abs(v) for v in s.velocity) < 1e-2

        assert spin_until(at_goal, 8.0), list(got['state'].position)
        took = time.monotonic() - start
        assert 1.0 < took < 6.0, took      # a 1.8 s trajectory, on a shared machine
        spin_until(lambda: False, 0.5)
        arm = got['arm']
        assert arm['collisions'] == '0' and arm['trajectories_rejected'] == '0'
        assert arm['simulator'] == 'mujoco'
        assert float(arm['max_tracking_error_rad']) < 0.01, arm['max_tracking_error_rad']
        assert len(arm['positions_rad'].split(', ')) == 7
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        sim.send_signal(signal.SIGINT)
        status = sim.wait(10)
        log.close()
    text = (tmp_path / 'sim.log').read_text()
    assert status == 0 and 'shutting down' in text, text
    import json
    doc = json.loads(report.read_text())
    print(f"\nPanda over DDS: max tracking error {doc['max_tracking_error_rad'] * 1e3:.2f} mrad, "
          f"RMS {doc['rms_tracking_error_rad'] * 1e3:.2f} mrad, late updates "
          f"{doc['late_updates']}, catch-up updates {doc['catch_up_updates']}")
    assert doc['contacts'] == 0 and math.isfinite(doc['rms_tracking_error_rad'])
