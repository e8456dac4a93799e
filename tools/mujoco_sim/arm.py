"""The planar arm in MuJoCo: an MJCF built from the robot description and the physical
parameters, obstacles from `/obstacles` markers as MuJoCo geoms, contacts and distances.

- Links: capsules of the description's length and radius with the configured masses, hinge
  joints about z with the description's position limits, damping and armature; each joint has a
  position actuator (kp) and a velocity actuator (kv), together a PD drive toward the commanded
  position and velocity, whose summed torque is clamped to the effort limit
  (`actuatorfrcrange`). The arm moves in the plane z = PLANE_Z_M (the URDF's shoulder height);
  gravity is along -z, so it loads the joint axes, not the drives.
- Obstacles (`MarkerSet`): RViz marker semantics (ADD, DELETE, DELETEALL by (ns, id),
  `lifetime`) as the node applies them (src/ros/obstacles.rs), with SPHERE, CYLINDER and CUBE;
  a message is applied whole or not at all, and a marker that cannot be represented (another
  type or action, another frame, non-finite or non-positive size) makes the set invalid. Every
  obstacle is centred on the arm's plane (its z ignored, as the planner sees circles in the
  plane); cylinders stand perpendicular to the plane and cylinders and boxes are at least
  `obstacle_min_height_m` high. Only link-obstacle pairs collide (contype/conaffinity).
- `ArmModel` rebuilds the MuJoCo model when the obstacles change and carries the joint state
  and actuator targets across.
- A URDF arm (the Panda, `UrdfRobot`) is built by tools/mujoco_sim/urdf_arm.py instead of
  `mjcf`, with the same actuators, contact bits and names (`obstacle<k>`, site `tool0`); its
  obstacles are 3-D (`MarkerSet(three_d=True)`): SPHERE (equal diameters), CUBE (full extents)
  and CYLINDER (x = y = diameter, z = height, axis along the marker's z) at the marker's pose,
  as src/robot/world.rs reads markers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mujoco
import numpy as np

from .config import Physics, RobotDescription

PLANE_Z_M = 0.13

# visualization_msgs/Marker constants.
CUBE, SPHERE, CYLINDER = 1, 2, 3
ADD, DELETE, DELETEALL = 0, 2, 3
TYPE_NAMES = {0: 'ARROW', 1: 'CUBE', 2: 'SPHERE', 3: 'CYLINDER', 4: 'LINE_STRIP', 5: 'LINE_LIST',
              6: 'CUBE_LIST', 7: 'SPHERE_LIST', 8: 'POINTS', 9: 'TEXT_VIEW_FACING',
              10: 'MESH_RESOURCE', 11: 'TRIANGLE_LIST', 12: 'ARROW_STRIP'}


@dataclass
class MarkerIn:
    """One visualization_msgs/Marker of an obstacles message."""
    ns: str = ''
    id: int = 0
    kind: int = CYLINDER
    action: int = ADD
    frame_id: str = 'base_link'
    position_m: tuple = (0.0, 0.0, 0.0)
    orientation_xyzw: tuple = (0.0, 0.0, 0.0, 1.0)
    scale_m: tuple = (0.1, 0.1, 0.1)
    lifetime_secs: float = 0.0


@dataclass(frozen=True)
class Obstacle:
    """An obstacle geom: kind 'sphere' (size: radius), 'cylinder' (radius, half height) or 'box'
    (half sizes); centre (x, y) in the base frame, (x, y, z) for a URDF arm; quaternion
    (w, x, y, z) for boxes (and every 3-D obstacle)."""
    kind: str
    center_m: tuple
    size_m: tuple
    quat_wxyz: tuple = (1.0, 0.0, 0.0, 0.0)


def _type_name(kind):
    return f'{TYPE_NAMES[kind]} ({kind})' if kind in TYPE_NAMES else f'type {kind}'


def _strip_slash(frame):
    return frame[1:] if frame.startswith('/') else frame


class MarkerSet:
    """The obstacle set of the marker stream plus the static obstacles (module docs)."""

    def __init__(self, base_frame='base_link', static_obstacles=(), min_height_m=0.2,
                 three_d=False):
        self.base_frame = _strip_slash(base_frame)
        self.min_height_m = min_height_m
        self.three_d = three_d
        self.static = [Obstacle('cylinder', (x, y), (r, 0.5 * min_height_m))
                       for x, y, r in static_obstacles]
        self.markers = {}   # (ns, id) -> (Obstacle, expires_secs or None)
        self.valid = True
        self.last_error = None

    def apply(self, msg, now):
        """Applies a message (a list of MarkerIn); returns None or the rejection text."""
        nxt = dict(self.markers)
        for m in msg:
            error = self._apply_one(nxt, m, now)
            if error is not None:
                self.valid = False
                self.last_error = error
                return error
        self.markers = nxt
        self.valid = True
        self.last_error = None
        return None

    def _apply_one(self, nxt, m, now):
        name = f'marker `{m.ns}`/{m.id}'
        if m.action == DELETEALL:
            for key in [k for k in nxt if not m.ns or k[0] == m.ns]:
                del nxt[key]
            return None
        if m.action == DELETE:
            nxt.pop((m.ns, m.id), None)
            return None
        if m.action != ADD:
            return f'{name}: unknown action {m.action}'
        if m.kind not in (SPHERE, CYLINDER, CUBE):
            return (f'{name} is a {_type_name(m.kind)}: only SPHERE, CYLINDER and CUBE obstacles '
                    'are supported')
        if _strip_slash(m.frame_id) != self.base_frame:
            return f'{name} is in frame `{m.frame_id}`, expected base_frame `{self.base_frame}`'
        values = list(m.position_m[:3 if self.three_d else 2]) + list(m.scale_m) + \
            list(m.orientation_xyzw)
        if not all(math.isfinite(v) for v in values):
            return f'{name}: position, scale or orientation is not finite'
        if not (math.isfinite(m.lifetime_secs) and m.lifetime_secs >= 0.0):
            return f'{name}: lifetime {m.lifetime_secs} s is not finite and >= 0'
        if self.three_d:
            obstacle = _obstacle_3d(name, m)
            if isinstance(obstacle, str):
                return obstacle
            expires = now + m.lifetime_secs if m.lifetime_secs > 0 else None
            nxt[(m.ns, m.id)] = (obstacle, expires)
            return None
        sx, sy, sz = m.scale_m
        center = (float(m.position_m[0]), float(m.position_m[1]))
        half_height = 0.5 * max(sz, self.min_height_m)
        if m.kind == CUBE:
            if not (sx > 0 and sy > 0 and sz > 0):
                return f'{name}: scale {tuple(m.scale_m)} must be > 0'
            x, y, z, w = m.orientation_xyzw
            norm = math.sqrt(w * w + x * x + y * y + z * z)
            quat = (1.0, 0.0, 0.0, 0.0) if norm == 0 else (w / norm, x / norm, y / norm, z / norm)
            obstacle = Obstacle('box', center, (0.5 * sx, 0.5 * sy, half_height), quat)
        else:
            radius = 0.5 * max(sx, sy)
            if not radius > 0:
                return f'{name}: radius {radius} m must be > 0'
            if m.kind == SPHERE:
                obstacle = Obstacle('sphere', center, (radius,))
            else:
                obstacle = Obstacle('cylinder', center, (radius, half_height))
        expires = now + m.lifetime_secs if m.lifetime_secs > 0 else None
        nxt[(m.ns, m.id)] = (obstacle, expires)
        return None

    def expire(self, now):
        """Drops the markers whose lifetime ran out; returns whether the set changed."""
        before = len(self.markers)
        self.markers = {k: v for k, v in self.markers.items() if v[1] is None or now < v[1]}
        return len(self.markers) != before

    def obstacles(self):
        """The static obstacles, then the markers' in (ns, id) order."""
        return self.static + [self.markers[k][0] for k in sorted(self.markers)]


