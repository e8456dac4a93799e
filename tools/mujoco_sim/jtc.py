"""JointTrajectoryController (Jazzy) executing topic messages: the Python port of the Rust
simulator's controller (src/sim/validate.rs, spline.rs, jtc.rs), line for line.

The two implementations are kept equal through a common fixture: tools/gen_jtc_fixture.py runs
this port over a set of message sequences and writes tests/fixtures/jtc_cases.json (messages in,
verdicts and sampled commands out); the Rust unit test src/sim/jtc_fixture_tests.rs replays the
same sequences through `TrajectoryController` and asserts the same verdicts and commands within
1e-9, and tests/mujoco/test_jtc.py checks that this port still writes the fixture. What the
controller does (validation rules 1-9 and the simulator's two extra checks, replacement, the
point before a new trajectory, sampling one update period ahead, holding): docs/SIM.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# std::numeric_limits<float>::epsilon(): the largest |velocity| rule 5 accepts as zero.
F32_EPSILON = 1.1920928955078125e-07


@dataclass
class Point:
    """trajectory_msgs/JointTrajectoryPoint (rad, rad/s, rad/s^2); also the controller's state."""
    positions: list = field(default_factory=list)
    velocities: list = field(default_factory=list)
    accelerations: list = field(default_factory=list)
    effort: list = field(default_factory=list)
    time_from_start_secs: float = 0.0

    @staticmethod
    def at_rest(positions):
        n = len(positions)
        return Point(list(positions), [0.0] * n, [0.0] * n)

    def copy(self):
        return Point(list(self.positions), list(self.velocities), list(self.accelerations),
                     list(self.effort), self.time_from_start_secs)


@dataclass
class Trajectory:
    """trajectory_msgs/JointTrajectory; stamp_secs 0.0 = start at the next update."""
    stamp_secs: float = 0.0
    joint_names: list = field(default_factory=list)
    points: list = field(default_factory=list)


@dataclass
class JtcSettings:
    joints: list
    allow_partial_joints_goal: bool = False
    allow_nonzero_velocity_at_trajectory_end: bool = False
    interpolate_from_desired_state: bool = True
    effort_command_interface: bool = False

    def validate(self):
        if not self.joints:
            raise ValueError('`joints` is empty')
        seen = set()
        for name in self.joints:
            if not str(name).strip():
                raise ValueError('`joints` contains an empty name')
            if name in seen:
                raise ValueError(f'`joints` names `{name}` twice')
            seen.add(name)


# Rule names (as the Rust `Rule::name`) and JTC's rule numbers (None: the simulator's own).
RULES = {
    'joint_count': 1, 'empty_joint_names': 2, 'empty_points': 3, 'unknown_joint': 4,
    'nonzero_end_velocity': 5, 'ends_in_past': 6, 'time_not_increasing': 7, 'field_size': 8,
    'effort': 9, 'duplicate_joint': None, 'non_finite': None,
}


class Rejection(Exception):
    """Why a trajectory was rejected; `rule` is the rule's snake_case name."""

    def __init__(self, rule, message):
        super().__init__(message)
        self.rule = rule
        self.message = message

    def __str__(self):
        return self.message


