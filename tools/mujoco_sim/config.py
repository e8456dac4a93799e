"""The robot description and the physical parameters of the MuJoCo simulator, validated: a
missing, unknown, mistyped or out-of-range key is a ConfigError that names it."""

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


@dataclass
class Physics:
    """config/mujoco_planar_arm.yaml (every key documented there and in docs/SIM.md)."""
    timestep_secs: float
    integrator: str
    link_masses_kg: list
    joint_damping_nms_per_rad: list
    armature_kgm2: list
    effort_limits_nm: list
    kp_nm_per_rad: list
    kv_nms_per_rad: list
    obstacle_min_height_m: float

    KEYS = ('timestep_secs', 'integrator', 'link_masses_kg', 'joint_damping_nms_per_rad',
            'armature_kgm2', 'effort_limits_nm', 'kp_nm_per_rad', 'kv_nms_per_rad',
            'obstacle_min_height_m')

    @staticmethod
    def from_dict(d, origin='physics', joints=2) -> 'Physics':
        if not isinstance(d, dict):
            raise ConfigError(f'`physics_file`: {origin} is not a mapping of keys')
        problems = []
        for key in d:
            if key not in Physics.KEYS:
                problems.append(f'`{key}`: unknown key; {origin} accepts: {", ".join(Physics.KEYS)}')
        for key in Physics.KEYS:
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

        physics = Physics(
            timestep_secs=number('timestep_secs', d['timestep_secs']),
            integrator=d['integrator'],
            link_masses_kg=per_joint('link_masses_kg'),
            joint_damping_nms_per_rad=per_joint('joint_damping_nms_per_rad', strict=False),
            armature_kgm2=per_joint('armature_kgm2', strict=False),
            effort_limits_nm=per_joint('effort_limits_nm'),
            kp_nm_per_rad=per_joint('kp_nm_per_rad'),
            kv_nms_per_rad=per_joint('kv_nms_per_rad', strict=False),
            obstacle_min_height_m=number('obstacle_min_height_m', d['obstacle_min_height_m']),
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
    def load(path, joints=2) -> 'Physics':
        try:
            data = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f'`physics_file`: cannot read {path}: {e}') from e
        return Physics.from_dict(data, str(path), joints)
