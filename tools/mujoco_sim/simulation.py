"""One ros2_control cycle of the arm in MuJoCo (the planar arm or a URDF arm such as the
Panda: any number of joints), the counterpart of the Rust
`Simulation` (src/sim/simulation.rs): JointTrajectoryController (the port in `jtc`) ->
actuator targets -> physics.

`update(now)` at the controller manager's rate:
1. read: physics from the previous update to `now` in steps of `timestep_secs`, the drives'
   targets ramping linearly from where they were toward the current command (the position the
   controller asked for by the end of the cycle, reached one period after it was given) with
   the ramp's velocity as the velocity target; contacts with obstacles are checked after every
   physics step;
2. the tracking error `max_j |target_j - q_j|` (what the controller asked for by now vs the
   measured position), its maximum and its RMS over the updates while the target moves; the
   clearance (MuJoCo's mj_geomDistance, links vs obstacles) and the goal check;
3. update: the controller samples its trajectory; write: the new command goes to the drives.
An update more than 1.5 periods after the previous one first runs the updates it missed (one
period apart), so a late simulator process never makes the controller skip ahead.

Contacts count in episodes (an episode starts when a physics step touches an obstacle after
one that did not). While the obstacle set is invalid (a marker the simulator cannot represent),
the arm is held where it was when the bad message came (a safe state; the controller's commands
are ignored) until a valid obstacles message arrives.

Goals are end-effector positions in the base frame: (x, y) for the planar arm, (x, y, z) for a
URDF arm (the origin of its `tool_link`); a URDF arm takes 3-D obstacles only from /obstacles
(`static_obstacles`, circles in the plane, are for the planar arm).
"""

from __future__ import annotations

import math

from .arm import ArmModel, MarkerSet
from .config import Physics, RobotDescription
from .jtc import JtcSettings, Point, TrajectoryController

REST_VELOCITY_RAD_S = 1e-3
# An actuator torque within this fraction of its limit counts as saturated.
SATURATION_FRACTION = 1.0 - 1e-6