def validate(msg: Trajectory, settings: JtcSettings, now_secs: float):
    """JTC's `validate_trajectory_msg` at `now_secs`, in its order, then the simulator's checks.
    Returns None when valid, else a Rejection."""
    dof = len(settings.joints)
    n = len(msg.joint_names)
    if not settings.allow_partial_joints_goal and n != dof:
        return Rejection('joint_count', f'JTC rule 1 (allow_partial_joints_goal: false): {n} joint '
                         f'names, the controller has {dof} joints')
    if n == 0:
        return Rejection('empty_joint_names', 'JTC rule 2: empty joint_names')
    if not msg.points:
        return Rejection('empty_points', 'JTC rule 3: empty trajectory (no points)')
    last = msg.points[-1]
    for name in msg.joint_names:
        if name not in settings.joints:
            return Rejection('unknown_joint', f'JTC rule 4: `{name}` is not a controller joint '
                             f'(joints: {list(settings.joints)})')
    if not settings.allow_nonzero_velocity_at_trajectory_end:
        for i, v in enumerate(last.velocities):
            if abs(v) > F32_EPSILON:
                joint = msg.joint_names[i] if i < n else ''
                return Rejection('nonzero_end_velocity',
                                 'JTC rule 5 (allow_nonzero_velocity_at_trajectory_end: false): '
                                 f"the last point's velocity of `{joint}` is {v}, not 0")
    if msg.stamp_secs != 0.0 and msg.stamp_secs + last.time_from_start_secs < now_secs:
        return Rejection('ends_in_past', f'JTC rule 6: stamp {msg.stamp_secs} s + last '
                         f'time_from_start {last.time_from_start_secs} s ends before now '
                         f'({now_secs} s)')
    for index, point in enumerate(msg.points):
        if index > 0:
            previous = msg.points[index - 1].time_from_start_secs
            # Written so that a NaN time fails.
            if not point.time_from_start_secs > previous:
                return Rejection('time_not_increasing',
                                 f'JTC rule 7: point {index} time_from_start '
                                 f"{point.time_from_start_secs} s is not after the previous point's "
                                 f'({previous} s)')
        for name, values, may_be_empty in (('positions', point.positions, False),
                                           ('velocities', point.velocities, True),
                                           ('accelerations', point.accelerations, True)):
            if len(values) != n and not (may_be_empty and len(values) == 0):
                return Rejection('field_size', f'JTC rule 8: point {index} has {len(values)} '
                                 f'{name} for {n} joint names (positions: one per joint; '
                                 'velocities, accelerations: none or one per joint)')
        if not settings.effort_command_interface and point.effort:
            return Rejection('effort', f'JTC rule 9: point {index} has efforts, but the '
                             'controller commands no effort')
    seen = set()
    for name in msg.joint_names:
        if name in seen:
            return Rejection('duplicate_joint', 'sim check (JTC does not check): joint '
                             f'`{name}` is named twice')
        seen.add(name)
    for index, point in enumerate(msg.points):
        for name, values in (('position', point.positions), ('velocity', point.velocities),
                             ('acceleration', point.accelerations), ('effort', point.effort)):
            if any(not math.isfinite(v) for v in values):
                return Rejection('non_finite', f'sim check (JTC does not check): point {index} '
                                 f'has a non-finite {name}')
        if not math.isfinite(point.time_from_start_secs):
            return Rejection('non_finite', f'sim check (JTC does not check): point {index} has a '
                             'non-finite time_from_start')
    if not math.isfinite(msg.stamp_secs):
        return Rejection('non_finite', 'sim check (JTC does not check): point 0 has a non-finite '
                         'header.stamp')
    return None


def to_controller_order(msg: Trajectory, settings: JtcSettings, hold_positions) -> Trajectory:
    """Every controller joint in controller order (JTC's fill_partial_goal, then
    sort_to_local_joint_order); a joint the message lacks holds `hold_positions` with zero
    velocity and acceleration in the fields the message has."""
    index = [msg.joint_names.index(j) if j in msg.joint_names else None for j in settings.joints]

    def pick(values, hold):
        if not values:
            return []
        out = []
        for j, i in enumerate(index):
            if i is None:
                out.append(hold(j))
            else:
                out.append(values[i] if i < len(values) else math.nan)
        return out

    def hold_position(j):
        return hold_positions[j] if j < len(hold_positions) else math.nan

    def zero(_):
        return 0.0

    return Trajectory(msg.stamp_secs, list(settings.joints), [
        Point(pick(p.positions, hold_position), pick(p.velocities, zero),
              pick(p.accelerations, zero), pick(p.effort, zero), p.time_from_start_secs)
        for p in msg.points])


# --- splines (spline.rs) ----------------------------------------------------------------------

