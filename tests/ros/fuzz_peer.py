"""The abuse test (scenario `fuzz` of node_peer.py): seeded random bad inputs of many kinds,
interleaved with good goals, against a running diffusion_planner node over DDS.

Independent of the node's code: it plays the robot like node_peer.Peer (a JointTrajectory
follower that publishes joint states) and checks, for every trajectory the node publishes:
- JointTrajectoryController's rules (node_peer.Peer.rules);
- the joint limits, on the cubic Hermite segments the controller splines between the points
  (exact extrema of velocity and acceleration);
- no collision with the obstacles known at that time (the last valid set the fuzzer sent at
  least KNOWN_AFTER_S before the message), sampled along every segment, unless the message
  starts in collision (an obstacle dropped onto the arm on purpose);
and after each bad input: the node still publishes, the problem shows in /diagnostics
(where it must: a flood or an odd-but-valid input need not), and the next good goal is reached.

Config keys (besides node_peer's): fuzz_secs (how long), fuzz_seed, max_acceleration_rad_s2,
lower_rad, upper_rad.
"""

import math
import random
import time

from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from visualization_msgs.msg import Marker, MarkerArray



def secs(duration):
    return duration.sec + duration.nanosec * 1e-9

# A set sent less than this before a trajectory arrived may not have reached the node yet.
KNOWN_AFTER_S = 0.15
# How long the node may take to report a problem in /diagnostics (published at 2 Hz).
REPORT_TIMEOUT_S = 2.5
# How long a good goal may take after a bad input.
REACH_TIMEOUT_S = 12.0
LIMIT_SLACK = 1e-3
# The good scene: one obstacle away from the good goals' paths, and goals on either side.
GOOD_OBSTACLE = (0.6, 0.6, 0.08)
GOOD_GOALS = [(0.1, 0.6), (-0.3, 0.5), (0.5, 0.2), (0.2, 0.75), (-0.1, 0.7)]


def segment_extrema(p0, v0, p1, v1, h):
    """Largest |velocity| and |acceleration| of the cubic Hermite segment (exact)."""
    if not h > 0.0:
        return max(abs(v0), abs(v1)), math.inf
    d = p1 - p0
    a0 = (6.0 * d / h - 4.0 * v0 - 2.0 * v1) / h
    a1 = (-6.0 * d / h + 2.0 * v0 + 4.0 * v1) / h
    jerk = (a1 - a0) / h
    vmax = max(abs(v0), abs(v1))
    if jerk != 0.0:
        tau = -a0 / jerk
        if 0.0 < tau < h:
            vmax = max(vmax, abs(v0 + a0 * tau + 0.5 * jerk * tau * tau))
    return vmax, max(abs(a0), abs(a1))


