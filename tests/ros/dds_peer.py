"""rclpy peer of tests/ros_smoke.rs: publishes sensor_msgs/JointState on TOPIC_STATES (10 Hz)
until a trajectory_msgs/JointTrajectory arrives on TOPIC_TRAJECTORY, then prints it and exits 0.
Exits 2 after TIMEOUT_SECS without one.

    python dds_peer.py TOPIC_STATES TOPIC_TRAJECTORY TIMEOUT_SECS
"""

import sys
import time

import rclpy
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory


def main():
    states_topic, trajectory_topic, timeout_secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
    rclpy.init()
    node = rclpy.create_node('dp_smoke_peer')
    publisher = node.create_publisher(JointState, states_topic, 10)
    received = []
    node.create_subscription(JointTrajectory, trajectory_topic, received.append, 10)

    def publish():
        msg = JointState()
        msg.header.stamp = node.get_clock().now().to_msg()
        msg.name = ['shoulder', 'elbow']
        msg.position = [0.25, -0.5]
        msg.velocity = [0.0, 0.0]
        publisher.publish(msg)

    node.create_timer(0.1, publish)
    deadline = time.monotonic() + timeout_secs
    while not received and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    if not received:
        print(f'no JointTrajectory on {trajectory_topic} within {timeout_secs} s', file=sys.stderr)
        return 2
    traj = received[0]
    point = traj.points[0]
    print(f'trajectory joints={list(traj.joint_names)} positions={list(point.positions)} '
          f't={point.time_from_start.sec}.{point.time_from_start.nanosec:09d}')
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