class Simulation:
    def __init__(self, robot: RobotDescription, physics: Physics, settings: JtcSettings,
                 initial_positions, update_period_secs, goal_tolerance_m,
                 base_frame='base_link', static_obstacles=()):
        settings.validate()
        names = robot.joint_names
        if sorted(settings.joints) != sorted(names):
            raise ValueError(f'`joints`: lists {settings.joints}, the robot has {names}')
        if not (goal_tolerance_m > 0 and math.isfinite(goal_tolerance_m)):
            raise ValueError(f'`goal_tolerance_m`: must be finite and > 0, found {goal_tolerance_m}')
        if not update_period_secs >= physics.timestep_secs:
            raise ValueError(f'`update_rate_hz`: the update period {update_period_secs} s is '
                             f'shorter than the physics timestep {physics.timestep_secs} s')
        self.robot = robot
        self.physics = physics
        self.settings = settings
        self.update_period_secs = update_period_secs
        self.goal_tolerance_m = goal_tolerance_m
        # For each controller joint, its index in robot (MuJoCo) order.
        self.robot_index = [names.index(j) for j in settings.joints]
        for j, q in zip(settings.joints, initial_positions):
            limits = robot.joints[names.index(j)]
            if not (limits.lower_rad <= q <= limits.upper_rad):
                raise ValueError(f'`initial_positions`: joint `{j}` at {q} rad is outside its '
                                 f'limits [{limits.lower_rad}, {limits.upper_rad}]')
        if not robot.planar and list(static_obstacles):
            raise ValueError('`static_obstacles`: x, y, radius circles are for the planar arm; '
                             f'`{robot.name}` takes 3-D obstacles from /obstacles')
        self.markers = MarkerSet(base_frame, static_obstacles, physics.obstacle_min_height_m,
                                 three_d=not robot.planar)
        self.arm = ArmModel(robot, physics, self._to_robot(initial_positions),
                            self.markers.obstacles())
        self._reset_state(initial_positions)

    def _reset_state(self, positions):
        self.controller = TrajectoryController(self.settings, list(positions),
                                               self.update_period_secs)
        self.command = list(positions)
        # The drives' position target at the last update, and whether it moved then.
        self.target = list(positions)
        self.target_moved = False
        self.hold = None
        self.last_update_secs = None
        self.updates = 0
        self.catch_up_updates = 0
        self.physics_steps = 0
        self.contacts = 0
        self.contact_steps = 0
        self.in_contact = False
        self.max_penetration_m = 0.0
        self.clearance_m = None
        self.min_clearance_m = None
        self.tracking_error_rad = 0.0
        self.max_tracking_error_rad = 0.0
        self.tracking_sq_sum = 0.0
        self.tracking_moving_updates = 0
        self.saturated_updates = 0
        self.rejected_by_rule = {}
        self.goal = None            # [goal_m, received_secs, reached_secs]
        self.goals_received = 0
        self.goals_reached = 0
        self.obstacle_messages_rejected = 0

    def reset(self, positions):
        """At rest at `positions` (controller order): the controller holds there and every
        counter starts again (the obstacles stay)."""
        self.arm.reset(self._to_robot(positions))
        self._reset_state(positions)

    # --- orders ---------------------------------------------------------------------------
    def _to_robot(self, values):
        out = [0.0] * len(values)
        for c, r in enumerate(self.robot_index):
            out[r] = values[c]
        return out

    def _to_controller(self, values):
        return [values[r] for r in self.robot_index]

    @property
    def joint_names(self):
        return list(self.settings.joints)

    # --- inputs ---------------------------------------------------------------------------
    def receive_trajectory(self, msg, now_secs):
        rejection = self.controller.receive(msg, now_secs)
        if rejection is not None:
            self.rejected_by_rule[rejection.rule] = self.rejected_by_rule.get(rejection.rule, 0) + 1
        return rejection

    def on_markers(self, markers, now_secs):
        """An obstacles message (MarkerIn list); returns None or the rejection text."""
        error = self.markers.apply(markers, now_secs)
        if error is None:
            self.arm.set_obstacles(self.markers.obstacles())
            self.hold = None
        else:
            self.obstacle_messages_rejected += 1
            if self.hold is None:
                self.hold = self._to_controller(self.arm.positions())
        return error

    def set_goal(self, goal_m, now_secs):
        self.goals_received += 1
        self.goal = [list(goal_m), now_secs, None]

    # --- the cycle ------------------------------------------------------------------------
    def update(self, now_secs):
        """The update at `now_secs`; returns (names, positions, velocities) read at `now`.

        An update that comes more than 1.5 periods after the previous one (the simulator's own
        process was late: on the system clock a busy machine delays it) first runs the
        controller updates it missed, one period apart, each with its physics: the simulated
        arm and controller do not stall with the process, and the controller never skips
        ahead along its trajectory in one cycle (`catch_up_updates` counts them)."""
        period = self.update_period_secs
        last = self.last_update_secs
        if last is not None and now_secs - last > 1.5 * period:
            missed = int(round((now_secs - last) / period)) - 1
            for k in range(1, missed + 1):
                self._cycle(last + k * period)
                self.catch_up_updates += 1
        return self._cycle(now_secs)

    def _cycle(self, now_secs):
        """One controller update at `now_secs` (module docs)."""
        if self.markers.expire(now_secs):
            self.arm.set_obstacles(self.markers.obstacles())
        dt = None if self.last_update_secs is None else now_secs - self.last_update_secs
        if dt is not None and dt > 0:
            self._advance(dt)
        if self.last_update_secs is None or now_secs > self.last_update_secs:
            self.last_update_secs = now_secs
        self.updates += 1
        q = self._to_controller(self.arm.positions())
        v = self._to_controller(self.arm.velocities())
        if dt is not None and dt > 0:
            error = max(abs(c - x) for c, x in zip(self.target, q))
            self.tracking_error_rad = error
            self.max_tracking_error_rad = max(self.max_tracking_error_rad, error)
            if self.target_moved:
                self.tracking_sq_sum += error * error
                self.tracking_moving_updates += 1
        self.clearance_m = self.arm.clearance()
        if self.clearance_m is not None:
            self.min_clearance_m = self.clearance_m if self.min_clearance_m is None else \
                min(self.min_clearance_m, self.clearance_m)
        self._check_goal(v, now_secs)
        command = self.controller.update(now_secs, Point(list(q), list(v)))
        self.command = list(self.hold) if self.hold is not None else list(command.positions)
        return self.joint_names, q, v

    def _advance(self, dt):
        """Physics over `dt`: the drives' target moves from where it was toward the command
        at the rate that reaches it one update period after it was given (JTC's command is the
        position for the end of the cycle), with that rate as the velocity target; an update
        that comes early stops short of it, a late one (at most 1.5 periods, see `update`)
        carries on at the same rate."""
        steps = max(1, round(dt / self.physics.timestep_secs))
        period = self.update_period_secs
        start = self._to_robot(self.target)
        velocity = [(e - s) / period for s, e in zip(start, self._to_robot(self.command))]
        limits = self.physics.effort_limits_nm
        saturated = False
        for k in range(1, steps + 1):
            elapsed = dt * k / steps
            self.arm.set_targets([s + v * elapsed for s, v in zip(start, velocity)], velocity)
            depth = self.arm.step()
            self.physics_steps += 1
            touching = self.arm.data.ncon > 0 and depth >= 0.0 and self.arm.in_contact()
            if touching:
                self.contact_steps += 1
                self.max_penetration_m = max(self.max_penetration_m, depth)
                self.min_clearance_m = -depth if self.min_clearance_m is None else \
                    min(self.min_clearance_m, -depth)
                if not self.in_contact:
                    self.contacts += 1
            self.in_contact = touching
            torques = self.arm.actuator_torques()
            saturated |= any(abs(t) >= SATURATION_FRACTION * lim for t, lim in zip(torques, limits))
        self.saturated_updates += int(saturated)
        self.target_moved = any(abs(v) * period > 1e-12 for v in velocity)
        self.target = self._to_controller([s + v * dt for s, v in zip(start, velocity)])

    def _check_goal(self, v, now_secs):
        if self.goal is None or self.goal[2] is not None:
            return
        distance = self._goal_distance()
        if distance <= self.goal_tolerance_m and all(abs(x) <= REST_VELOCITY_RAD_S for x in v):
            self.goal[2] = now_secs
            self.goals_reached += 1

    def _goal_distance(self):
        at, goal = self.arm.end_effector(), self.goal[0]
        return math.hypot(*(a - g for a, g in zip(at, goal)))

    # --- reports --------------------------------------------------------------------------
    def report(self):
        stats = self.controller.stats
        goal = self.goal
        return {
            'sim_time_secs': self.last_update_secs or 0.0,
            'updates': self.updates,
            'catch_up_updates': self.catch_up_updates,
            'physics_steps': self.physics_steps,
            'contacts': self.contacts,
            'in_contact': self.in_contact,
            'contact_steps': self.contact_steps,
            'max_penetration_m': self.max_penetration_m,
            'clearance_m': self.clearance_m,
            'min_clearance_m': self.min_clearance_m,
            'trajectories_accepted': stats.accepted,
            'trajectories_rejected': stats.rejected,
            'rejected_by_rule': dict(sorted(self.rejected_by_rule.items())),
            'last_rejection': None if stats.last_rejection is None else str(stats.last_rejection),
            'tracking_error_rad': self.tracking_error_rad,
            'max_tracking_error_rad': self.max_tracking_error_rad,
            'rms_tracking_error_rad': math.sqrt(self.tracking_sq_sum / self.tracking_moving_updates)
            if self.tracking_moving_updates else 0.0,
            'saturated_updates': self.saturated_updates,
            'goals_received': self.goals_received,
            'goals_reached': self.goals_reached,
            'goal_m': None if goal is None else goal[0],
            'goal_distance_m': None if goal is None else self._goal_distance(),
            'goal_reached': goal is not None and goal[2] is not None,
            'time_to_goal_secs': None if goal is None or goal[2] is None else goal[2] - goal[1],
            'obstacles': len(self.markers.obstacles()),
            'obstacles_valid': self.markers.valid,
            'holding': self.hold is not None,
            'positions_rad': self._to_controller(self.arm.positions()),
        }


