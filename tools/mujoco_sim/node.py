"""`diffusion_planner_sim` on MuJoCo: the rclpy node behind the same interface as the Rust
simulator (src/ros/sim/app.rs, docs/SIM.md), a drop-in replacement for it.

    python -m mujoco_sim.node [--check-params] --ros-args --params-file config/sim_planar_arm.yaml \\
        [-p physics_file:=config/mujoco_planar_arm.yaml] ...

(after `source scripts/ros-env.sh; source scripts/mujoco-env.sh`; `scripts/mujoco-sim` does
both). The Panda: `--params-file config/sim_panda.yaml` (model_path urdf/panda/panda.urdf,
physics_file config/mujoco_panda.yaml; goals (x, y, z) of its tool link). Topics: in `joint_trajectory_controller/joint_trajectory`, `obstacles`, `goal`, and
`~/reset` (sensor_msgs/JointState: the arm at rest at `position`, controller order, every
counter restarted; MuJoCo only, for the closed loop); out `joint_states` (every update),
`/clock` (with `publish_clock`), `/diagnostics` (`<name>: arm`, `<name>: inputs`). Parameters:
those of diffusion_planner_sim (same keys, types and checks) plus `physics_file` and
`report_file` (at shutdown, `Simulation.report()` of the run as JSON there; '' = none). Bad
input never stops the node: rejected trajectories, obstacles and goals are reported in
/diagnostics. SIGINT ends it with status 0 after a summary line (and the report file); a second
SIGINT exits at once (130).
"""

from __future__ import annotations

import math
import os
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NODE_NAME = 'diffusion_planner_sim'
DEFAULT_PHYSICS_FILE = ROOT / 'config' / 'mujoco_planar_arm.yaml'
# Problems from an event (a bad goal) stay in /diagnostics this long, seconds (as the Rust node).
EVENT_EXPIRY_SECS = 3.0

# key: (ROS type name, default; None = required)
PARAMETERS = {
    'model_path': ('string', None),
    'joints': ('string_array', None),
    'initial_positions': ('double_array', 'zeros'),
    'update_rate_hz': ('double', 100.0),
    'publish_clock': ('bool', False),
    'real_time_factor': ('double', 1.0),
    'acceleration_limit_scale': ('double', 1.0),
    'interpolate_from_desired_state': ('bool', True),
    'allow_partial_joints_goal': ('bool', False),
    'allow_nonzero_velocity_at_trajectory_end': ('bool', False),
    'base_frame': ('string', 'base_link'),
    'goal_tolerance_m': ('double', 0.02),
    'diagnostics_rate_hz': ('double', 2.0),
    'static_obstacles': ('double_array', []),
    'use_sim_time': ('bool', False),
    'physics_file': ('string', str(DEFAULT_PHYSICS_FILE)),
    # MuJoCo only: at shutdown, the run's report (contacts, tracking error, ...) as JSON here
    # ('' = none); scripts/demo merges it into its summary.
    'report_file': ('string', ''),
}


# Declared by rclpy itself for every node.
RCLPY_PARAMETERS = ('start_type_description_service',)


