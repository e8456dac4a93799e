"""The robot description and the physical parameters of the MuJoCo simulator, validated: a
missing, unknown, mistyped or out-of-range key is a ConfigError that names it.

Two kinds of robot: the planar 2-link arm (`RobotDescription`, from a model.yaml / data config
or `synthetic`, physics in config/mujoco_planar_arm.yaml) and a URDF arm (`UrdfRobot`, a
`model_path` ending in `.urdf`, physics and the simulator's robot settings in a file like
config/mujoco_panda.yaml). `load(model_path, physics_file)` loads either."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import yaml

SYNTHETIC_MODEL_PATH = 'synthetic'
INTEGRATORS = ('implicitfast', 'implicit', 'Euler', 'RK4')


class ConfigError(ValueError):
    """A bad parameter; the message starts with the key in backquotes."""


@dataclass
class Joint:
    name: str
    lower_rad: float
    upper_rad: float
    max_velocity_rad_s: float
    max_acceleration_rad_s2: float


@dataclass
class RobotDescription:
    """The `robot:` section of a model.yaml or data config (src/robot/description.rs)."""
    name: str
    joints: list
    link_lengths_m: list
    link_radius_m: float
    base_position_m: list

    # The planar arm moves in a horizontal plane; goals and obstacles are 2-D.
    planar = True

    @property
    def joint_names(self):
        return [j.name for j in self.joints]

    @staticmethod
    def planar_2link():
        return RobotDescription(
            'planar_2link',
            [Joint('shoulder', -math.pi, math.pi, 1.5, 3.0), Joint('elbow', -2.8, 2.8, 1.5, 3.0)],
            [0.5, 0.4], 0.03, [0.0, 0.0])

    @staticmethod
    def from_dict(d, origin):
        try:
            joints = [Joint(j['name'], float(j['lower_rad']), float(j['upper_rad']),
                            float(j['max_velocity_rad_s']), float(j['max_acceleration_rad_s2']))
                      for j in d['joints']]
            robot = RobotDescription(str(d['name']), joints,
                                     [float(v) for v in d['link_lengths_m']],
                                     float(d['link_radius_m']),
                                     [float(v) for v in d.get('base_position_m', [0.0, 0.0])])
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(f'`model_path`: the robot description in {origin} is invalid: '
                              f'{e!r}') from e
        if len(robot.joints) != 2 or len(robot.link_lengths_m) != 2:
            raise ConfigError(f'`model_path`: {origin} describes {len(robot.joints)} joints; the '
                              'MuJoCo simulator builds planar 2-link arms')
        for j in robot.joints:
            if not (j.lower_rad < j.upper_rad):
                raise ConfigError(f'`model_path`: joint `{j.name}` has lower >= upper limit')
        if not all(v > 0 for v in robot.link_lengths_m) or not robot.link_radius_m > 0:
            raise ConfigError(f'`model_path`: link lengths and radius in {origin} must be > 0')
        return robot

    def end_effector(self, q):
        x, y = self.base_position_m
        angle = 0.0
        for length, qi in zip(self.link_lengths_m, q):
            angle += qi
            x += length * math.cos(angle)
            y += length * math.sin(angle)
        return [x, y]


def load_robot(model_path) -> RobotDescription:
    """As diffusion_planner_sim's `model_path`: a model folder (its model.yaml), a YAML file with
    a top-level `robot:`, or `synthetic` (the reference 2-link arm)."""
    if str(model_path) == SYNTHETIC_MODEL_PATH:
        return RobotDescription.planar_2link()
    path = Path(model_path)
    file = path / 'model.yaml' if path.is_dir() else path
    try:
        data = yaml.safe_load(file.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f'`model_path`: cannot read {file}: {e}') from e
    if not isinstance(data, dict) or 'robot' not in data:
        raise ConfigError(f'`model_path`: {file} has no top-level `robot:` section')
    return RobotDescription.from_dict(data['robot'], file)


def _urdf_float(element, key, origin, default=None):
    value = element.get(key)
    if value is None:
        if default is None:
            raise ConfigError(f'`model_path`: {origin}: <{element.tag}> has no `{key}`')
        return default
    try:
        return float(value)
    except ValueError as e:
        raise ConfigError(f'`model_path`: {origin}: <{element.tag} {key}="{value}"> is not a '
                          'number') from e


@dataclass
class UrdfJoint:
    """A movable URDF joint as the URDF gives it (limits before joint_limits.yaml)."""
    name: str
    kind: str
    parent: str
    child: str
    lower_rad: float
    upper_rad: float
    effort_nm: float
    velocity_rad_s: float


@dataclass
class UrdfRobot:
    """An arm from a URDF: the movable joints on the chain from the root link to `tool_link`
    (base to tip; their limits from the URDF, overridden by a MoveIt joint_limits.yaml when
    one is given); every other movable joint (the Panda's fingers) is locked at position 0.
    MuJoCo loads the URDF itself (tools/mujoco_sim/urdf_arm.py)."""
    name: str
    joints: list
    urdf_path: Path
    tool_link: str
    root_link: str
    urdf_joints: dict       # name -> UrdfJoint, every movable joint of the URDF
    locked_joints: list     # names of the movable joints off the chain

    planar = False

    @property
    def joint_names(self):
        return [j.name for j in self.joints]

    @staticmethod
    def load(urdf_path, tool_link, joint_limits_file=None) -> 'UrdfRobot':
        import xml.etree.ElementTree as ET
        path = Path(urdf_path)
        try:
            root = ET.parse(path).getroot()
        except (OSError, ET.ParseError) as e:
            raise ConfigError(f'`model_path`: cannot read the URDF {path}: {e}') from e
        links = [link.get('name') for link in root.findall('link')]
        parent_of = {}      # child link -> joint element
        movable = {}
        for j in root.findall('joint'):
            parent, child = j.find('parent'), j.find('child')
            if parent is None or child is None:
                raise ConfigError(f'`model_path`: {path}: joint `{j.get("name")}` lacks a parent '
                                  'or child')
            parent_of[child.get('link')] = j
            kind = j.get('type')
            if kind in ('revolute', 'prismatic'):
                limit = j.find('limit')
                if limit is None:
                    raise ConfigError(f'`model_path`: {path}: joint `{j.get("name")}` has no '
                                      '<limit>')
                movable[j.get('name')] = UrdfJoint(
                    j.get('name'), kind, parent.get('link'), child.get('link'),
                    _urdf_float(limit, 'lower', path), _urdf_float(limit, 'upper', path),
                    _urdf_float(limit, 'effort', path), _urdf_float(limit, 'velocity', path))
            elif kind != 'fixed':
                raise ConfigError(f'`model_path`: {path}: joint `{j.get("name")}` is `{kind}`; '
                                  'the MuJoCo simulator takes revolute, prismatic and fixed joints')
        roots = [link for link in links if link not in parent_of]
        if len(roots) != 1:
            raise ConfigError(f'`model_path`: {path} has {len(roots)} root links ({roots})')
        if tool_link not in links:
            raise ConfigError(f'`tool_link`: `{tool_link}` is not a link of {path} (links: '
                              f'{", ".join(links)})')
        chain, link = [], tool_link
        while link in parent_of:
            j = parent_of[link]
            if j.get('name') in movable:
                chain.append(j.get('name'))
            link = j.find('parent').get('link')
        chain.reverse()
        if not chain:
            raise ConfigError(f'`tool_link`: no movable joint between `{roots[0]}` and '
                              f'`{tool_link}`')
        overrides = _joint_limits(joint_limits_file, movable) if joint_limits_file else {}
        joints = []
        for name in chain:
            u = movable[name]
            lower, upper, velocity, acceleration = overrides.get(
                name, (u.lower_rad, u.upper_rad, u.velocity_rad_s, math.inf))
            if not lower < upper:
                raise ConfigError(f'`model_path`: joint `{name}` has lower >= upper limit')
            joints.append(Joint(name, lower, upper, velocity, acceleration))
        return UrdfRobot(root.get('name', path.stem), joints, path, tool_link, roots[0], movable,
                         [n for n in movable if n not in chain])


def _joint_limits(path, movable):
    """MoveIt's joint_limits.yaml (as src/robot/joint_limits.rs reads it): name ->
    (lower, upper, max velocity, max acceleration), the URDF's values where it has none."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f'`joint_limits_file`: cannot read {path}: {e}') from e
    if not isinstance(data, dict) or not isinstance(data.get('joint_limits'), dict):
        raise ConfigError(f'`joint_limits_file`: {path} has no `joint_limits:` map')
    out = {}
    for name, entry in data['joint_limits'].items():
        if name not in movable:
            raise ConfigError(f'`joint_limits_file`: {path} names `{name}`, not a movable joint '
                              'of the URDF')
        u = movable[name]
        lower, upper, velocity, acceleration = u.lower_rad, u.upper_rad, u.velocity_rad_s, math.inf
        try:
            if entry.get('has_position_limits'):
                lower, upper = float(entry['min_position']), float(entry['max_position'])
            if entry.get('has_velocity_limits'):
                velocity = float(entry['max_velocity'])
            if entry.get('has_acceleration_limits'):
                acceleration = float(entry['max_acceleration'])
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ConfigError(f'`joint_limits_file`: {path}: joint `{name}`: {e!r}') from e
        out[name] = (lower, upper, velocity, acceleration)
    return out


@dataclass
class Physics:
    """config/mujoco_planar_arm.yaml or, for a URDF arm, config/mujoco_panda.yaml (every key
    documented there and in docs/SIM.md)."""
    timestep_secs: float
    integrator: str
    link_masses_kg: list
    joint_damping_nms_per_rad: list
    armature_kgm2: list
    effort_limits_nm: list
    kp_nm_per_rad: list
    kv_nms_per_rad: list
    obstacle_min_height_m: float
    # URDF arms only (None for the planar arm):
    gravity_compensation: bool = None
    tool_link: str = None
    joint_limits_file: str = None     # resolved against the physics file's folder
    table: dict = None                # {'center_m': [x, y, z], 'size_m': [sx, sy, sz]} or None

    KEYS = ('timestep_secs', 'integrator', 'link_masses_kg', 'joint_damping_nms_per_rad',
            'armature_kgm2', 'effort_limits_nm', 'kp_nm_per_rad', 'kv_nms_per_rad',
            'obstacle_min_height_m')
    # A URDF arm's masses and inertias come from the URDF; obstacles are 3-D as given.
    URDF_KEYS = ('timestep_secs', 'integrator', 'joint_damping_nms_per_rad', 'armature_kgm2',
                 'effort_limits_nm', 'kp_nm_per_rad', 'kv_nms_per_rad', 'gravity_compensation',
                 'tool_link', 'joint_limits_file', 'table')

    @staticmethod
    def from_dict(d, origin='physics', joints=2, urdf=False) -> 'Physics':
        if not isinstance(d, dict):
            raise ConfigError(f'`physics_file`: {origin} is not a mapping of keys')
        keys = Physics.URDF_KEYS if urdf else Physics.KEYS
        problems = []
        for key in d:
            if key not in keys:
                problems.append(f'`{key}`: unknown key; {origin} accepts: {", ".join(keys)}')
        for key in keys:
            if key not in d:
                problems.append(f'`{key}`: required, missing in {origin}')
        if problems:
            raise ConfigError('; '.join(problems))

        def number(key, value, minimum=0.0, strict=True):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    not math.isfinite(value) or not (value > minimum if strict else value >= minimum):
                problems.append(f'`{key}`: must be a finite number {">" if strict else ">="} '
                                f'{minimum}, found {value!r}')
                return math.nan
            return float(value)

        def per_joint(key, strict=True):
            v = d[key]
            if not isinstance(v, list) or len(v) != joints:
                problems.append(f'`{key}`: must be a list of {joints} numbers (one per joint), '
                                f'found {v!r}')
                return []
            return [number(key, x, strict=strict) for x in v]

        if urdf:
            extra = {'link_masses_kg': None, 'obstacle_min_height_m': None,
                     **Physics._urdf_keys(d, problems, number)}
        else:
            extra = {'link_masses_kg': per_joint('link_masses_kg'),
                     'obstacle_min_height_m': number('obstacle_min_height_m',
                                                     d['obstacle_min_height_m'])}
        physics = Physics(
            timestep_secs=number('timestep_secs', d['timestep_secs']),
            integrator=d['integrator'],
            joint_damping_nms_per_rad=per_joint('joint_damping_nms_per_rad', strict=False),
            armature_kgm2=per_joint('armature_kgm2', strict=False),
            effort_limits_nm=per_joint('effort_limits_nm'),
            kp_nm_per_rad=per_joint('kp_nm_per_rad'),
            kv_nms_per_rad=per_joint('kv_nms_per_rad', strict=False),
            **extra,
        )
        if physics.integrator not in INTEGRATORS:
            problems.append(f'`integrator`: must be one of {", ".join(INTEGRATORS)}, found '
                            f'{physics.integrator!r}')
        if not problems and physics.timestep_secs > 0.01:
            problems.append(f'`timestep_secs`: {physics.timestep_secs} s is too coarse for the '
                            'drives (at most 0.01 s)')
        if problems:
            raise ConfigError('; '.join(problems))
        return physics

    @staticmethod
    def _urdf_keys(d, problems, number):
        out = {}
        g = d['gravity_compensation']
        if not isinstance(g, bool):
            problems.append(f'`gravity_compensation`: must be true or false, found {g!r}')
        out['gravity_compensation'] = g
        tool = d['tool_link']
        if not isinstance(tool, str) or not tool.strip():
            problems.append(f'`tool_link`: must be a link name, found {tool!r}')
        out['tool_link'] = tool
        limits = d['joint_limits_file']
        if not isinstance(limits, str):
            problems.append(f'`joint_limits_file`: must be a path (\'\' = the URDF\'s limits), '
                            f'found {limits!r}')
        out['joint_limits_file'] = limits or None
        table = d['table']
        if table is not None:
            if not isinstance(table, dict) or sorted(table) != ['center_m', 'size_m']:
                problems.append(f'`table`: must be null or a map with center_m and size_m, found '
                                f'{table!r}')
                table = None
            else:
                for key, strict in (('center_m', False), ('size_m', True)):
                    v = table[key]
                    if not isinstance(v, list) or len(v) != 3:
                        problems.append(f'`table.{key}`: must be a list of 3 numbers, found {v!r}')
                    elif strict:
                        [number(f'table.{key}', x) for x in v]
                    elif any(isinstance(x, bool) or not isinstance(x, (int, float)) or
                             not math.isfinite(x) for x in v):
                        problems.append(f'`table.{key}`: must be finite numbers, found {v!r}')
                table = {k: [float(x) for x in v] if isinstance(v, list) else v
                         for k, v in table.items()}
        out['table'] = table
        return out

    @staticmethod
    def load(path, joints=2, urdf=False) -> 'Physics':
        data = _read_physics(path)
        return Physics.from_dict(data, str(path), joints, urdf)


def _read_physics(path):
    try:
        return yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f'`physics_file`: cannot read {path}: {e}') from e


