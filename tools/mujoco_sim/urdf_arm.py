"""A URDF arm (the Panda of urdf/panda/) in MuJoCo: MuJoCo's own URDF import, then the
simulator's drives, contact bits, table and obstacles added through `mujoco.MjSpec`.

- The URDF is read as it is, with one `<mujoco><compiler .../></mujoco>` element added:
  the collision meshes' folder (`meshdir`, from the URDF's `<collision><mesh filename>`,
  `package://` resolved against the URDF's folder), `strippath`, `discardvisual` (the visual
  meshes are not in the repository; the collision meshes are what contacts are computed on)
  and `fusestatic="false"` (every link stays a body, so `tool_link` keeps its frame). Masses and
  inertias are the URDF's.
- The movable joints off the chain to `tool_link` (the Panda's fingers) are removed, with the
  equality constraints of their `<mimic>`: their links are welded to the hand at joint position
  0 (the Panda's fingers: closed; their range starts at 0).
- Chain joints: range from the robot description (the URDF's limits or joint_limits.yaml),
  `damping`, `armature`, `actuatorfrcrange` = +-effort limit; with `gravity_compensation`
  every moving body has `gravcomp="1"` and the joints `actuatorgravcomp="true"`: MuJoCo adds
  the gravity torque to the drives' force (`qfrc_actuator`), inside the same effort clamp, as
  the arm's own controller compensates gravity within its torque limits.
- Drives as for the planar arm: a position actuator (kp) and a velocity actuator (kv) per
  joint, `<joint>_position` then `<joint>_velocity`, so `data.ctrl` is n positions then n
  velocities.
- Contacts: robot geoms contype 1 / conaffinity 0, the table (`table`, a box) and obstacles
  (`obstacle<k>`) contype 0 / conaffinity 1: only robot-obstacle and robot-table pairs
  collide (no self-collision). MuJoCo collides meshes as their convex hulls.
- A site `tool0` at the origin of `tool_link` (goal checks, end_effector()).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import mujoco

INTEGRATORS = {'implicitfast': mujoco.mjtIntegrator.mjINT_IMPLICITFAST,
               'implicit': mujoco.mjtIntegrator.mjINT_IMPLICIT,
               'Euler': mujoco.mjtIntegrator.mjINT_EULER,
               'RK4': mujoco.mjtIntegrator.mjINT_RK4}
GEOM_TYPES = {'sphere': mujoco.mjtGeom.mjGEOM_SPHERE, 'cylinder': mujoco.mjtGeom.mjGEOM_CYLINDER,
              'box': mujoco.mjtGeom.mjGEOM_BOX}

_cache = {}


def _mesh_dir(urdf_path: Path, root) -> Path:
    urdf_path = urdf_path.resolve()
    dirs = set()
    for mesh in root.iter('mesh'):
        parents = [c for c in root.iter('collision') if mesh in list(c.iter('mesh'))]
        if not parents:
            continue
        name = mesh.get('filename', '')
        if name.startswith('package://'):
            # package://<package>/<path>: the URDF's folder is the package's (urdf/panda/).
            rest = name[len('package://'):]
            candidate = urdf_path.parent / rest
            if not candidate.exists() and '/' in rest:
                candidate = urdf_path.parent / rest.split('/', 1)[1]
            name = str(candidate)
        elif name.startswith('file://'):
            name = name[len('file://'):]
        path = Path(name)
        if not path.is_absolute():
            path = urdf_path.parent / path
        dirs.add(path.resolve().parent)
    if len(dirs) > 1:
        raise ValueError(f'{urdf_path}: collision meshes in {len(dirs)} folders; the MuJoCo '
                         'simulator takes one')
    return dirs.pop() if dirs else urdf_path.parent.resolve()


def urdf_text(urdf_path) -> str:
    """The URDF with the `<mujoco>` compiler element (module docs)."""
    urdf_path = Path(urdf_path)
    key = str(urdf_path.resolve())
    if key not in _cache:
        text = urdf_path.read_text()
        meshdir = _mesh_dir(urdf_path, ET.fromstring(text))
        extension = (f'<mujoco><compiler meshdir="{meshdir}/" strippath="true" '
                     'discardvisual="true" fusestatic="false"/></mujoco>')
        text, count = re.subn(r'(<robot\b[^>]*>)', lambda m: m.group(1) + extension, text, count=1)
        if count != 1:
            raise ValueError(f'{urdf_path}: no <robot> element')
        _cache[key] = text
    return _cache[key]


def build(robot, physics, obstacles=()):
    """The compiled MjModel of `robot` (config.UrdfRobot) with `physics` and `obstacles`."""
    spec = mujoco.MjSpec.from_string(urdf_text(robot.urdf_path))
    spec.option.timestep = physics.timestep_secs
    spec.option.integrator = INTEGRATORS[physics.integrator]
    joints = {j.name: j for j in spec.joints}
    locked = set(robot.locked_joints)
    for equality in list(spec.equalities):     # <mimic> of a locked joint
        if equality.name1 in locked or equality.name2 in locked:
            spec.delete(equality)
    for name in robot.locked_joints:
        spec.delete(joints.pop(name))
    gravcomp = bool(physics.gravity_compensation)
    for body in spec.bodies:
        if body.name != 'world':
            body.gravcomp = 1.0 if gravcomp else 0.0
    for geom in spec.geoms:
        geom.contype, geom.conaffinity = 1, 0
    for i, joint in enumerate(robot.joints):
        j = joints[joint.name]
        j.range = [joint.lower_rad, joint.upper_rad]
        j.limited = mujoco.mjtLimited.mjLIMITED_TRUE
        j.damping = [physics.joint_damping_nms_per_rad[i], 0.0, 0.0]   # linear viscous damping
        j.armature = physics.armature_kgm2[i]
        effort = physics.effort_limits_nm[i]
        j.actfrcrange = [-effort, effort]
        j.actfrclimited = mujoco.mjtLimited.mjLIMITED_TRUE
        j.actgravcomp = gravcomp
    tool = spec.body(robot.tool_link)
    tool.add_site(name='tool0', pos=[0.0, 0.0, 0.0])
    world = spec.worldbody
    if physics.table is not None:
        world.add_geom(name='table', type=mujoco.mjtGeom.mjGEOM_BOX,
                       pos=physics.table['center_m'],
                       size=[0.5 * v for v in physics.table['size_m']],
                       contype=0, conaffinity=1, rgba=[0.55, 0.45, 0.35, 1.0])
    for k, o in enumerate(obstacles):
        size = list(o.size_m) + [0.0] * (3 - len(o.size_m))
        world.add_geom(name=f'obstacle{k}', type=GEOM_TYPES[o.kind], pos=list(o.center_m),
                       quat=list(o.quat_wxyz), size=size, contype=0, conaffinity=1,
                       rgba=[0.8, 0.3, 0.3, 0.6])
    for i, joint in enumerate(robot.joints):
        a = spec.add_actuator(name=f'{joint.name}_position', target=joint.name,
                              trntype=mujoco.mjtTrn.mjTRN_JOINT)
        a.set_to_position(kp=physics.kp_nm_per_rad[i])
    for i, joint in enumerate(robot.joints):
        a = spec.add_actuator(name=f'{joint.name}_velocity', target=joint.name,
                              trntype=mujoco.mjtTrn.mjTRN_JOINT)
        a.set_to_velocity(kv=physics.kv_nms_per_rad[i])
    return spec.compile()