def status(report, name):
    """The `<name>: arm` status as diffusion_planner_sim writes it (src/sim/simulation.rs
    `SimReport::status`): (level 0/1/2, message, [(key, value)]), MuJoCo's contacts as the
    collisions, plus the MuJoCo-only values."""
    in_collision = report['in_contact']
    if in_collision:
        level = 2
    elif report['contacts'] > 0 or report['trajectories_rejected'] > 0 or report['holding']:
        level = 1
    else:
        level = 0
    parts = []
    if in_collision:
        parts.append('in collision')
    if report['contacts'] > 0:
        parts.append(f"{report['contacts']} collisions")
    if report['last_rejection']:
        parts.append(f"{report['trajectories_rejected']} rejected trajectories (last: "
                     f"{report['last_rejection']})")
    if report['holding']:
        parts.append('holding: the obstacle set is invalid')

    def opt(v, digits):
        return 'n/a' if v is None else f'{v:.{digits}f}'

    goal = report['goal_m']
    values = [
        ('sim_time_s', f"{report['sim_time_secs']:.3f}"),
        ('updates', str(report['updates'])),
        ('collisions', str(report['contacts'])),
        ('in_collision', str(in_collision).lower()),
        ('clearance_m', opt(report['clearance_m'], 4)),
        ('min_clearance_m', opt(report['min_clearance_m'], 4)),
        ('trajectories_accepted', str(report['trajectories_accepted'])),
        ('trajectories_rejected', str(report['trajectories_rejected'])),
        ('rejected_by_rule', ', '.join(f'{n} {r}' for r, n in report['rejected_by_rule'].items())),
        ('last_rejection', report['last_rejection'] or ''),
        ('tracking_error_rad', f"{report['tracking_error_rad']:.6f}"),
        ('max_tracking_error_rad', f"{report['max_tracking_error_rad']:.6f}"),
        ('saturated_updates', str(report['saturated_updates'])),
        ('goals_received', str(report['goals_received'])),
        ('goals_reached', str(report['goals_reached'])),
        ('goal_m', 'n/a' if goal is None else ', '.join(f'{g:.4f}' for g in goal)),
        ('goal_distance_m', opt(report['goal_distance_m'], 4)),
        ('goal_reached', str(report['goal_reached']).lower()),
        ('time_to_goal_s', opt(report['time_to_goal_secs'], 3)),
        ('obstacles', str(report['obstacles'])),
        ('positions_rad', ', '.join(f'{p:.4f}' for p in report['positions_rad'])),
        # MuJoCo only:
        ('simulator', 'mujoco'),
        ('physics_steps', str(report['physics_steps'])),
        ('catch_up_updates', str(report['catch_up_updates'])),
        ('contact_steps', str(report['contact_steps'])),
        ('max_penetration_m', f"{report['max_penetration_m']:.6f}"),
        ('rms_tracking_error_rad', f"{report['rms_tracking_error_rad']:.6f}"),
        ('holding', str(report['holding']).lower()),
    ]
    return level, '; '.join(parts) if parts else 'ok', values