def spline_kind(a: Point, b: Point) -> str:
    velocity = bool(a.velocities) and bool(b.velocities)
    acceleration = bool(a.accelerations) and bool(b.accelerations)
    if velocity and acceleration:
        return 'quintic'
    if velocity:
        return 'cubic'
    return 'linear'


def _cubic(p0, v0, p1, v1, h, tau):
    if h != 0.0:
        c2 = (-3.0 * p0 + 3.0 * p1 - 2.0 * v0 * h - v1 * h) / (h * h)
        c3 = (2.0 * p0 - 2.0 * p1 + v0 * h + v1 * h) / (h * h * h)
    else:
        c2 = c3 = 0.0
    return (p0 + v0 * tau + c2 * tau * tau + c3 * tau * tau * tau,
            v0 + 2.0 * c2 * tau + 3.0 * c3 * tau * tau,
            2.0 * c2 + 6.0 * c3 * tau)


def _quintic(start, end, h, tau):
    p0, v0, a0 = start
    p1, v1, a1 = end
    c0, c1, c2 = p0, v0, 0.5 * a0
    if h != 0.0:
        h2, h3, h4, h5 = h * h, h * h * h, h ** 4, h ** 5
        c3 = (-20.0 * p0 + 20.0 * p1 - 3.0 * a0 * h2 + a1 * h2 - 12.0 * v0 * h - 8.0 * v1 * h) / (2.0 * h3)
        c4 = (30.0 * p0 - 30.0 * p1 + 3.0 * a0 * h2 - 2.0 * a1 * h2 + 16.0 * v0 * h + 14.0 * v1 * h) / (2.0 * h4)
        c5 = (-12.0 * p0 + 12.0 * p1 - a0 * h2 + a1 * h2 - 6.0 * v0 * h - 6.0 * v1 * h) / (2.0 * h5)
    else:
        c3 = c4 = c5 = 0.0
    t = tau
    t2, t3, t4, t5 = t * t, t * t * t, t ** 4, t ** 5
    return (c0 + c1 * t + c2 * t2 + c3 * t3 + c4 * t4 + c5 * t5,
            c1 + 2.0 * c2 * t + 3.0 * c3 * t2 + 4.0 * c4 * t3 + 5.0 * c5 * t4,
            2.0 * c2 + 6.0 * c3 * t + 12.0 * c4 * t2 + 20.0 * c5 * t3)


def interpolate(time_a, a: Point, time_b, b: Point, t) -> Point:
    """The state at `t` between `a` at `time_a` and `b` at `time_b` (JTC's
    interpolate_between_points; outside the interval: clamped, linear)."""
    duration = time_b - time_a
    kind = spline_kind(a, b)
    tau = t - time_a
    if tau < 0.0:
        tau = 0.0
        kind = 'linear'
    if tau > duration:
        tau = duration
        kind = 'linear'
    dim = len(a.positions)

    def get(v, j):
        return v[j] if j < len(v) else 0.0

    out = Point([0.0] * dim, [0.0] * dim, [0.0] * dim)
    for j in range(dim):
        p0, p1 = get(a.positions, j), get(b.positions, j)
        if kind == 'linear':
            slope = (p1 - p0) / duration if duration != 0.0 else 0.0
            p, v, acc = p0 + slope * tau, slope, 0.0
        elif kind == 'cubic':
            p, v, acc = _cubic(p0, get(a.velocities, j), p1, get(b.velocities, j), duration, tau)
        else:
            p, v, acc = _quintic((p0, get(a.velocities, j), get(a.accelerations, j)),
                                 (p1, get(b.velocities, j), get(b.accelerations, j)),
                                 duration, tau)
        out.positions[j] = p
        out.velocities[j] = v
        out.accelerations[j] = acc
    return out


# --- the controller (jtc.rs) ------------------------------------------------------------------

@dataclass
class _Active:
    msg: Trajectory
    start_secs: float
    before: tuple | None
    traj_secs: float


@dataclass
class ReceiveStats:
    accepted: int = 0
    rejected: int = 0
    adopted: int = 0
    last_rejection: Rejection | None = None


