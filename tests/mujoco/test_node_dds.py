"""The MuJoCo node alone over DDS: joint states and /clock at the update rate, bad input of
every kind reported in /diagnostics while it keeps running and holds, status 0 on SIGINT.
Needs rclpy (scripts/ros-env.sh); skipped without it unless DP_MUJOCO_DDS_TEST=1."""

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


def test_bad_input_is_reported_and_the_node_keeps_running(tmp_path):
    if importlib.util.find_spec('rclpy') is None:
        if REQUIRED:
            pytest.fail('rclpy missing')
        pytest.skip('rclpy missing')
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import PoseStamped
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import JointState
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint
    from visualization_msgs.msg import Marker, MarkerArray

    ns = f'/dp_mujoco_node_test_{os.getpid()}'
    log = open(tmp_path / 'sim.log', 'w')
    sim = subprocess.Popen(
        [sys.executable, '-m', 'mujoco_sim.node', '--ros-args', '-r', f'__ns:={ns}',
         '--params-file', str(ROOT / 'config' / 'sim_planar_arm.yaml'),
         '-p', 'model_path:=synthetic', '-p', 'publish_clock:=true',
         '-p', 'update_rate_hz:=500.0', '-p', 'diagnostics_rate_hz:=10.0'],
        stdout=log, stderr=subprocess.STDOUT)
    rclpy.init(args=[])
    node = rclpy.create_node('mujoco_node_test', namespace=ns)
    got = {'states': 0, 'clock': 0.0, 'arm': {}, 'inputs': None, 'last_state': None}

    def on_diag(msg):
        for s in msg.status:
            if s.hardware_id == f'{ns}/diffusion_planner_sim':
                if s.name == 'diffusion_planner_sim: arm':
                    got['arm'] = {kv.key: kv.value for kv in s.values}
                    got['arm_level'] = s.level[0] if isinstance(s.level, bytes) else s.level
                    got['arm_message'] = s.message
                elif s.name == 'diffusion_planner_sim: inputs':
                    got['inputs'] = (s.level[0] if isinstance(s.level, bytes) else s.level,
                                     s.message)

    def on_state(msg):
        got['states'] += 1
        got['last_state'] = msg

    node.create_subscription(DiagnosticArray, '/diagnostics', on_diag, 10)
    node.create_subscription(JointState, 'joint_states', on_state, 100)
    node.create_subscription(Clock, '/clock', lambda m: got.update(
        clock=m.clock.sec + m.clock.nanosec * 1e-9), 10)
    traj_pub = node.create_publisher(JointTrajectory,
                                     'joint_trajectory_controller/joint_trajectory', 10)
    markers_pub = node.create_publisher(MarkerArray, 'obstacles', 10)
    goal_pub = node.create_publisher(PoseStamped, 'goal', 10)

    def spin_until(predicate, secs, action=None):
        deadline = time.monotonic() + secs
        last = 0.0
        while time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.02)
            if predicate():
                return True
            if action and time.monotonic() - last > 0.3:
                action()
                last = time.monotonic()
        return False

    def bad_trajectory():
        msg = JointTrajectory()
        msg.joint_names = ['shoulder', 'elbow']
        point = JointTrajectoryPoint()
        point.positions = [math.nan, 0.0]
        point.time_from_start.sec = 1
        msg.points = [point]
        traj_pub.publish(msg)

    def bad_markers():
        m = Marker()
        m.header.frame_id = 'base_link'
        m.ns, m.id, m.type, m.action = 'bad', 3, Marker.TRIANGLE_LIST, Marker.ADD
        m.scale.x = m.scale.y = m.scale.z = 0.1
        markers_pub.publish(MarkerArray(markers=[m]))

    def bad_goal():
        g = PoseStamped()
        g.header.frame_id = 'map'
        g.pose.position.x = 0.5
        goal_pub.publish(g)

    try:
        assert spin_until(lambda: got['arm'], 30.0), (tmp_path / 'sim.log').read_text()
        start = (got['clock'], got['states'])
        assert spin_until(lambda: got['arm'].get('trajectories_rejected', '0') != '0', 10.0,
                          bad_trajectory)
        assert spin_until(lambda: got['inputs'] and 'TRIANGLE_LIST' in got['inputs'][1], 10.0,
                          bad_markers)
        assert spin_until(lambda: got['inputs'] and 'frame `map`' in got['inputs'][1], 10.0,
                          bad_goal)
        assert got['inputs'][0] == 2 and '`bad`/3' in got['inputs'][1]
        arm = got['arm']
        assert 'non_finite' in arm['rejected_by_rule'] and arm['simulator'] == 'mujoco'
        assert got['arm_level'] == 1 and 'holding' in got['arm_message']
        # Still running, at 500 Hz of sim time, holding the start.
        spin_until(lambda: False, 1.0)
        sim_secs = got['clock'] - start[0]
        states = got['states'] - start[1]
        assert sim_secs > 0.5 and states == pytest.approx(sim_secs * 500, rel=0.2)
        assert list(got['last_state'].position) == pytest.approx([-0.3, 0.6], abs=1e-4)
        assert list(got['last_state'].name) == ['shoulder', 'elbow']
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        sim.send_signal(signal.SIGINT)
        status = sim.wait(10)
        log.close()
    text = (tmp_path / 'sim.log').read_text()
    assert status == 0 and 'shutting down' in text, text
