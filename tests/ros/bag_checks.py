"""Checks of a replay's output bag against its input bag (both read with rosbags), for live
replays (tests/ros/replay.py) and offline ones (`dplan replay`) alike.

    python bag_checks.py --input IN_BAG --output OUT_BAG [--compare OTHER_OUT_BAG]
                         [--compare-labels sequence|final] [--report REPORT.json]

The scenario (robot, goals, bad inputs and what they must cause) is the JSON that
tools/make_bags.py stores in the input bag's metadata (`custom_data`). Checks:
- every JointTrajectory passes JointTrajectoryController's validation (jazzy defaults, as
  ros-conventions §1: all joints, points, strictly increasing times, sizes, finite, first point
  at least one control period ahead, last velocities 0; a stamp is 0 or within STAMP_TOLERANCE_S
  of the bag time it was recorded at, and does not end in the past);
- every trajectory that moves (more than one point) is collision-free against the obstacles in
  effect when it was published: its cubic Hermite curve (positions and velocities, as the
  controller splines them) sampled every 5 ms, link capsules against the circles of the last
  valid obstacles message (a message the node rejects changes nothing); holds (one point at
  rest) stay where the previous motion left the robot;
- each goal: "goal reached" in the executor's diagnostics after the recorded states arrive, the
  last commanded position before the next goal within the goal tolerance, and for a mode
  request, every chosen mode label (planning diagnostics) and the final elbow branch are the
  requested ones;
- each bad input: the diagnostics status named by the scenario shows the expected text at the
  expected level within 3 s, and in its hold window the node stops (the first hold within
  BRAKING_S; a moving robot brakes first) and then only holds, at one position;
- the node published trajectories until the end (it did not crash).
With --compare, per goal: the same chosen mode labels (`sequence`: the same sequence of distinct
labels; `final`: the same last label) and final commanded positions within 0.05 rad.
Writes {checks: [{name, ok, detail}], stats} to --report and prints the failed checks; exits 0
when it could run (the caller asserts the checks), 1 when a check failed and no report was asked.
"""

import argparse
import json
import math
import pathlib
import sys

import yaml
from rosbags.highlevel import AnyReader

from jtc_stamp import stamp_problems

F32_EPS = 1.1920929e-07
CONTROL_PERIOD_S = 0.02
SAMPLE_S = 0.005
COLLISION_TOLERANCE_M = 1e-3
# The node stamps a moving trajectory with the (sim) time of the tick that computed it.
STAMP_TOLERANCE_S = 0.5
FINAL_POSITION_TOLERANCE_RAD = 0.05
DIAGNOSTICS_WITHIN_S = 3.0
# A stop brakes along the path with at most half the acceleration limits (docs/NODE.md): from
# 1.5 rad/s at 1.5 rad/s^2, one second.
BRAKING_S = 1.2
LEVELS = {0: 'OK', 1: 'WARN', 2: 'ERROR', 3: 'STALE'}
SPHERE, CYLINDER = 2, 3
ADD, DELETE, DELETEALL = 0, 2, 3


def secs(d):
    return d.sec + d.nanosec * 1e-9


def hermite(p0, v0, p1, v1, h, tau):
    u = min(max(tau / h, 0.0), 1.0)
    u2, u3 = u * u, u * u * u
    return ((2 * u3 - 3 * u2 + 1) * p0 + (u3 - 2 * u2 + u) * h * v0
            + (-2 * u3 + 3 * u2) * p1 + (u3 - u2) * h * v1)


def level_of(status):
    level = status.level
    return int.from_bytes(level, 'little') if isinstance(level, bytes) else int(level)