class TrajectoryController:
    """See the module docs and src/sim/jtc.rs."""

    def __init__(self, settings: JtcSettings, initial_positions, update_period_secs: float):
        settings.validate()
        if not (update_period_secs > 0.0 and math.isfinite(update_period_secs)):
            raise ValueError(f'`update_rate_hz`: the update period must be finite and > 0, found '
                             f'{update_period_secs} s')
        if len(initial_positions) != len(settings.joints):
            raise ValueError(f'controller initial positions: {len(initial_positions)} values for '
                             f'{len(settings.joints)} joints')
        self.settings = settings
        self.pending = None
        self.active = None
        self.desired = Point.at_rest(initial_positions)
        self.commanded = Point.at_rest(initial_positions)
        self.commanded_secs = None
        self.update_period_secs = update_period_secs
        self.last_update_secs = None
        self.stats = ReceiveStats()

    def receive(self, msg: Trajectory, now_secs: float):
        """Validates `msg` at `now_secs`; keeps it as the pending message when valid. Returns
        None or the Rejection."""
        rejection = validate(msg, self.settings, now_secs)
        if rejection is None:
            self.stats.accepted += 1
            self.pending = msg
        else:
            self.stats.rejected += 1
            self.stats.last_rejection = rejection
        return rejection

    def has_trajectory(self):
        return self.active is not None

    def remaining_secs(self, now_secs):
        active = self.active
        if active is None:
            return 0.0
        last = active.msg.points[-1].time_from_start_secs if active.msg.points else 0.0
        if active.before is None:
            if active.msg.stamp_secs == 0.0:
                start, clock = now_secs, now_secs
            else:
                start, clock = active.start_secs, now_secs
        else:
            start, clock = active.start_secs, active.traj_secs
        return max(start + last - clock, 0.0)

    def update(self, now_secs: float, measured: Point) -> Point:
        """One controller cycle at `now_secs`; returns the new command (controller order)."""
        if self.pending is not None:
            msg = to_controller_order(self.pending, self.settings, self.commanded.positions)
            self.pending = None
            self.stats.adopted += 1
            self.active = _Active(msg, msg.stamp_secs, None, now_secs)
        period = 0.0 if self.last_update_secs is None else now_secs - self.last_update_secs
        self.last_update_secs = now_secs
        active = self.active
        if active is not None:
            if active.before is None:
                if self.settings.interpolate_from_desired_state:
                    at = self.commanded_secs
                    if at is None or not abs(at) >= F32_EPSILON:
                        at = now_secs
                    before = (at, self.commanded.copy())
                else:
                    before = (now_secs, measured.copy())
                active.before = before
                active.traj_secs = now_secs
                if active.msg.stamp_secs == 0.0:
                    active.start_secs = now_secs
            else:
                active.traj_secs += period
            desired = _sample(active, active.traj_secs)
            if desired is not None:
                self.desired = desired
            command = _sample(active, active.traj_secs + self.update_period_secs)
            if command is not None:
                self.commanded = command
        else:
            self.desired = self.commanded.copy()
        self.commanded_secs = now_secs
        return self.commanded


def _sample(active: _Active, t):
    if active.before is None:
        return None
    before_secs, before = active.before
    if t < before_secs:
        return None
    points = active.msg.points
    if not points:
        return None
    first = points[0]
    first_secs = active.start_secs + first.time_from_start_secs
    if t < first_secs:
        return interpolate(before_secs, before, first_secs, first, t)
    for a, b in zip(points, points[1:]):
        t0 = active.start_secs + a.time_from_start_secs
        t1 = active.start_secs + b.time_from_start_secs
        if t0 <= t < t1:
            return interpolate(t0, a, t1, b, t)
    last = points[-1]
    n = len(last.positions)
    return Point(list(last.positions),
                 list(last.velocities) if last.velocities else [0.0] * n,
                 list(last.accelerations) if last.accelerations else [0.0] * n)