class Fuzzer:
    def __init__(self, peer):
        self.p = peer
        cfg = peer.cfg
        self.rng = random.Random(cfg.get('fuzz_seed', 1))
        self.vmax = cfg['max_velocity_rad_s']
        self.amax = cfg['max_acceleration_rad_s2']
        self.known = [(time.monotonic(), [])]
        # The last good goal sent.
        self.last_goal = None
        self.counts = {'kinds_tried': set(), 'bad_messages': 0, 'good_goals': 0,
                       'goals_reached': 0, 'reported': 0, 'not_reported': [],
                       'not_resumed': [], 'limit_violations': [], 'collisions': [],
                       'trajectories_checked': 0, 'holds': 0, 'died': 0,
                       'nothing_to_report': [], 'dropout_motion_rad': []}
        peer.trajectory_hooks.append(self.check_trajectory)

    # --- checks on every trajectory ---------------------------------------------------------
    def obstacles_known(self, at):
        """The set sent at least KNOWN_AFTER_S before `at`, or None while one is in flight.
        `known` is in time order: scanned from its end, so an hour of floods costs nothing
        per check (a scan of the whole list made the peer fall behind in the soak)."""
        for t, circles in reversed(self.known):
            if t > at:
                continue
            return None if t > at - KNOWN_AFTER_S else circles
        return None

    def check_trajectory(self, msg):
        c = self.counts
        c['trajectories_checked'] += 1
        if len(msg.points) == 1:
            c['holds'] += 1
        joints = self.p.joints
        try:
            order = [list(msg.joint_names).index(j) for j in joints]
        except ValueError:
            return  # reported by the JTC rules
        pts = msg.points
        for a, b in zip(pts, pts[1:]):
            h = secs(b.time_from_start) - secs(a.time_from_start)
            for j, i in enumerate(order):
                v, acc = segment_extrema(a.positions[i], a.velocities[i], b.positions[i],
                                         b.velocities[i], h)
                if v > self.vmax * (1 + LIMIT_SLACK) or acc > self.amax[j] * (1 + LIMIT_SLACK):
                    c['limit_violations'].append(
                        f'joint {joints[j]}: {v:.3f} rad/s, {acc:.3f} rad/s2 at '
                        f'{secs(a.time_from_start):.6f} s (h {h:.6f} s, p {a.positions[i]:.6f} '
                        f'-> {b.positions[i]:.6f}, v {a.velocities[i]:.6f} -> '
                        f'{b.velocities[i]:.6f}; {len(pts)} points, stamp '
                        f'{secs(msg.header.stamp):.3f}) {self.p.context}')
                    return
        for k, p in enumerate(pts):
            for j, i in enumerate(order):
                if not self.p.cfg['lower_rad'][j] - 1e-9 <= p.positions[i] <= self.p.cfg['upper_rad'][j] + 1e-9:
                    c['limit_violations'].append(f'point {k}: joint {joints[j]} at {p.positions[i]}')
                    return
        circles = self.obstacles_known(time.monotonic())
        if circles is None:
            return
        saved = self.p.obstacles
        self.p.obstacles = circles
        try:
            first = [pts[0].positions[i] for i in order]
            if self.p.clearance(first) < 0.0:
                return  # starts in collision: an obstacle was dropped onto the arm
            for a, b in zip(pts, pts[1:]):
                h = secs(b.time_from_start) - secs(a.time_from_start)
                for s in (0.25, 0.5, 0.75, 1.0):
                    q = []
                    for i in order:
                        u = s
                        p0, v0, p1, v1 = a.positions[i], a.velocities[i], b.positions[i], b.velocities[i]
                        u2, u3 = u * u, u * u * u
                        q.append((2 * u3 - 3 * u2 + 1) * p0 + (u3 - 2 * u2 + u) * h * v0
                                 + (-2 * u3 + 3 * u2) * p1 + (u3 - u2) * h * v1)
                    clearance = self.p.clearance(q)
                    if clearance < -1e-3:
                        c['collisions'].append(f'{clearance:.4f} m at {q}')
                        return
        finally:
            self.p.obstacles = saved

    # --- inputs -----------------------------------------------------------------------------
    def send_obstacles(self, markers, valid_circles=None, track=True):
        """`valid_circles`: the set the node has after this message (None: rejected, the set
        stays); `track`: the peer's own collision check of the followed motion uses it too."""
        self.p.obstacle_pub.publish(MarkerArray(markers=markers))
        if valid_circles is not None:
            self.known.append((time.monotonic(), list(valid_circles)))
            if track:
                self.p.obstacles = list(valid_circles)

    def marker(self, x, y, r, kind=Marker.CYLINDER, action=Marker.ADD, frame='base_link', i=0,
               ns='obstacles'):
        m = Marker()
        m.header.frame_id = frame
        m.ns = ns
        m.id = i
        m.type = kind
        m.action = action
        m.pose.position.x = x
        m.pose.position.y = y
        m.pose.orientation.w = 1.0
        m.scale.x = m.scale.y = 2.0 * r if math.isfinite(r) else r
        m.scale.z = 0.5
        return m

    def good_scene(self):
        self.send_obstacles([Marker(action=Marker.DELETEALL),
                             self.marker(*GOOD_OBSTACLE)], [GOOD_OBSTACLE])
        self.p.mode_pub.publish(String(data='any'))

    def joint_state(self, names, positions, stamp_offset=0.0, velocities=None):
        msg = JointState()
        t = self.p.node.get_clock().now().nanoseconds * 1e-9 + stamp_offset
        msg.header.stamp.sec = int(max(t, 0.0))
        msg.header.stamp.nanosec = int((max(t, 0.0) % 1.0) * 1e9)
        msg.name = list(names)
        msg.position = [float(x) for x in positions]
        msg.velocity = [float(x) for x in (velocities or [])]
        self.p.state_pub.publish(msg)

    def goal(self, x, y, frame='base_link', w=1.0, z=0.0):
        msg = PoseStamped()
        msg.header.frame_id = frame
        msg.header.stamp = self.p.node.get_clock().now().to_msg()
        msg.pose.position.x = x
        msg.pose.position.y = y
        msg.pose.position.z = z
        msg.pose.orientation.w = w
        self.p.goal_pub.publish(msg)

    def kinds(self):
        """name -> (inject function, (area, text) expected in /diagnostics or None)."""
        p, j = self.p, self.p.joints
        nan, inf = float('nan'), float('inf')

        def flood(send, secs_=0.5, rate=1000.0):
            def run():
                end = time.monotonic() + secs_
                n = 0
                while time.monotonic() < end:
                    send(n)
                    n += 1
                    self.counts['bad_messages'] += 1
                    p.spin(1.0 / rate)
            return run

        def frozen_states(seconds, offset=0.0, moving=True):
            """The controller drops out (during a motion): joint states keep coming, the arm
            does not move (or stands `offset` rad away: pushed)."""
            def run():
                if moving:
                    # A goal away from the last one, so there is a motion to drop out of.
                    goal = self.rng.choice([g for g in GOOD_GOALS if g != self.last_goal])
                    self.goal(*goal)
                    self.last_goal = goal
                    p.spin(0.4)
                p.publish_states = False
                q = [x + offset for x in p.q]
                end = time.monotonic() + seconds
                # How far the node's command moved from where the arm stands (a dropout with
                # no commanded motion, e.g. the motion already over, has nothing to detect).
                moved = 0.0
                while time.monotonic() < end:
                    p.publish_state(j, q)
                    p.spin(0.01)
                    desired, _ = p.desired(time.monotonic())
                    moved = max(moved, max(abs(a - b) for a, b in zip(desired, q)))
                p.q = q
                p.followed = None
                p.publish_states = True
                # The controller is back: the node's command may still be up to its tracking
                # tolerance from where the arm stands (it trusts its commanded curve within that
                # tolerance), so the next few first points may be that much further away.
                p.first_point_slack = (p.cfg.get('tracking_tolerance_rad', 0.1),
                                       time.monotonic() + 3 * p.period)
                if moving:
                    self.counts['dropout_motion_rad'].append(round(moved, 4))
                # The node's monitor judges motions above 1 mrad per 0.5 s window; below twice
                # that there was nothing to drop out of (no report expected).
                return not (moving and offset == 0.0 and moved < 2e-3)
            return run

        def pause(seconds):
            def run():
                p.publish_states = False
                p.spin(seconds)
                p.publish_states = True
            return run

        cube = Marker.CUBE
        k = {
            'js_nan': (lambda: self.joint_state(j, [nan, p.q[1]]), ('inputs', 'non-finite')),
            'js_inf': (lambda: self.joint_state(j, [inf, -inf]), ('inputs', 'non-finite')),
            'js_wrong_size': (lambda: self.joint_state(j, p.q + [0.0]),
                              ('inputs', 'names but')),
            'js_wrong_velocity_size': (lambda: self.joint_state(j, p.q, velocities=[0.0]),
                                       ('inputs', 'velocities')),
            'js_unknown_joints': (lambda: self.joint_state(['wrist', 'finger'], [0.1, 0.2]),
                                  ('inputs', 'none of the robot')),
            'js_duplicate_joint': (lambda: self.joint_state([j[0], j[0]], [0.1, 0.2]),
                                   ('inputs', 'twice')),
            'js_future_stamp': (lambda: self.joint_state(j, p.q, stamp_offset=100.0), None),
            'js_stale_stamp': (lambda: self.joint_state(j, p.q, stamp_offset=-100.0), None),
            'js_missing_joint': (lambda: self.joint_state([j[0]], [p.q[0]]), None),
            'js_stop': (pause(1.0), ('inputs', 'no valid position')),
            'goal_nan': (lambda: self.goal(nan, 0.5), ('inputs', 'not finite')),
            'goal_inf': (lambda: self.goal(0.3, inf), ('inputs', 'not finite')),
            'goal_frame': (lambda: self.goal(0.3, 0.5, frame='map'), ('inputs', 'frame `map`')),
            'goal_unreachable': (lambda: self.goal(3.0, 0.0), ('inputs', 'goal')),
            'goal_at_base': (lambda: self.goal(0.0, 0.0), ('inputs', 'goal')),
            'goal_in_obstacle': (lambda: self.goal(GOOD_OBSTACLE[0], GOOD_OBSTACLE[1]),
                                 ('inputs', 'inside obstacles')),
            'goal_bad_quaternion': (lambda: self.goal(0.2, 0.6, w=7.0, z=nan), None),
            'goal_flood': (flood(lambda n: self.goal(*GOOD_GOALS[n % 2])), None),
            'goal_same_flood': (flood(lambda n: self.goal(*GOOD_GOALS[0])), None),
            'obstacle_cube': (lambda: self.send_obstacles([self.marker(0.2, -0.6, 0.05, kind=cube, i=5)]),
                              ('inputs', 'CUBE')),
            'obstacle_mesh': (lambda: self.send_obstacles([self.marker(0.2, -0.6, 0.05, kind=Marker.MESH_RESOURCE, i=5)]),
                              ('inputs', 'MESH_RESOURCE')),
            'obstacle_other_type': (lambda: self.send_obstacles([self.marker(0.2, -0.6, 0.05, kind=self.rng.choice([0, 4, 5, 6, 7, 8, 9, 11]), i=5)]),
                                    ('inputs', 'only SPHERE and CYLINDER')),
            'obstacle_unknown_type': (lambda: self.send_obstacles([self.marker(0.2, -0.6, 0.05, kind=99, i=5)]),
                                      ('inputs', 'type 99')),
            'obstacle_unknown_action': (lambda: self.send_obstacles([self.marker(0.2, -0.6, 0.05, action=7, i=5)]),
                                        ('inputs', 'unknown action')),
            'obstacle_nan': (lambda: self.send_obstacles([self.marker(nan, 0.3, 0.05, i=5)]),
                             ('inputs', 'obstacles message rejected')),
            'obstacle_zero_size': (lambda: self.send_obstacles([self.marker(0.2, -0.6, 0.0, i=5)]),
                                   ('inputs', 'obstacles message rejected')),
            'obstacle_negative_size': (lambda: self.send_obstacles([self.marker(0.2, -0.6, -0.1, i=5)]),
                                       ('inputs', 'obstacles message rejected')),
            'obstacle_inf_size': (lambda: self.send_obstacles([self.marker(0.2, -0.6, inf, i=5)]),
                                  ('inputs', 'obstacles message rejected')),
            'obstacle_frame': (lambda: self.send_obstacles([self.marker(0.2, -0.6, 0.05, frame='map', i=5)]),
                               ('inputs', 'frame `map`')),
            'obstacle_huge_array': (lambda: self.send_obstacles(
                [self.marker(-0.8 + 0.0001 * i, -0.8, 0.01, i=i, ns='huge') for i in range(5000)]
                + [self.marker(0.1, 0.1, 0.05, kind=cube, i=0, ns='huge')]),
                ('inputs', 'CUBE')),
            'obstacle_covering': (lambda: self.send_obstacles(
                [self.marker(0.0, 0.0, 0.3, i=9)],
                [GOOD_OBSTACLE, (0.0, 0.0, 0.3)], track=False), ('inputs', 'collides')),
            'obstacle_flood_jitter': (flood(lambda n: self.send_obstacles(
                [Marker(action=Marker.DELETEALL),
                 self.marker(GOOD_OBSTACLE[0] + 0.004 * (n % 2), GOOD_OBSTACLE[1], GOOD_OBSTACLE[2])],
                [(GOOD_OBSTACLE[0] + 0.004 * (n % 2), GOOD_OBSTACLE[1], GOOD_OBSTACLE[2])])), None),
            'obstacle_delete_missing': (lambda: self.send_obstacles(
                [self.marker(0, 0, 0.1, action=Marker.DELETE, i=77, ns='nothing')]), None),
            'mode_empty': (lambda: p.mode_pub.publish(String(data='')), ('inputs', 'empty mode')),
            'mode_garbage': (lambda: p.mode_pub.publish(String(data='\u00ff\u2603 x')),
                             ('inputs', 'unknown mode')),
            'mode_huge': (lambda: p.mode_pub.publish(String(data='m' * 100000)),
                          ('inputs', 'unknown mode')),
            'mode_unknown': (lambda: p.mode_pub.publish(String(data='sideways')),
                             ('inputs', 'unknown mode')),
            'controller_dropout': (frozen_states(1.5), ('executor', 'tracking')),
            'robot_pushed': (frozen_states(0.3, offset=0.15, moving=False),
                             ('executor', 'tracking')),
        }
        return k

    # --- the run ----------------------------------------------------------------------------
    def reported(self, since, expected):
        area, text = expected
        # From the end back to `since` (the log grows all run; it is in time order).
        for t, a, lv, m, vals in reversed(self.p.diagnostic_log):
            if t < since:
                return False
            if a == area and lv >= 1 and (text in m or any(text in v for v in vals.values())):
                return True
        return False

    def alive(self):
        return bool(self.p.receipts) and time.monotonic() - self.p.receipts[-1] < 1.0

    def run(self, seconds):
        p, c = self.p, self.counts
        kinds = self.kinds()
        names = sorted(kinds)
        if not p.spin(10.0, until=lambda: p.messages > 5):
            p.check('fuzz: node publishes before the first input', False, 'no trajectory')
            return
        self.good_scene()
        end = time.monotonic() + seconds
        order = []
        g = 0
        while time.monotonic() < end:
            if not order:
                order = names[:]
                self.rng.shuffle(order)
            name = order.pop()
            inject, expected = kinds[name]
            c['kinds_tried'].add(name)
            p.context = f'after {name}'
            since = time.monotonic()
            # An injector may return False: nothing to report this time (said in the stats).
            expect = inject() is not False
            c['bad_messages'] += 1
            if expected is not None and not expect:
                c['nothing_to_report'].append(name)
            elif expected is not None:
                ok = p.spin(REPORT_TIMEOUT_S, until=lambda: self.reported(since, expected))
                if ok:
                    c['reported'] += 1
                else:
                    c['not_reported'].append(name)
            else:
                p.spin(0.2)
            if not self.alive():
                c['died'] += 1
                p.check(f'fuzz: node alive after {name}', False, 'no trajectory for 1 s')
                return
            # A good goal, from a good scene.
            self.good_scene()
            p.spin(0.2)
            goal = GOOD_GOALS[g % len(GOOD_GOALS)]
            g += 1
            c['good_goals'] += 1
            self.goal(*goal)
            self.last_goal = goal
            if p.spin(REACH_TIMEOUT_S, until=lambda: p.reached(goal)):
                c['goals_reached'] += 1
            else:
                c['not_resumed'].append((name, p.status('inputs')['message'],
                                         p.status('planning')['message'],
                                         p.status('executor')['message']))

    def summary(self):
        p, c = self.p, self.counts
        c['kinds_tried'] = sorted(c['kinds_tried'])
        p.stats['fuzz'] = dict(c, kinds=len(c['kinds_tried']),
                               node_executor=p.status('executor')['values'])
        p.check('fuzz: at least 30 kinds of bad input tried', len(c['kinds_tried']) >= 30,
                len(c['kinds_tried']))
        p.check('fuzz: the node never died', c['died'] == 0 and self.alive(), c['died'])
        p.check('fuzz: no trajectory beyond the joint limits (as the controller splines it)',
                not c['limit_violations'], c['limit_violations'][:3])
        p.check('fuzz: no trajectory through the obstacles known at that time',
                not c['collisions'], c['collisions'][:3])
        p.check('fuzz: every problem reported in /diagnostics', not c['not_reported'],
                c['not_reported'])
        p.check('fuzz: resumes after each (the next good goal is reached)',
                not c['not_resumed'], c['not_resumed'][:3])


def scenario_fuzz(p):
    f = Fuzzer(p)
    try:
        f.run(p.cfg.get('fuzz_secs', 60.0))
    finally:
        f.summary()