class Bags:
    """The input and output messages of one replay, times in seconds from the bag start."""

    def __init__(self, input_path, output_path):
        self.scenario = load_scenario(input_path)
        self.start_ns = self.scenario['bag_start_ns']
        self.joints = self.scenario['joints']
        self.inputs = read_messages(input_path, self.start_ns)
        self.outputs = read_messages(output_path, self.start_ns)
        self.trajectories = [(t, m) for topic, t, m in self.outputs
                             if topic == '/joint_trajectory']
        self.diagnostics = []  # (t, area, level, message, values)
        for topic, t, m in self.outputs:
            if topic != '/diagnostics':
                continue
            for s in m.status:
                if 'diffusion_planner' in s.name:
                    self.diagnostics.append((t, s.name.split(': ')[-1], level_of(s), s.message,
                                             {kv.key: kv.value for kv in s.values}))
        self.obstacle_sets = self.track_obstacles()

    def track_obstacles(self):
        """(t, circles) after each obstacles message the node accepts."""
        frame = self.scenario['base_frame']
        current = {}
        sets = [(-math.inf, [])]
        for topic, t, m in self.inputs:
            if topic != '/obstacles':
                continue
            valid = True
            for marker in m.markers:
                if marker.header.frame_id != frame:
                    valid = False
                if marker.action == ADD and marker.type in (SPHERE, CYLINDER):
                    size = max(marker.scale.x, marker.scale.y)
                    if not (math.isfinite(size) and size > 0):
                        valid = False
            if not valid:
                continue
            for marker in m.markers:
                if marker.action == DELETEALL:
                    current = {k: v for k, v in current.items()
                               if marker.ns and k[0] != marker.ns}
                elif marker.action == DELETE:
                    current.pop((marker.ns, marker.id), None)
                elif marker.action == ADD and marker.type in (SPHERE, CYLINDER):
                    current[(marker.ns, marker.id)] = (
                        marker.pose.position.x, marker.pose.position.y,
                        0.5 * max(marker.scale.x, marker.scale.y))
            sets.append((t, sorted(current.values())))
        return sets

    def obstacles_at(self, t):
        return [s for (t0, s) in self.obstacle_sets if t0 <= t][-1]


def load_scenario(path):
    info = yaml.safe_load((path / 'metadata.yaml').read_text())['rosbag2_bagfile_information']
    return json.loads(info['custom_data']['diffusion_planner/scenario'])


def read_messages(path, start_ns):
    out = []
    with AnyReader([path]) as reader:
        for connection, t, raw in reader.messages():
            out.append((connection.topic, (t - start_ns) / 1e9,
                        reader.deserialize(raw, connection.msgtype)))
    return out


