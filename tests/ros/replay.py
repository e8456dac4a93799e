"""Live replay harness: plays a rosbag2 bag into the running node over DDS and records what the
node publishes, like `ros2 bag play --clock` next to `ros2 bag record --use-sim-time`.

    python replay.py BAG --out OUT [--namespace /ns] [--rate 1.0] [--clock-hz 200]
                     [--settle 0.25] [--wait 30] [--report summary.json]

- Every message of BAG is published with its recorded timing (bag time runs at `--rate` times
  wall time), as the serialized bytes of the bag (no re-encoding), on its topic resolved in
  `--namespace` (`/joint_states` -> `/ns/joint_states`). Start the node with
  `use_sim_time:=true` in that namespace.
- `/clock` carries the bag time `--clock-hz` times per second of bag time (best effort, depth 1,
  as rosbag2's player), never ahead of the messages already published; before the first message
  it holds the bag's start time for a moment so the node's clock starts there.
- It starts when the node is discovered (each input topic has a subscriber, each output a
  publisher; at most `--wait` seconds) and stops `--settle` seconds of bag time after the last
  message.
- OUT is a rosbag2 bag (MCAP, written with rosbags): the input messages at their bag times and
  the node's `joint_trajectory`, `diffusion_planner/candidates` and `/diagnostics`, each at the
  `/clock` time last published when it arrived, under the names the node has in the root
  namespace (so live and offline replays, `dplan replay`, name them alike).
"""

import argparse
import importlib
import json
import pathlib
import sys
import threading
import time

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore
from rosgraph_msgs.msg import Clock

OUTPUTS = [
    ('joint_trajectory', 'trajectory_msgs/msg/JointTrajectory'),
    ('diffusion_planner/candidates', 'visualization_msgs/msg/MarkerArray'),
    ('/diagnostics', 'diagnostic_msgs/msg/DiagnosticArray'),
]
RELIABLE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                      reliability=ReliabilityPolicy.RELIABLE)
CLOCK_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                       reliability=ReliabilityPolicy.BEST_EFFORT)


def message_class(type_name):
    package, _, name = type_name.split('/')
    return getattr(importlib.import_module(f'{package}.msg'), name)


def resolve(name, namespace):
    """A topic name as the node in `namespace` has it (absolute names stay)."""
    if name.startswith('/'):
        return name
    return namespace.rstrip('/') + '/' + name


def in_namespace(topic, namespace):
    """A recorded absolute topic name moved into `namespace`."""
    return namespace.rstrip('/') + topic if topic.startswith('/') else resolve(topic, namespace)