def _obstacle_3d(name, m):
    """The 3-D obstacle of an ADD marker (module docs), or the rejection text."""
    sx, sy, sz = (float(v) for v in m.scale_m)
    if not (sx > 0 and sy > 0 and sz > 0):
        return f'{name}: scale {tuple(m.scale_m)} must be > 0'

    def same(a, b):
        return abs(a - b) <= 1e-9 * max(abs(a), abs(b))

    x, y, z, w = (float(v) for v in m.orientation_xyzw)
    norm = math.sqrt(w * w + x * x + y * y + z * z)
    quat = (1.0, 0.0, 0.0, 0.0) if norm == 0 else (w / norm, x / norm, y / norm, z / norm)
    center = tuple(float(v) for v in m.position_m[:3])
    if m.kind == SPHERE:
        if not (same(sx, sy) and same(sy, sz)):
            return f'{name}: a SPHERE needs equal diameters (no ellipsoids), found {(sx, sy, sz)}'
        return Obstacle('sphere', center, (0.5 * sx,), quat)
    if m.kind == CYLINDER:
        if not same(sx, sy):
            return (f'{name}: a CYLINDER needs scale.x = scale.y (one diameter), found '
                    f'{(sx, sy, sz)}')
        return Obstacle('cylinder', center, (0.5 * sx, 0.5 * sz), quat)
    return Obstacle('box', center, (0.5 * sx, 0.5 * sy, 0.5 * sz), quat)