class Checker:
    def __init__(self, bags):
        self.b = bags
        self.s = bags.scenario
        self.checks = []
        self.stats = {}

    def check(self, name, ok, detail=''):
        self.checks.append({'name': name, 'ok': bool(ok), 'detail': str(detail)[:2000]})

    # --- geometry ------------------------------------------------------------------------------
    def fk_points(self, q):
        x, y, angle = 0.0, 0.0, 0.0
        points = [(x, y)]
        for qi, length in zip(q, self.s['link_lengths_m']):
            angle += qi
            x += length * math.cos(angle)
            y += length * math.sin(angle)
            points.append((x, y))
        return points

    def clearance(self, q, circles):
        points = self.fk_points(q)
        best = math.inf
        for (cx, cy, r) in circles:
            for (ax, ay), (bx, by) in zip(points, points[1:]):
                dx, dy = bx - ax, by - ay
                s = max(0.0, min(1.0, ((cx - ax) * dx + (cy - ay) * dy) / (dx * dx + dy * dy)))
                best = min(best, math.hypot(ax + s * dx - cx, ay + s * dy - cy) - r
                           - self.s['link_radius_m'])
        return best

    def ordered(self, msg, values):
        names = list(msg.joint_names)
        return [float(values[names.index(j)]) for j in self.b.joints]

    # --- checks --------------------------------------------------------------------------------
    def jtc_rules(self, msg, t):
        """The controller's checks of `msg`, recorded at `t` (seconds after the bag start)."""
        out = []
        if sorted(msg.joint_names) != sorted(self.b.joints):
            out.append(f'joint_names {list(msg.joint_names)}')
        if not msg.points:
            return out + ['no points']
        out += stamp_problems(msg, self.b.start_ns * 1e-9 + t, STAMP_TOLERANCE_S)
        previous = -1.0
        for i, p in enumerate(msg.points):
            t = secs(p.time_from_start)
            if i > 0 and not t > previous:
                out.append(f'point {i}: time {t} not after {previous}')
            previous = t
            n = len(msg.joint_names)
            if len(p.positions) != n or len(p.velocities) not in (0, n):
                out.append(f'point {i}: sizes')
            if len(p.accelerations) not in (0, n) or len(p.effort):
                out.append(f'point {i}: accelerations/effort')
            if not all(math.isfinite(x) for x in list(p.positions) + list(p.velocities)):
                out.append(f'point {i}: not finite')
        if secs(msg.points[0].time_from_start) < CONTROL_PERIOD_S * (1 - 1e-6):
            out.append(f'first point at {secs(msg.points[0].time_from_start)} s')
        if any(abs(v) > F32_EPS for v in msg.points[-1].velocities):
            out.append(f'last velocity {list(msg.points[-1].velocities)}')
        return out

    def is_hold(self, msg):
        return len(msg.points) == 1 and all(v == 0.0 for v in msg.points[0].velocities)

    def common(self):
        trajectories = self.b.trajectories
        self.check('trajectories were published', len(trajectories) > 10, len(trajectories))
        self.check('diagnostics were published', len(self.b.diagnostics) > 3,
                   len(self.b.diagnostics))
        violations = [(round(t, 3), problems) for t, m in trajectories
                      if (problems := self.jtc_rules(m, t))]
        self.check('every trajectory passes the JTC rules', not violations, violations[:3])
        collisions = []
        moving = 0
        worst = math.inf
        for t, m in trajectories:
            if self.is_hold(m) or self.jtc_rules(m, t):
                continue
            moving += 1
            circles = self.b.obstacles_at(t)
            if not circles:
                continue
            times = [secs(p.time_from_start) for p in m.points]
            pos = [self.ordered(m, p.positions) for p in m.points]
            vel = [self.ordered(m, p.velocities) for p in m.points]
            for i in range(1, len(times)):
                h = times[i] - times[i - 1]
                steps = max(1, math.ceil(h / SAMPLE_S))
                for k in range(steps + 1):
                    q = [hermite(pos[i - 1][j], vel[i - 1][j], pos[i][j], vel[i][j], h,
                                 h * k / steps) for j in range(len(self.b.joints))]
                    c = self.clearance(q, circles)
                    worst = min(worst, c)
                    if c < -COLLISION_TOLERANCE_M:
                        collisions.append((round(t, 3), round(times[i - 1] + h * k / steps, 3),
                                           [round(x, 4) for x in q], round(c, 4)))
        self.stats['moving_trajectories'] = moving
        self.stats['min_clearance_m'] = worst
        self.check('every moving trajectory is collision-free against the obstacles in effect',
                   not collisions and moving > 0, f'{moving} moving; {collisions[:3]}')
        last = trajectories[-1][0] if trajectories else -1.0
        end = self.s['duration_s']
        self.check('the node published until the end of the bag', last >= end - 0.5,
                   f'last trajectory at {last:.2f} s, bag ends at {end:.2f} s')

    def goal_windows(self):
        goals = self.s['goals']
        for i, goal in enumerate(goals):
            until = goals[i + 1]['t'] if i + 1 < len(goals) else self.s['duration_s'] + 10.0
            yield i, goal, until

    def goals(self):
        summary = []
        for i, goal, until in self.goal_windows():
            window = [(t, m) for t, m in self.b.trajectories if goal['t'] <= t < until]
            final = self.ordered(window[-1][1], window[-1][1].points[-1].positions) \
                if window else None
            reached = [t for (t, a, _, msg, _) in self.b.diagnostics
                       if a == 'executor' and msg == 'goal reached' and goal['arrive_t'] <= t
                       < until]
            labels = [v.get('chosen_mode_label') for (t, a, _, _, v) in self.b.diagnostics
                      if a == 'planning' and goal['t'] + 0.5 <= t < until
                      and v.get('chosen_mode_label') not in (None, 'none')]
            distinct = [x for k, x in enumerate(labels) if k == 0 or labels[k - 1] != x]
            name = f'goal {i} {goal["goal_m"]} ({goal["mode"]}) at {goal["t"]} s'
            self.check(f'{name}: "goal reached" reported', reached,
                       f'recorded states arrive at {goal["arrive_t"]} s')
            error = None
            if final is not None:
                x, y = self.fk_points(final)[-1]
                error = math.hypot(x - goal['goal_m'][0], y - goal['goal_m'][1])
            self.check(f'{name}: the last commanded position reaches it',
                       error is not None and error <= self.s['goal_tolerance_m'],
                       f'end-effector error {error} m, final {final}')
            if goal['mode'] != 'any':
                requested = [v.get('chosen_mode_label') for (t, a, _, _, v) in self.b.diagnostics
                             if a == 'planning' and goal['t'] <= t < until
                             and v.get('requested_mode') == goal['mode']
                             and v.get('chosen_mode_label') not in (None, 'none')]
                self.check(f'{name}: every chosen mode label is the requested one',
                           requested and all(x == goal['mode'] for x in requested), requested)
                branch = None if final is None else ('elbow_up' if final[1] < 0 else 'elbow_down')
                self.check(f'{name}: the final configuration is on the requested branch',
                           branch == goal['mode'], final)
            summary.append({'goal': i, 'labels': distinct, 'final_rad': final,
                            'reached_at': reached[0] if reached else None, 'error_m': error,
                            'reversals': self.reversals(window)})
        self.stats['goals'] = summary

    def reversals(self, window):
        """How often a joint's commanded velocity (each message's first point) changes sign
        while it moves faster than 0.05 rad/s: 0 for a motion straight to the goal."""
        count = 0
        for j in range(len(self.b.joints)):
            sign = 0
            for _, m in window:
                v = self.ordered(m, m.points[0].velocities)[j] if len(m.points[0].velocities) else 0.0
                if abs(v) > 0.05:
                    if sign and (v > 0) != (sign > 0):
                        count += 1
                    sign = 1 if v > 0 else -1
        return count

    def events(self):
        for event in self.s['events']:
            name = f'{event["what"]} at {event["t"]} s'
            seen = [(round(t, 2), msg) for (t, a, lv, msg, _) in self.b.diagnostics
                    if event['t'] <= t <= event['t'] + DIAGNOSTICS_WITHIN_S
                    and a == event['area'] and lv >= event['level'] and event['text'] in msg]
            near = [(round(t, 2), a, lv, msg) for (t, a, lv, msg, _) in self.b.diagnostics
                    if event['t'] <= t <= event['t'] + DIAGNOSTICS_WITHIN_S and a == event['area']]
            self.check(f'{name}: diagnostics {event["area"]} {LEVELS[event["level"]]} '
                       f'"{event["text"]}"', seen, seen[:1] or near[:4])
            if event['hold']:
                start, until = event['hold']
                window = [(t, m) for t, m in self.b.trajectories if start <= t <= until]
                first = next((k for k, (_, m) in enumerate(window) if self.is_hold(m)), None)
                holds = [m for _, m in window[first:]] if first is not None else []
                positions = {tuple(round(x, 9) for x in m.points[0].positions) for m in holds}
                braking = window[first][0] - start if first is not None else None
                self.check(f'{name}: stops (within {BRAKING_S} s) and holds at one position '
                           f'until {until} s',
                           holds and all(self.is_hold(m) for m in holds)
                           and len(positions) == 1 and braking <= BRAKING_S,
                           f'{len(window)} trajectories, the first hold after {braking} s, '
                           f'then {sum(self.is_hold(m) for m in holds)} of {len(holds)} holds at '
                           f'{sorted(positions)[:3]}')