def load(model_path, physics_file):
    """The robot and its physics: a planar arm (load_robot, Physics.load) or, for a
    `model_path` ending in `.urdf`, a URDF arm whose tool link and joint_limits.yaml the physics
    file names (its relative paths are resolved against the physics file's folder); a URDF
    arm's effort limits may not exceed the URDF's <limit effort>."""
    if not str(model_path).endswith('.urdf'):
        robot = load_robot(model_path)
        return robot, Physics.load(physics_file, len(robot.joints))
    data = _read_physics(physics_file)
    if not isinstance(data, dict):
        raise ConfigError(f'`physics_file`: {physics_file} is not a mapping of keys')
    tool = data.get('tool_link')
    if not isinstance(tool, str):
        raise ConfigError(f'`tool_link`: required in {physics_file} for a URDF robot (a link name)')
    limits = data.get('joint_limits_file')
    limits_path = None
    if isinstance(limits, str) and limits:
        limits_path = Path(limits)
        if not limits_path.is_absolute():
            limits_path = Path(physics_file).parent / limits_path
    robot = UrdfRobot.load(model_path, tool, limits_path)
    physics = Physics.from_dict(data, str(physics_file), len(robot.joints), urdf=True)
    if limits_path is not None:
        physics.joint_limits_file = str(limits_path)
    problems = [f'`effort_limits_nm`: {e} N m for `{j.name}` exceeds the URDF\'s <limit effort> '
                f'{robot.urdf_joints[j.name].effort_nm} N m'
                for j, e in zip(robot.joints, physics.effort_limits_nm)
                if e > robot.urdf_joints[j.name].effort_nm]
    if problems:
        raise ConfigError('; '.join(problems))
    return robot, physics