def build_model(robot, physics: Physics, obstacles=()):
    """The MuJoCo model of `robot` (planar: `mjcf`; URDF: urdf_arm.build) with `obstacles`."""
    if robot.planar:
        return mujoco.MjModel.from_xml_string(mjcf(robot, physics, obstacles))
    from .urdf_arm import build
    return build(robot, physics, obstacles)


def _vec(values):
    return ' '.join(repr(float(v)) for v in values)


def mjcf(robot: RobotDescription, physics: Physics, obstacles=()) -> str:
    """The MJCF (XML text) of the arm and the obstacles (module docs)."""
    r = robot.link_radius_m
    bx, by = robot.base_position_m
    parts = [f'<mujoco model="{robot.name}">',
             '  <compiler angle="radian" autolimits="true"/>',
             f'  <option timestep="{physics.timestep_secs!r}" integrator="{physics.integrator}"/>',
             '  <worldbody>',
             f'    <geom name="base" type="cylinder" pos="{_vec([bx, by, 0.05])}" size="0.06 0.05" '
             'contype="0" conaffinity="0" mass="0"/>']
    indent = '    '
    pos = [bx, by, PLANE_Z_M]
    for i, (joint, length) in enumerate(zip(robot.joints, robot.link_lengths_m)):
        j = f'{i + 1}'
        parts += [
            f'{indent}<body name="link{j}" pos="{_vec(pos)}">',
            f'{indent}  <joint name="{joint.name}" type="hinge" axis="0 0 1" '
            f'range="{_vec([joint.lower_rad, joint.upper_rad])}" '
            f'damping="{physics.joint_damping_nms_per_rad[i]!r}" '
            f'armature="{physics.armature_kgm2[i]!r}" '
            f'actuatorfrcrange="{_vec([-physics.effort_limits_nm[i], physics.effort_limits_nm[i]])}"/>',
            f'{indent}  <geom name="link{j}" type="capsule" fromto="0 0 0 {length!r} 0 0" '
            f'size="{r!r}" mass="{physics.link_masses_kg[i]!r}" contype="1" conaffinity="0"/>',
        ]
        indent += '  '
        pos = [length, 0.0, 0.0]
    parts.append(f'{indent}<site name="tool0" pos="{_vec(pos)}"/>')
    for _ in robot.joints:
        indent = indent[:-2]
        parts.append(f'{indent}</body>')
    for k, o in enumerate(obstacles):
        center = [o.center_m[0], o.center_m[1], PLANE_Z_M]
        quat = f' quat="{_vec(o.quat_wxyz)}"' if o.kind == 'box' else ''
        parts.append(f'    <geom name="obstacle{k}" type="{o.kind}" pos="{_vec(center)}" '
                     f'size="{_vec(o.size_m)}"{quat} contype="0" conaffinity="1"/>')
    parts.append('  </worldbody>')
    parts.append('  <actuator>')
    for i, joint in enumerate(robot.joints):
        parts.append(f'    <position name="{joint.name}_position" joint="{joint.name}" '
                     f'kp="{physics.kp_nm_per_rad[i]!r}"/>')
    for i, joint in enumerate(robot.joints):
        parts.append(f'    <velocity name="{joint.name}_velocity" joint="{joint.name}" '
                     f'kv="{physics.kv_nms_per_rad[i]!r}"/>')
    parts.append('  </actuator>')
    parts.append('</mujoco>')
    return '\n'.join(parts) + '\n'