def read_params(values):
    """Validates the parameters (`values`: key -> (ROS type name, value)) as
    diffusion_planner_sim does; returns a dict or raises ValueError naming every bad key."""
    problems = []
    out = {}
    values = {k: v for k, v in values.items() if k not in RCLPY_PARAMETERS}
    for key in values:
        if key not in PARAMETERS:
            problems.append(f'`{key}`: unknown parameter; the simulator accepts: '
                            f'{", ".join(PARAMETERS)}')
    for key, (kind, default) in PARAMETERS.items():
        if key not in values or values[key][0] == 'not_set':
            if key in values and key not in ('static_obstacles', 'initial_positions'):
                problems.append(f'`{key}`: has no value (an empty list has no type in ROS 2)')
            if default is None:
                problems.append(f'`{key}`: required')
            out[key] = default
            continue
        found, value = values[key]
        if found != kind:
            hint = ''
            if kind == 'double' and found == 'integer':
                hint = f' (write {value}.0)'
            article = 'an' if found[0] in 'aeiou' else 'a'
            problems.append(f'`{key}`: must be a {kind.replace("_", " ")}, found {article} '
                            f'{found.replace("_", " ")}{hint}')
            out[key] = default
            continue
        out[key] = list(value) if kind.endswith('array') else value
    if out['initial_positions'] == 'zeros':
        out['initial_positions'] = [0.0] * len(out['joints'] or [])

    def ok(key):
        return not any(p.startswith(f'`{key}`') for p in problems)

    for key in ('update_rate_hz', 'real_time_factor', 'acceleration_limit_scale',
                'goal_tolerance_m', 'diagnostics_rate_hz'):
        v = out[key]
        if ok(key) and not (isinstance(v, float) and math.isfinite(v) and v > 0):
            problems.append(f'`{key}`: must be finite and > 0, found {v}')
    if ok('model_path') and out['model_path'] is not None and not out['model_path'].strip():
        problems.append('`model_path`: is empty; give a model folder, a YAML file with `robot:` '
                        'or `synthetic`')
    joints = out['joints'] or []
    if ok('joints') and out['joints'] is not None:
        if not joints or any(not j.strip() for j in joints) or len(set(joints)) != len(joints):
            problems.append(f'`joints`: must be non-empty names, each once, found {joints}')
    if ok('initial_positions') and ok('joints') and len(out['initial_positions']) != len(joints):
        problems.append(f'`initial_positions`: has {len(out["initial_positions"])} values for '
                        f'{len(joints)} joints')
    if ok('initial_positions') and not all(math.isfinite(v) for v in out['initial_positions']):
        problems.append('`initial_positions`: must be finite')
    if ok('real_time_factor') and not out['publish_clock'] and out['real_time_factor'] != 1.0:
        problems.append(f'`real_time_factor`: is {out["real_time_factor"]} but publish_clock is '
                        'false: on the system clock the simulation runs in real time')
    if ok('acceleration_limit_scale') and out['acceleration_limit_scale'] != 1.0:
        problems.append(f'`acceleration_limit_scale`: is {out["acceleration_limit_scale"]}; in '
                        'MuJoCo the drives\' effort limits bound the acceleration (set '
                        'effort_limits_nm in physics_file); only 1.0 is accepted')
    if ok('base_frame') and not out['base_frame'].strip():
        problems.append('`base_frame`: is empty')
    if ok('diagnostics_rate_hz') and ok('update_rate_hz') and \
            out['diagnostics_rate_hz'] > out['update_rate_hz']:
        problems.append(f'`diagnostics_rate_hz`: is {out["diagnostics_rate_hz"]} Hz, above '
                        f'update_rate_hz ({out["update_rate_hz"]} Hz)')
    s = out['static_obstacles']
    if ok('static_obstacles'):
        if len(s) % 3 != 0:
            problems.append(f'`static_obstacles`: needs x, y, radius triples, found {len(s)} '
                            'values')
        elif not all(math.isfinite(v) for v in s) or not all(r > 0 for r in s[2::3]):
            problems.append('`static_obstacles`: values must be finite and radii > 0')
    out['static_obstacles'] = [tuple(s[i:i + 3]) for i in range(0, len(s) - len(s) % 3, 3)]
    if ok('use_sim_time') and out['use_sim_time']:
        problems.append('`use_sim_time`: the simulator does not follow another clock; set '
                        'publish_clock: true to make it the clock of the other nodes')
    if problems:
        raise ValueError('invalid parameters of ' + NODE_NAME + ':\n  ' + '\n  '.join(problems))
    return out


def _ros_values(node):
    from rclpy.parameter import Parameter
    names = {
        Parameter.Type.NOT_SET: 'not_set', Parameter.Type.BOOL: 'bool',
        Parameter.Type.INTEGER: 'integer', Parameter.Type.DOUBLE: 'double',
        Parameter.Type.STRING: 'string', Parameter.Type.BYTE_ARRAY: 'byte_array',
        Parameter.Type.BOOL_ARRAY: 'bool_array', Parameter.Type.INTEGER_ARRAY: 'integer_array',
        Parameter.Type.DOUBLE_ARRAY: 'double_array', Parameter.Type.STRING_ARRAY: 'string_array',
    }
    return {name: (names[p.type_], p.value) for name, p in node._parameters.items()}


def secs(t):
    return t.sec + t.nanosec * 1e-9


def to_time(s):
    from builtin_interfaces.msg import Time
    sec = math.floor(s)
    return Time(sec=int(sec), nanosec=min(int(round((s - sec) * 1e9)), 999_999_999))