class Replay:
    def __init__(self, args):
        self.args = args
        self.node = rclpy.create_node('dp_bag_replay')
        with AnyReader([args.bag]) as reader:
            self.connections = {c.id: c for c in reader.connections}
            self.messages = [(t, c.id, bytes(raw)) for c, t, raw in reader.messages()]
        if not self.messages:
            raise SystemExit(f'{args.bag}: no messages')
        self.publishers = {}
        for c in self.connections.values():
            if c.topic == '/clock':
                continue  # replaced by our own, as `ros2 bag play --clock` does
            self.publishers[c.id] = self.node.create_publisher(
                message_class(c.msgtype), in_namespace(c.topic, args.namespace), RELIABLE)
        self.clock_pub = self.node.create_publisher(Clock, '/clock', CLOCK_QOS)
        self.lock = threading.Lock()
        self.clock_ns = 0
        self.received = []  # (output index, bag time ns, bytes)
        self.subscriptions = []
        for k, (name, type_name) in enumerate(OUTPUTS):
            self.subscriptions.append(self.node.create_subscription(
                message_class(type_name), resolve(name, args.namespace),
                lambda raw, k=k: self.on_output(k, raw), RELIABLE, raw=True))
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.spinning = True
        self.spinner = threading.Thread(target=self.spin, daemon=True)
        self.spinner.start()

    def spin(self):
        while self.spinning:
            self.executor.spin_once(timeout_sec=0.01)

    def on_output(self, k, raw):
        with self.lock:
            self.received.append((k, self.clock_ns, bytes(raw)))

    def publish_clock(self, t_ns):
        msg = Clock()
        msg.clock.sec = t_ns // 10**9
        msg.clock.nanosec = t_ns % 10**9
        with self.lock:
            self.clock_ns = t_ns
        self.clock_pub.publish(msg)

    def wait_for_node(self):
        deadline = time.monotonic() + self.args.wait
        while time.monotonic() < deadline:
            inputs = all(p.get_subscription_count() > 0 for p in self.publishers.values())
            outputs = all(self.node.count_publishers(s.topic_name) > 0
                          for s in self.subscriptions)
            if inputs and outputs:
                return True
            time.sleep(0.05)
        return False

    def play(self):
        rate = self.args.rate
        start_ns = self.messages[0][0]
        end_ns = self.messages[-1][0] + round(self.args.settle * 1e9)
        step_ns = round(1e9 / self.args.clock_hz)
        # The node's clock starts at the bag's start before anything else arrives.
        for _ in range(10):
            self.publish_clock(start_ns)
            time.sleep(0.02)
        wall0 = time.monotonic()
        index = 0
        next_clock = start_ns
        lag_max = 0.0
        while True:
            cursor = start_ns + round((time.monotonic() - wall0) * rate * 1e9)
            while index < len(self.messages) and self.messages[index][0] <= cursor:
                _, cid, raw = self.messages[index]
                if cid in self.publishers:
                    self.publishers[cid].publish(raw)
                index += 1
            if cursor >= next_clock:
                stamp = min(cursor - cursor % step_ns, end_ns)
                lag_max = max(lag_max, (cursor - stamp) / 1e9)
                self.publish_clock(stamp)
                next_clock = stamp + step_ns
            if cursor >= end_ns:
                break
            upcoming = next_clock
            if index < len(self.messages):
                upcoming = min(upcoming, self.messages[index][0])
            delay = (upcoming - cursor) / 1e9 / rate
            if delay > 0:
                time.sleep(min(delay, 0.01))
        # Whatever is still in flight.
        time.sleep(0.2)
        return {'bag_secs': (end_ns - start_ns) / 1e9, 'wall_secs': time.monotonic() - wall0,
                'messages': index}

    def write(self, out):
        ts = get_typestore(Stores.ROS2_JAZZY)
        writer = Writer(out, version=9, storage_plugin=StoragePlugin.MCAP)
        writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
        counts = {}
        with writer:
            copied = {cid: writer.add_connection(c.topic, c.msgtype, msgdef=c.msgdef.data,
                                                 rihs01=c.digest)
                      for cid, c in self.connections.items()}
            outputs = [writer.add_connection(resolve(name, '/'), type_name, typestore=ts)
                       for name, type_name in OUTPUTS]
            with self.lock:
                received = list(self.received)
            records = [(t, copied[cid], raw) for t, cid, raw in self.messages]
            records += [(t, outputs[k], raw) for k, t, raw in received]
            records.sort(key=lambda r: r[0])
            for t, connection, raw in records:
                writer.write(connection, t, raw)
                counts[connection.id] = counts.get(connection.id, 0) + 1
            # rosbags 0.11.9 counts each message twice in metadata.yaml; set the true counts.
            writer.counts.update(counts)
        return {c.topic: counts.get(c.id, 0) for c in list(copied.values()) + outputs}

    def close(self):
        self.spinning = False
        self.spinner.join(timeout=2.0)
        self.executor.shutdown()
        self.node.destroy_node()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('bag', type=pathlib.Path)
    parser.add_argument('--out', type=pathlib.Path, required=True)
    parser.add_argument('--namespace', default='/')
    parser.add_argument('--rate', type=float, default=1.0)
    parser.add_argument('--clock-hz', type=float, default=200.0)
    parser.add_argument('--settle', type=float, default=0.25)
    parser.add_argument('--wait', type=float, default=30.0)
    parser.add_argument('--report', type=pathlib.Path)
    args = parser.parse_args()
    if not args.rate > 0 or not args.clock_hz > 0:
        parser.error('--rate and --clock-hz must be positive')
    rclpy.init()
    replay = Replay(args)
    try:
        if not replay.wait_for_node():
            print(f'replay: the node was not discovered within {args.wait} s', file=sys.stderr)
            return 2
        summary = replay.play()
    finally:
        replay.close()
        rclpy.shutdown()
    summary['counts'] = replay.write(args.out)
    print(json.dumps(summary))
    if args.report:
        args.report.write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