class ArmModel:
    """The MuJoCo model and data of the arm (robot joint order) with the current obstacles."""

    # Distances beyond this are not searched (mj_geomDistance's distmax), metres.
    DISTANCE_MAX_M = 10.0

    def __init__(self, robot: RobotDescription, physics: Physics, positions, obstacles=()):
        self.robot = robot
        self.physics = physics
        self.n = len(robot.joints)
        self._build(list(obstacles), np.asarray(positions, float), np.zeros(self.n),
                    np.asarray(positions, float), np.zeros(self.n))

    def _build(self, obstacles, qpos, qvel, target_p, target_v):
        self.obstacles = obstacles
        self.model = build_model(self.robot, self.physics, obstacles)
        self.data = mujoco.MjData(self.model)
        self.data.qpos[:] = qpos
        self.data.qvel[:] = qvel
        self.set_targets(target_p, target_v)
        mujoco.mj_forward(self.model, self.data)
        if self.robot.planar:
            self.link_geoms = [mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_GEOM,
                                                 f'link{i + 1}') for i in range(self.n)]
        else:
            # The collision geoms of the moving links (the base link is welded to the world).
            self.link_geoms = [g for g in range(self.model.ngeom)
                               if self.model.geom_contype[g] == 1 and
                               self.model.body_weldid[self.model.geom_bodyid[g]] != 0]
        self.obstacle_geoms = [mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_GEOM,
                                                 f'obstacle{k}') for k in range(len(obstacles))]
        table = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_GEOM, 'table')
        if table >= 0:
            self.obstacle_geoms.append(table)
        self.tool = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_SITE, 'tool0')
        self._fromto = np.zeros(6)

    def set_obstacles(self, obstacles):
        """Rebuilds the model with `obstacles` when they differ (joint state kept)."""
        obstacles = list(obstacles)
        if obstacles != self.obstacles:
            self._build(obstacles, self.data.qpos.copy(), self.data.qvel.copy(),
                        self.data.ctrl[:self.n].copy(), self.data.ctrl[self.n:].copy())

    def reset(self, positions):
        """At rest at `positions`, the drives holding there."""
        q = np.asarray(positions, float)
        self._build(self.obstacles, q, np.zeros(self.n), q, np.zeros(self.n))

    def set_targets(self, positions, velocities):
        self.data.ctrl[:self.n] = positions
        self.data.ctrl[self.n:] = velocities

    def step(self):
        """One physics step; returns the deepest link-obstacle penetration (metres, > 0) or
        0.0 without contact."""
        mujoco.mj_step(self.model, self.data)
        depth = 0.0
        for i in range(self.data.ncon):
            depth = max(depth, -float(self.data.contact[i].dist))
        return depth if self.data.ncon else 0.0

    def in_contact(self):
        return any(self.data.contact[i].dist <= 0.0 for i in range(self.data.ncon))

    def positions(self):
        return self.data.qpos.tolist()

    def velocities(self):
        return self.data.qvel.tolist()

    def actuator_torques(self):
        """The drives' summed torque per joint (after the effort clamp), N m."""
        return self.data.qfrc_actuator.tolist()

    def end_effector(self):
        """The tool site's position: (x, y) for the planar arm, (x, y, z) for a URDF arm."""
        return self.data.site_xpos[self.tool][:2 if self.robot.planar else 3].tolist()

    def clearance(self):
        """The smallest link-obstacle distance (MuJoCo's mj_geomDistance; negative when
        penetrating; a URDF arm's table counts as an obstacle), metres, or None without
        obstacles."""
        best = None
        for g in self.link_geoms:
            for o in self.obstacle_geoms:
                d = mujoco.mj_geomDistance(self.model, self.data, g, o, self.DISTANCE_MAX_M,
                                           self._fromto)
                best = d if best is None else min(best, d)
        return best