def trajectory_in(msg):
    from .jtc import Point, Trajectory
    return Trajectory(secs(msg.header.stamp), list(msg.joint_names), [
        Point(list(p.positions), list(p.velocities), list(p.accelerations), list(p.effort),
              secs(p.time_from_start)) for p in msg.points])


def markers_in(msg):
    from .arm import MarkerIn
    return [MarkerIn(m.ns, m.id, m.type, m.action, m.header.frame_id,
                     (m.pose.position.x, m.pose.position.y, m.pose.position.z),
                     (m.pose.orientation.x, m.pose.orientation.y, m.pose.orientation.z,
                      m.pose.orientation.w),
                     (m.scale.x, m.scale.y, m.scale.z), secs(m.lifetime)) for m in msg.markers]


class SimNode:
    def __init__(self, node, params):
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PoseStamped
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import JointState
        from trajectory_msgs.msg import JointTrajectory
        from visualization_msgs.msg import MarkerArray

        from .config import load
        from .jtc import JtcSettings
        from .simulation import Simulation

        self.node = node
        self.p = params
        self.log = node.get_logger()
        robot, physics = load(params['model_path'], params['physics_file'])
        self.planar = robot.planar
        settings = JtcSettings(list(params['joints']), params['allow_partial_joints_goal'],
                               params['allow_nonzero_velocity_at_trajectory_end'],
                               params['interpolate_from_desired_state'])
        self.period = 1.0 / params['update_rate_hz']
        self.sim = Simulation(robot, physics, settings, params['initial_positions'], self.period,
                              params['goal_tolerance_m'], params['base_frame'],
                              params['static_obstacles'])
        self.base_frame = params['base_frame'].lstrip('/')
        self.inbox = []
        node.create_subscription(JointTrajectory, 'joint_trajectory_controller/joint_trajectory',
                                 lambda m: self.inbox.append(('trajectory', m)), 10)
        node.create_subscription(MarkerArray, 'obstacles',
                                 lambda m: self.inbox.append(('obstacles', m)), 10)
        node.create_subscription(PoseStamped, 'goal', lambda m: self.inbox.append(('goal', m)), 10)
        node.create_subscription(JointState, '~/reset', lambda m: self.inbox.append(('reset', m)),
                                 10)
        self.JointState, self.Clock, self.DiagnosticArray = JointState, Clock, DiagnosticArray
        self.joint_states_pub = node.create_publisher(JointState, 'joint_states', 10)
        self.clock_pub = node.create_publisher(Clock, '/clock', 10) if params['publish_clock'] \
            else None
        self.diagnostics_pub = node.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.name = node.get_name()
        self.hardware_id = node.get_fully_qualified_name()
        self.problems = {}      # key -> (text, expires_secs or None)
        self.last_rule = None
        self.log.info(
            f'simulating `{robot.name}` in MuJoCo (joints {params["joints"]}) from '
            f'{params["initial_positions"]} at {params["update_rate_hz"]} Hz, physics every '
            f'{physics.timestep_secs} s; ' +
            (f'publishing /clock at {params["real_time_factor"]}x real time'
             if params['publish_clock'] else 'on the system clock'))

    def now_system(self):
        return self.node.get_clock().now().nanoseconds * 1e-9

    def handle_inputs(self, now):
        inbox, self.inbox = self.inbox, []
        for kind, msg in inbox:
            if kind == 'trajectory':
                rejection = self.sim.receive_trajectory(trajectory_in(msg), now)
                if rejection is None:
                    self.last_rule = None
                elif rejection.rule != self.last_rule:
                    self.log.error(f'trajectory rejected: {rejection}')
                    self.last_rule = rejection.rule
            elif kind == 'obstacles':
                error = self.sim.on_markers(markers_in(msg), now)
                if error is None:
                    self.problems.pop('obstacles', None)
                else:
                    text = f'obstacles message rejected: {error}; holding until a valid one'
                    if self.problems.get('obstacles', (None,))[0] != text:
                        self.log.error(text)
                    self.problems['obstacles'] = (text, None)
            elif kind == 'goal':
                self.on_goal(msg, now)
            elif kind == 'reset':
                self.on_reset(msg)

    def on_goal(self, msg, now):
        frame = msg.header.frame_id.lstrip('/')
        p = msg.pose.position
        # The planar arm's goals are (x, y); a URDF arm's (x, y, z), its tool link's origin.
        goal = [p.x, p.y] if self.planar else [p.x, p.y, p.z]
        if frame != self.base_frame:
            text = (f'goal in frame `{msg.header.frame_id}` rejected: goals must be in '
                    f'base_frame `{self.base_frame}` (no tf lookup)')
        elif not all(math.isfinite(v) for v in goal):
            text = f'goal ({", ".join(str(v) for v in goal)}) rejected: not finite'
        else:
            self.problems.pop('goal', None)
            if self.sim.goal is None or self.sim.goal[0] != goal:
                self.sim.set_goal(goal, now)
            return
        if self.problems.get('goal', (None,))[0] != text:
            self.log.error(text)
        self.problems['goal'] = (text, now + EVENT_EXPIRY_SECS)

    def on_reset(self, msg):
        names = list(msg.name) or list(self.p['joints'])
        positions = list(msg.position)
        if sorted(names) != sorted(self.p['joints']) or len(positions) != len(names) or \
                not all(math.isfinite(v) for v in positions):
            text = (f'reset rejected: needs a finite position for each of {self.p["joints"]}, '
                    f'found {names} {positions}')
            self.log.error(text)
            self.problems['reset'] = (text, (self.sim.last_update_secs or 0.0) + EVENT_EXPIRY_SECS)
            return
        order = [names.index(j) for j in self.p['joints']]
        try:
            self.sim.reset([positions[i] for i in order])
        except ValueError as e:
            self.log.error(f'reset rejected: {e}')
            return
        self.log.info(f'reset to {[positions[i] for i in order]}')

    def update(self, now):
        names, q, v = self.sim.update(now)
        if self.clock_pub is not None:
            self.clock_pub.publish(self.Clock(clock=to_time(now)))
        msg = self.JointState()
        msg.header.stamp = to_time(now)
        msg.name = names
        msg.position = [float(x) for x in q]
        msg.velocity = [float(x) for x in v]
        self.joint_states_pub.publish(msg)

    def diagnostics(self, now):
        from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

        from .simulation import status
        self.problems = {k: p for k, p in self.problems.items() if p[1] is None or now < p[1]}
        level, message, values = status(self.sim.report(), f'{self.name}: arm')
        inputs = [f'{k}: {p[0]}' for k, p in sorted(self.problems.items())]
        arm = DiagnosticStatus(level=bytes([level]), name=f'{self.name}: arm', message=message,
                               hardware_id=self.hardware_id,
                               values=[KeyValue(key=k, value=v) for k, v in values])
        inputs_status = DiagnosticStatus(
            level=bytes([2 if inputs else 0]), name=f'{self.name}: inputs',
            message='; '.join(inputs) if inputs else 'ok', hardware_id=self.hardware_id,
            values=[KeyValue(key='obstacles', value=str(len(self.sim.markers.obstacles())))])
        array = self.DiagnosticArray(status=[arm, inputs_status])
        array.header.stamp = to_time(now)
        self.diagnostics_pub.publish(array)

    def run(self, executor, stop):
        p = self.p
        wall_period = self.period / p['real_time_factor'] if p['publish_clock'] else self.period
        diag_period = 1.0 / p['diagnostics_rate_hz']
        now = 0.0 if p['publish_clock'] else self.now_system()
        self.update(now)
        next_update = time.monotonic() + wall_period
        # How regularly the updates came (wall clock): late = more than 1.5 periods apart.
        last_update_wall = time.monotonic()
        self.late_updates, self.max_update_gap_secs = 0, 0.0
        next_diag = time.monotonic() + diag_period
        while not stop['flag']:
            timeout = max(0.0, min(next_update, next_diag) - time.monotonic())
            executor.spin_once(timeout_sec=min(timeout, 0.02))
            if not p['publish_clock']:
                now = self.now_system()
            self.handle_inputs(now)
            t = time.monotonic()
            if t >= next_update:
                gap = t - last_update_wall
                last_update_wall = t
                self.max_update_gap_secs = max(self.max_update_gap_secs, gap)
                self.late_updates += int(gap > 1.5 * wall_period)
                if p['publish_clock']:
                    now += self.period
                self.update(now)
                next_update += wall_period
                if next_update < t:      # behind: the simulation slows down, no burst
                    next_update = t + wall_period
            if t >= next_diag:
                self.diagnostics(now)
                next_diag = max(next_diag + diag_period, t)
        r = self.sim.report()
        self.log.info(
            f'shutting down after {r["sim_time_secs"]:.2f} s simulated: {r["contacts"]} '
            f'collisions, {r["trajectories_rejected"]} of '
            f'{r["trajectories_accepted"] + r["trajectories_rejected"]} trajectories rejected, '
            f'goals reached {r["goals_reached"]} of {r["goals_received"]}')
        if p['report_file']:
            self.write_report(p['report_file'], r)

    def write_report(self, path, report):
        """`report` (Simulation.report()) with what ran it, as JSON at `path` (written to a
        temporary file first, so a reader never sees half of it)."""
        import json

        import mujoco
        doc = {'simulator': 'mujoco', 'mujoco_version': mujoco.__version__,
               'physics_file': str(self.p['physics_file']),
               'update_rate_hz': self.p['update_rate_hz'],
               'timestep_secs': self.sim.physics.timestep_secs,
               'late_updates': self.late_updates,
               'max_update_gap_secs': self.max_update_gap_secs, **report}
        target = Path(path)
        tmp = target.with_name(target.name + '.tmp')
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(doc, indent=1) + '\n')
            tmp.replace(target)
        except OSError as e:
            self.log.error(f'cannot write the report file {path}: {e}')
            return
        self.log.info(f'report written to {path}')


