"""The closed loop in physics over DDS: the real node binary (`diffusion_planner`, feature
`ros`) plans, the MuJoCo simulator (`mujoco_sim.node`) executes, on the scenes of a kinematic
`dplan closed-loop` run, and the figures of both stand side by side.

    scripts/closed-loop-mujoco --kinematic-json k.json [--scenes N] [--json out.json] ...

(`dplan closed-loop --model M --scenes N --seed S --json k.json` first: each `per_scene[i]`
carries its `scene`: start, goal, obstacles.) The simulator runs once, owning the time
(`publish_clock`, the node on `use_sim_time`). Per scene: the node from the previous scene is
stopped (SIGINT), the simulator is reset to the scene's start (`~/reset`) and given the
obstacles (cylinders; DELETEALL + ADD), a fresh node process starts (so no state carries over,
as `dplan closed-loop` starts each scene with a new node core), the goal is published until
both have it, and the scene ends when the simulator reports the goal reached (end effector
within the tolerance, joints at rest) or after `--timeout-secs` of simulated time from the goal.
Recorded from the simulator's /diagnostics: success, contacts with obstacles (MuJoCo's, episodes
and physics steps), minimum distance (mj_geomDistance), tracking error max and RMS, time to
goal, trajectories rejected by the controller front end.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--kinematic-json', required=True, type=Path,
                   help='report of `dplan closed-loop --json` whose scenes to run')
    p.add_argument('--scenes', type=int, default=0, help='run the first N scenes (0: all)')
    p.add_argument('--json', type=Path, help='write the report here')
    p.add_argument('--node-binary', type=Path,
                   default=Path(os.environ.get('DP_NODE_BINARY',
                                               ROOT / 'target' / 'debug' / 'diffusion_planner')))
    p.add_argument('--model', default=None,
                   help='model_path of node and simulator (default: the kinematic run\'s model)')
    p.add_argument('--params', type=Path, default=ROOT / 'config' / 'planar_arm.yaml')
    p.add_argument('--sim-params', type=Path, default=ROOT / 'config' / 'sim_planar_arm.yaml')
    p.add_argument('--physics-file', type=Path, default=ROOT / 'config' / 'mujoco_planar_arm.yaml')
    p.add_argument('--timeout-secs', type=float, default=20.0,
                   help='simulated seconds from the goal before a scene fails')
    p.add_argument('--real-time-factor', type=float, default=1.0)
    p.add_argument('--logs', type=Path, default=None, help='folder for the processes\' logs')
    p.add_argument('--progress', action='store_true', help='a line per scene on stderr')
    return p.parse_args(argv)


def percentile(values, q):
    if not values:
        return None
    v = sorted(values)
    rank = q / 100.0 * (len(v) - 1)
    lo, hi = math.floor(rank), math.ceil(rank)
    return v[lo] + (v[hi] - v[lo]) * (rank - lo)


class Peer:
    """The rclpy side of the harness: obstacles, goals, resets out; /diagnostics in."""

    def __init__(self, namespace):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PoseStamped
        from sensor_msgs.msg import JointState
        from visualization_msgs.msg import MarkerArray
        self.rclpy = rclpy
        rclpy.init(args=[])
        self.node = rclpy.create_node('mujoco_closed_loop', namespace=namespace)
        self.goal_pub = self.node.create_publisher(PoseStamped, 'goal', 10)
        self.obstacles_pub = self.node.create_publisher(MarkerArray, 'obstacles', 10)
        self.reset_pub = self.node.create_publisher(JointState, 'diffusion_planner_sim/reset', 10)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self.on_diagnostics, 50)
        self.sim_id = f'{namespace}/diffusion_planner_sim'
        self.node_id = f'{namespace}/diffusion_planner'
        self.sim_arm = {}
        self.sim_arm_seq = 0
        self.node_inputs = {}
        self.node_statuses = {}

    def on_diagnostics(self, msg):
        for s in msg.status:
            values = {kv.key: kv.value for kv in s.values}
            if s.hardware_id == self.sim_id and s.name.endswith(': arm'):
                self.sim_arm = values
                self.sim_arm_seq += 1
            elif s.hardware_id == self.node_id:
                self.node_statuses[s.name] = (s.level, s.message, values)
                if s.name.endswith(': inputs'):
                    self.node_inputs = values

    def spin(self, secs=0.02):
        self.rclpy.spin_once(self.node, timeout_sec=secs)

    def wait(self, predicate, wall_secs, every=None, action=None):
        deadline = time.monotonic() + wall_secs
        last = 0.0
        while time.monotonic() < deadline:
            self.spin()
            if predicate():
                return True
            if action is not None and time.monotonic() - last > every:
                action()
                last = time.monotonic()
        return predicate()

    def reset(self, names, positions):
        from sensor_msgs.msg import JointState
        msg = JointState()
        msg.name = list(names)
        msg.position = [float(v) for v in positions]
        self.reset_pub.publish(msg)

    def obstacles(self, obstacles):
        from visualization_msgs.msg import Marker, MarkerArray
        clear = Marker()
        clear.action = Marker.DELETEALL
        markers = [clear]
        for i, o in enumerate(obstacles):
            m = Marker()
            m.header.frame_id = 'base_link'
            m.ns = 'scene'
            m.id = i
            m.type = Marker.CYLINDER
            m.action = Marker.ADD
            m.pose.position.x, m.pose.position.y = o['center_m']
            m.pose.orientation.w = 1.0
            m.scale.x = m.scale.y = 2.0 * o['radius_m']
            m.scale.z = 0.2
            markers.append(m)
        self.obstacles_pub.publish(MarkerArray(markers=markers))

    def goal(self, goal_m):
        from geometry_msgs.msg import PoseStamped
        msg = PoseStamped()
        msg.header.frame_id = 'base_link'
        msg.pose.position.x, msg.pose.position.y = goal_m
        msg.pose.orientation.w = 1.0
        self.goal_pub.publish(msg)

    def close(self):
        self.node.destroy_node()
        self.rclpy.try_shutdown()


def stop(proc, secs=10.0):
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(secs)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def fnum(values, key):
    try:
        return float(values[key])
    except (KeyError, ValueError):
        return None


def run(args):
    kinematic = json.loads(args.kinematic_json.read_text())
    scenes = kinematic['per_scene']
    if args.scenes:
        scenes = scenes[:args.scenes]
    if not scenes or 'scene' not in scenes[0]:
        sys.exit(f'{args.kinematic_json}: no per_scene[].scene (a dplan closed-loop report of '
                 'this version)')
    model = args.model or kinematic['model']
    if not args.node_binary.exists():
        sys.exit(f'no node binary at {args.node_binary} (cargo build --features ros; or '
                 '--node-binary / DP_NODE_BINARY)')
    namespace = f'/dp_mujoco_loop_{os.getpid()}'
    logs = args.logs or Path(tempfile.mkdtemp(prefix='mujoco-loop-'))
    logs.mkdir(parents=True, exist_ok=True)
    ros = ['--ros-args', '-r', f'__ns:={namespace}']
    start0 = scenes[0]['scene']['start_rad']
    sim_log = open(logs / 'sim.log', 'w')
    sim = subprocess.Popen(
        [sys.executable, '-m', 'mujoco_sim.node'] + ros +
        ['--params-file', str(args.sim_params), '-p', f'model_path:={model}',
         '-p', 'publish_clock:=true', '-p', f'real_time_factor:={float(args.real_time_factor)}',
         '-p', 'diagnostics_rate_hz:=10.0', '-p', f'physics_file:={args.physics_file}',
         '-p', f'initial_positions:=[{start0[0]!r}, {start0[1]!r}]'],
        stdout=sim_log, stderr=subprocess.STDOUT)
    peer = Peer(namespace)
    joints = ['shoulder', 'elbow']
    results = []
    wall_start = time.monotonic()
    node = None
    try:
        if not peer.wait(lambda: peer.sim_arm_seq > 0, 60.0):
            raise RuntimeError(f'the MuJoCo simulator did not report (log: {logs / "sim.log"})')
        for k, entry in enumerate(scenes):
            scene = entry['scene']
            results.append(run_scene(args, peer, scene, entry, joints, model, ros, logs, k))
            if args.progress:
                r = results[-1]
                print(f'scene {k + 1}/{len(scenes)} draw {entry["draw"]}: '
                      f'{"ok" if r["success"] else "FAILED"} contacts {r["contacts"]} '
                      f'ttg {r["time_to_goal_secs"]} clearance {r["min_clearance_m"]} '
                      f'track {r["max_tracking_error_rad"]} ({time.monotonic() - wall_start:.0f} s)',
                      file=sys.stderr, flush=True)
    finally:
        peer.close()
        sim_status = stop(sim)
        sim_log.close()
    report = summarize(args, kinematic, model, results, time.monotonic() - wall_start)
    report['simulator_exit_status'] = sim_status
    report['logs'] = str(logs)
    return report


def run_scene(args, peer, scene, entry, joints, model, ros, logs, k):
    start, goal = scene['start_rad'], scene['goal_m']
    n_obstacles = len(scene['obstacles'])
    # 1. The simulator without obstacles, then with the scene's (each step confirmed by its
    # obstacle count), then at the start (the reset restarts every counter, so the clearance
    # and contacts of this scene count only from here).
    if not peer.wait(lambda: peer.sim_arm.get('obstacles') == '0', 20.0, every=0.3,
                     action=lambda: peer.obstacles([])):
        raise RuntimeError(f'scene {k}: the simulator did not clear its obstacles: {peer.sim_arm}')
    if not peer.wait(lambda: peer.sim_arm.get('obstacles') == str(n_obstacles), 20.0, every=0.3,
                     action=lambda: peer.obstacles(scene['obstacles'])):
        raise RuntimeError(f'scene {k}: the simulator did not take the obstacles: {peer.sim_arm}')
    at_start = lambda: (peer.sim_arm.get('goals_received') == '0' and  # noqa: E731
                        _close(peer.sim_arm.get('positions_rad', ''), start))
    peer.sim_arm = {}
    if not peer.wait(at_start, 20.0, every=0.5, action=lambda: peer.reset(joints, start)):
        raise RuntimeError(f'scene {k}: the simulator did not reset to {start}: {peer.sim_arm}')
    # 2. A fresh node.
    log = open(logs / f'node_{k:03d}.log', 'w')
    node = subprocess.Popen(
        [str(args.node_binary)] + ros +
        ['--params-file', str(args.params), '-p', f'model_path:={model}', '-p', 'device:=cpu',
         '-p', 'use_sim_time:=true', '-r',
         'joint_trajectory:=joint_trajectory_controller/joint_trajectory'],
        stdout=log, stderr=subprocess.STDOUT)
    def node_died():
        if node.poll() is not None:
            log.flush()
            tail = (logs / f'node_{k:03d}.log').read_text()[-2000:]
            raise RuntimeError(f'scene {k}: the node exited with status {node.returncode}:\n{tail}')
        return False

    try:
        peer.node_inputs = {}
        ok = peer.wait(lambda: node_died() or peer.node_inputs.get('obstacles') == str(n_obstacles),
                       60.0, every=0.3, action=lambda: peer.obstacles(scene['obstacles']))
        if not ok:
            raise RuntimeError(f'scene {k}: the node did not take the obstacles '
                               f'({logs / f"node_{k:03d}.log"})')
        # 3. The goal, until both have it.
        have_goal = lambda: (peer.sim_arm.get('goals_received', '0') != '0' and  # noqa: E731
                             peer.node_inputs.get('goal_m', 'n/a') not in ('', 'n/a', 'none'))
        peer.wait(have_goal, 20.0, every=0.3, action=lambda: peer.goal(goal))
        goal_sim_secs = fnum(peer.sim_arm, 'sim_time_s') or 0.0

        def done():
            node_died()
            a = peer.sim_arm
            t = fnum(a, 'sim_time_s') or 0.0
            return a.get('goal_reached') == 'true' or t - goal_sim_secs > args.timeout_secs
        wall_limit = 4.0 * args.timeout_secs / args.real_time_factor + 30.0
        peer.wait(done, wall_limit)
        a = dict(peer.sim_arm)
    finally:
        node_status = stop(node)
        log.close()
    kin = {key: entry.get(key) for key in ('success', 'collisions', 'min_clearance_m',
                                           'time_to_goal_secs', 'max_tracking_error_rad',
                                           'rejected_trajectories')}
    return {
        'draw': entry['draw'],
        'success': a.get('goal_reached') == 'true',
        'time_to_goal_secs': fnum(a, 'time_to_goal_s'),
        'contacts': int(a.get('collisions', '0')),
        'contact_steps': int(a.get('contact_steps', '0')),
        'max_penetration_m': fnum(a, 'max_penetration_m'),
        'min_clearance_m': fnum(a, 'min_clearance_m'),
        'max_tracking_error_rad': fnum(a, 'max_tracking_error_rad'),
        'rms_tracking_error_rad': fnum(a, 'rms_tracking_error_rad'),
        'saturated_updates': int(a.get('saturated_updates', '0')),
        'rejected_trajectories': int(a.get('trajectories_rejected', '0')),
        'accepted_trajectories': int(a.get('trajectories_accepted', '0')),
        'final_goal_distance_m': fnum(a, 'goal_distance_m'),
        'sim_secs_from_goal': (fnum(a, 'sim_time_s') or 0.0) - goal_sim_secs,
        'node_exit_status': node_status,
        'kinematic': kin,
        'scene': scene,
    }


def _close(text, values, tol=1e-3):
    try:
        found = [float(v) for v in text.split(',')]
    except ValueError:
        return False
    return len(found) == len(values) and all(abs(a - b) <= tol for a, b in zip(found, values))


def summarize(args, kinematic, model, results, wall_secs):
    n = len(results)
    ttg = [r['time_to_goal_secs'] for r in results if r['success']]
    clear = [r['min_clearance_m'] for r in results if r['min_clearance_m'] is not None]
    track = [r['max_tracking_error_rad'] for r in results if r['max_tracking_error_rad'] is not None]
    rms = [r['rms_tracking_error_rad'] for r in results if r['rms_tracking_error_rad'] is not None]
    kin = [r['kinematic'] for r in results]
    kttg = [k['time_to_goal_secs'] for k in kin if k['success']]
    kclear = [k['min_clearance_m'] for k in kin if k['min_clearance_m'] is not None]
    return {
        'simulator': 'mujoco',
        'model': model,
        'seed': kinematic.get('seed'),
        'scenes': n,
        'timeout_secs': args.timeout_secs,
        'real_time_factor': args.real_time_factor,
        'wall_secs': wall_secs,
        'mujoco': {
            'success_rate': sum(r['success'] for r in results) / n if n else None,
            'contacts': sum(r['contacts'] for r in results),
            'scenes_with_contacts': sum(r['contacts'] > 0 for r in results),
            'min_clearance_m': min(clear) if clear else None,
            'max_tracking_error_rad': max(track) if track else None,
            'rms_tracking_error_rad': math.sqrt(sum(x * x for x in rms) / len(rms)) if rms else None,
            'time_to_goal_p50_secs': percentile(ttg, 50),
            'time_to_goal_p90_secs': percentile(ttg, 90),
            'rejected_trajectories': sum(r['rejected_trajectories'] for r in results),
            'saturated_updates': sum(r['saturated_updates'] for r in results),
        },
        'kinematic': {
            'success_rate': sum(bool(k['success']) for k in kin) / n if n else None,
            'collisions': sum(k['collisions'] or 0 for k in kin),
            'scenes_with_collisions': sum((k['collisions'] or 0) > 0 for k in kin),
            'min_clearance_m': min(kclear) if kclear else None,
            'max_tracking_error_rad': max((k['max_tracking_error_rad'] or 0.0) for k in kin)
            if kin else None,
            'time_to_goal_p50_secs': percentile(kttg, 50),
            'time_to_goal_p90_secs': percentile(kttg, 90),
            'rejected_trajectories': sum(k['rejected_trajectories'] or 0 for k in kin),
        },
        'per_scene': results,
    }


def table(report):
    m, k = report['mujoco'], report['kinematic']

    def f(v, fmt):
        return 'n/a' if v is None else format(v, fmt)
    rows = [
        ('success rate', f(m['success_rate'], '.3f'), f(k['success_rate'], '.3f')),
        ('contacts / collisions (episodes)', f'{m["contacts"]} (in {m["scenes_with_contacts"]} scenes)',
         f'{k["collisions"]} (in {k["scenes_with_collisions"]} scenes)'),
        ('min clearance', f(m['min_clearance_m'] and m['min_clearance_m'] * 1000, '.1f') + ' mm',
         f(k['min_clearance_m'] and k['min_clearance_m'] * 1000, '.1f') + ' mm'),
        ('tracking error max', f(m['max_tracking_error_rad'], '.4f') + ' rad',
         f(k['max_tracking_error_rad'], '.4f') + ' rad'),
        ('tracking error RMS (while moving)', f(m['rms_tracking_error_rad'], '.4f') + ' rad', '–'),
        ('time to goal p50 / p90', f'{f(m["time_to_goal_p50_secs"], ".2f")} / '
         f'{f(m["time_to_goal_p90_secs"], ".2f")} s',
         f'{f(k["time_to_goal_p50_secs"], ".2f")} / {f(k["time_to_goal_p90_secs"], ".2f")} s'),
        ('trajectories rejected by the controller', str(m['rejected_trajectories']),
         str(k['rejected_trajectories'])),
    ]
    lines = [f'closed loop over DDS, {report["scenes"]} scenes of seed {report["seed"]}, model '
             f'{report["model"]} ({report["wall_secs"]:.0f} s wall)', '',
             '| | MuJoCo (physics, DDS) | kinematic (`dplan closed-loop`) |', '|---|---|---|']
    lines += [f'| {a} | {b} | {c} |' for a, b, c in rows]
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    report = run(args)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + '\n')
    print(table(report))
    m = report['mujoco']
    return 0 if m['contacts'] == 0 and (m['success_rate'] or 0) >= 0.98 else 2


if __name__ == '__main__':
    sys.exit(main())