def compare(checker, other, labels):
    """Agreement of two replays of the same bag, goal by goal (the other replay's own failed
    checks are listed too)."""
    for c in other.checks:
        if not c['ok']:
            checker.check(f'other replay: {c["name"]}', False, c['detail'])
    ours = checker.stats['goals']
    theirs = other.stats['goals']
    for a, b in zip(ours, theirs):
        name = f'goal {a["goal"]}: both replays agree'
        if labels == 'sequence':
            same_labels = a['labels'] == b['labels']
        else:
            same_labels = a['labels'][-1:] == b['labels'][-1:]
        close = (a['final_rad'] is not None and b['final_rad'] is not None
                 and max(abs(x - y) for x, y in zip(a['final_rad'], b['final_rad']))
                 <= FINAL_POSITION_TOLERANCE_RAD)
        checker.check(f'{name} on the chosen mode labels ({labels})', same_labels,
                      f'{a["labels"]} vs {b["labels"]}')
        checker.check(f'{name} on the final commanded position (0.05 rad)', close,
                      f'{a["final_rad"]} vs {b["final_rad"]}')
    checker.check('both replays have the same goals', len(ours) == len(theirs) and ours,
                  f'{len(ours)} vs {len(theirs)}')


def run(input_path, output_path):
    checker = Checker(Bags(input_path, output_path))
    checker.common()
    checker.goals()
    checker.events()
    return checker


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--input', type=pathlib.Path, required=True)
    parser.add_argument('--output', type=pathlib.Path, required=True)
    parser.add_argument('--compare', type=pathlib.Path)
    parser.add_argument('--compare-labels', choices=['sequence', 'final'], default='sequence')
    parser.add_argument('--report', type=pathlib.Path)
    args = parser.parse_args()
    checker = run(args.input, args.output)
    if args.compare:
        compare(checker, run(args.input, args.compare), args.compare_labels)
    failed = [c for c in checker.checks if not c['ok']]
    for c in failed:
        print(f'FAILED {c["name"]}: {c["detail"]}', file=sys.stderr)
    print(f'{len(checker.checks)} checks, {len(failed)} failed; goals: '
          f'{json.dumps(checker.stats.get("goals"))}')
    if args.report:
        args.report.write_text(json.dumps({'checks': checker.checks, 'stats': checker.stats},
                                          indent=1, default=str))
        return 0
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