def node_sections(argv):
    """`--params-file` as diffusion_planner_sim reads it (src/ros/param_value.rs): the
    sections `/**`, `**`, the node's fully qualified name and its bare name, later ones
    overriding earlier ones. rcl would not match a bare name in a namespace, so each file is
    replaced by a temporary one with the matching sections merged under `/**`."""
    import tempfile

    import yaml
    namespace, name = '', NODE_NAME
    for a in argv:
        if a.startswith('__ns:='):
            namespace = a[len('__ns:='):].rstrip('/')
        elif a.startswith('__node:=') or a.startswith('__name:='):
            name = a.split(':=', 1)[1]
    qualified = f'{namespace}/{name}'
    out, i = [], 0
    while i < len(argv):
        if argv[i] == '--params-file' and i + 1 < len(argv):
            path = argv[i + 1]
            try:
                doc = yaml.safe_load(Path(path).read_text())
            except (OSError, yaml.YAMLError) as e:
                raise ValueError(f'`--params-file`: cannot read {path}: {e}') from e
            if not isinstance(doc, dict):
                raise ValueError(f'`--params-file`: {path} is not a map of node names')
            merged = {}
            for section, body in doc.items():
                if section in ('/**', '**', qualified, name):
                    if not isinstance(body, dict) or 'ros__parameters' not in body:
                        raise ValueError(f'`{section}`: expected a `ros__parameters` map (in {path})')
                    merged.update(body['ros__parameters'] or {})
            tmp = tempfile.NamedTemporaryFile('w', suffix='.yaml', prefix='mujoco-sim-',
                                              delete=False)
            yaml.safe_dump({'/**': {'ros__parameters': merged}}, tmp)
            tmp.close()
            out += ['--params-file', tmp.name]
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def main(argv=None):
    argv = list(sys.argv if argv is None else argv)
    check_only = '--check-params' in argv
    argv = [a for a in argv if a != '--check-params']
    try:
        argv = node_sections(argv)
    except ValueError as e:
        print(f'{NODE_NAME}: {e}', file=sys.stderr)
        return 1
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node(NODE_NAME, allow_undeclared_parameters=True,
                             automatically_declare_parameters_from_overrides=True)
    try:
        params = read_params(_ros_values(node))
        if check_only:
            from .config import load
            load(params['model_path'], params['physics_file'])
            import json
            print('parameters are valid:')
            print(json.dumps(params, indent=1))
            return 0
        sim_node = SimNode(node, params)
    except ValueError as e:
        print(f'{NODE_NAME}: {e}', file=sys.stderr)
        return 1
    stop = {'flag': False}

    def on_sigint(signum, frame):
        if stop['flag']:
            os._exit(130)
        stop['flag'] = True

    signal.signal(signal.SIGINT, on_sigint)
    signal.signal(signal.SIGTERM, on_sigint)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        sim_node.run(executor, stop)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
