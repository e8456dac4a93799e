"""The Gazebo Harmonic files agree with the robot description and with each other.

Gazebo cannot run here, so the files are read, not run:
- urdf/planar_arm.urdf.xacro is expanded (with the `xacro` package when it is installed, else
  with the small expander below, which handles exactly the xacro features the file uses and
  fails on any other) and must be well-formed URDF whose joints, limits, link lengths and radius
  are the robot description's (config/data_planar_arm.yaml `robot:`, and
  models/planar_arm/model.yaml when that folder exists), with a ros2_control block for
  gz_ros2_control;
- config/controllers.yaml must name the same joints and the interfaces the URDF offers;
- launch/gazebo.launch.py is read through its syntax tree: what it starts, in which order, and
  that the planner runs on Gazebo's clock and publishes to the controller.
"""

import ast
import math
import re
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
XACRO = ROOT / 'urdf' / 'planar_arm.urdf.xacro'
CONTROLLERS = ROOT / 'config' / 'controllers.yaml'
GAZEBO_LAUNCH = ROOT / 'launch' / 'gazebo.launch.py'
DATA_CONFIG = ROOT / 'config' / 'data_planar_arm.yaml'
MODEL_YAML = ROOT / 'models' / 'planar_arm' / 'model.yaml'
NODE_CONFIG = ROOT / 'config' / 'planar_arm.yaml'
CONTROLLER_TOPIC = '/joint_trajectory_controller/joint_trajectory'
XACRO_NS = 'http://www.ros.org/wiki/xacro'
CONTROLLERS_ARG = '/opt/test/share/diffusion_planner/config/controllers.yaml'
TOL = 1e-9


# --- xacro ----------------------------------------------------------------------------------

def expand_fallback(path, args):
    """Expands `xacro:arg`, `xacro:property` (plain values), `$(arg name)` and `${expression}`
    (arithmetic over the properties and `pi`); any other xacro element or substitution fails."""
    tree = ET.parse(path)
    root = tree.getroot()
    defaults, properties = {}, {'pi': math.pi}

    def evaluate(text):
        def arg(match):
            name = match.group(1)
            if name in args:
                return str(args[name])
            default = defaults[name]
            assert '$(' not in default, f'default of {name} needs `{default}`'
            return default
        text = re.sub(r'\$\(arg ([a-zA-Z_][a-zA-Z0-9_]*)\)', arg, text)
        assert '$(' not in text, f'unsupported substitution in {text!r}'

        def expression(match):
            value = eval(match.group(1), {'__builtins__': {}}, dict(properties))  # noqa: S307
            return repr(float(value)) if isinstance(value, (int, float)) else str(value)
        return re.sub(r'\$\{([^}]*)\}', expression, text)

    def walk(parent):
        for child in list(parent):
            tag = child.tag
            if tag == f'{{{XACRO_NS}}}arg':
                defaults[child.get('name')] = child.get('default', '')
                parent.remove(child)
                continue
            if tag == f'{{{XACRO_NS}}}property':
                value = evaluate(child.get('value'))
                try:
                    value = float(value)
                except ValueError:
                    pass
                properties[child.get('name')] = value
                parent.remove(child)
                continue
            assert not tag.startswith(f'{{{XACRO_NS}}}'), f'unsupported xacro element {tag}'
            for key, value in child.attrib.items():
                child.set(key, evaluate(value))
            if child.text:
                child.text = evaluate(child.text)
            walk(child)
    walk(root)
    return ET.tostring(root, encoding='unicode')


def expand(path, args):
    try:
        import xacro  # noqa: PLC0415
    except ImportError:
        return expand_fallback(path, args)
    return xacro.process_file(str(path), mappings=dict(args)).toxml()


@pytest.fixture(scope='module')
def urdf():
    text = expand(XACRO, {'controllers_file': CONTROLLERS_ARG, 'initial_elbow': '0.6'})
    root = ET.fromstring(text)
    assert root.tag == 'robot'
    return root


def descriptions():
    found = [('config/data_planar_arm.yaml', yaml.safe_load(DATA_CONFIG.read_text())['robot'])]
    if MODEL_YAML.is_file():
        found.append(('models/planar_arm/model.yaml', yaml.safe_load(MODEL_YAML.read_text())['robot']))
    return found


def floats(text):
    return [float(v) for v in text.split()]


def joints_by_name(urdf):
    return {j.get('name'): j for j in urdf.findall('joint')}


def links_by_name(urdf):
    return {link.get('name'): link for link in urdf.findall('link')}


def test_the_fallback_expander_substitutes_everything():
    text = expand_fallback(XACRO, {'controllers_file': '/x.yaml'})
    assert '/x.yaml' in text and '$(' not in text and '${' not in text


def test_the_urdf_is_well_formed_with_a_chain_from_the_world(urdf):
    joints = joints_by_name(urdf)
    links = links_by_name(urdf)
    for joint in joints.values():
        assert joint.find('parent').get('link') in links
        assert joint.find('child').get('link') in links
    chain = [(j.find('parent').get('link'), j.find('child').get('link')) for j in joints.values()]
    assert ('world', 'base_link') in chain
    assert ('base_link', 'link1') in chain and ('link1', 'link2') in chain
    assert ('link2', 'tool0') in chain


@pytest.mark.parametrize('origin,robot', descriptions())
def test_joints_and_limits_are_the_robot_descriptions(urdf, origin, robot):
    revolute = [j for j in urdf.findall('joint') if j.get('type') == 'revolute']
    assert [j.get('name') for j in revolute] == [j['name'] for j in robot['joints']], origin
    for joint, described in zip(revolute, robot['joints']):
        assert floats(joint.find('axis').get('xyz')) == [0.0, 0.0, 1.0]
        limit = joint.find('limit')
        assert abs(float(limit.get('lower')) - described['lower_rad']) < TOL, origin
        assert abs(float(limit.get('upper')) - described['upper_rad']) < TOL, origin
        assert abs(float(limit.get('velocity')) - described['max_velocity_rad_s']) < TOL, origin
        assert float(limit.get('effort')) > 0


@pytest.mark.parametrize('origin,robot', descriptions())
def test_link_lengths_and_radius_are_the_robot_descriptions(urdf, origin, robot):
    joints = joints_by_name(urdf)
    links = links_by_name(urdf)
    lengths = robot['link_lengths_m']
    # Link i runs along x from joint i to the next joint (the elbow, then the tool point).
    assert floats(joints['elbow'].find('origin').get('xyz')) == [lengths[0], 0.0, 0.0], origin
    assert floats(joints['tool_joint'].find('origin').get('xyz')) == [lengths[1], 0.0, 0.0]
    for name, length in zip(['link1', 'link2'], lengths):
        for kind in ('visual', 'collision'):
            element = links[name].find(kind)
            cylinder = element.find('geometry/cylinder')
            assert abs(float(cylinder.get('length')) - length) < TOL, (origin, name, kind)
            assert abs(float(cylinder.get('radius')) - robot['link_radius_m']) < TOL
            x, y, z = floats(element.find('origin').get('xyz'))
            assert abs(x - length / 2) < TOL and y == 0.0 and z == 0.0
            assert abs(floats(element.find('origin').get('rpy'))[1] - math.pi / 2) < TOL
    assert robot['base_position_m'] == [0.0, 0.0]
    assert floats(joints['world_to_base'].find('origin').get('xyz')) == [0.0, 0.0, 0.0]


def test_ros2_control_block_is_for_gz_ros2_control(urdf):
    (block,) = urdf.findall('ros2_control')
    assert block.findtext('hardware/plugin').strip() == 'gz_ros2_control/GazeboSimSystem'
    robot = descriptions()[0][1]
    names = [j['name'] for j in robot['joints']]
    assert [j.get('name') for j in block.findall('joint')] == names
    for joint, described in zip(block.findall('joint'), robot['joints']):
        commands = [c.get('name') for c in joint.findall('command_interface')]
        states = [s.get('name') for s in joint.findall('state_interface')]
        assert commands == ['position'] and states == ['position', 'velocity']
        params = {p.get('name'): float(p.text) for p in joint.find('command_interface')}
        assert abs(params['min'] - described['lower_rad']) < TOL
        assert abs(params['max'] - described['upper_rad']) < TOL
    initial = {j.get('name'): float(j.find('state_interface/param').text)
               for j in block.findall('joint')}
    assert initial == {'shoulder': 0.0, 'elbow': 0.6}
    (plugin,) = urdf.findall('gazebo/plugin')
    assert plugin.get('filename') == 'gz_ros2_control-system'
    assert plugin.get('name') == 'gz_ros2_control::GazeboSimROS2ControlPlugin'
    assert plugin.findtext('parameters').strip() == CONTROLLERS_ARG


# --- controllers.yaml -----------------------------------------------------------------------

@pytest.fixture(scope='module')
def controllers():
    return yaml.safe_load(CONTROLLERS.read_text())


def test_controller_manager_runs_both_controllers_at_100_hz(controllers):
    manager = controllers['controller_manager']['ros__parameters']
    assert manager['update_rate'] == 100
    assert manager['joint_state_broadcaster']['type'] == 'joint_state_broadcaster/JointStateBroadcaster'
    assert (manager['joint_trajectory_controller']['type']
            == 'joint_trajectory_controller/JointTrajectoryController')


def test_trajectory_controller_matches_the_urdf_and_the_node(controllers, urdf):
    jtc = controllers['joint_trajectory_controller']['ros__parameters']
    (block,) = urdf.findall('ros2_control')
    assert jtc['joints'] == [j.get('name') for j in block.findall('joint')]
    assert jtc['command_interfaces'] == ['position']
    assert jtc['state_interfaces'] == ['position', 'velocity']
    assert jtc['interpolate_from_desired_state'] is True
    assert jtc['allow_partial_joints_goal'] is False
    assert jtc['allow_nonzero_velocity_at_trajectory_end'] is False
    node = yaml.safe_load(NODE_CONFIG.read_text())['diffusion_planner']['ros__parameters']
    assert sorted(node['joints']) == sorted(jtc['joints'])
    for joint in jtc['joints']:
        assert jtc['constraints'][joint]['trajectory'] > 0


# --- gazebo.launch.py -----------------------------------------------------------------------

class Launch:
    """Evaluates the launch file's syntax tree into plain values; a call the file makes becomes
    `{'call': name, 'args': [...], **kwargs}` and is kept in `self.calls` in source order."""

    def __init__(self, path):
        self.tree = ast.parse(path.read_text(), filename=str(path))
        self.names = {}
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                self.names[node.targets[0].id] = node.value
        self.cache = {}

    def imports(self):
        modules = set()
        for node in ast.walk(self.tree):
            if isinstance(node, ast.ImportFrom):
                modules.add(node.module.split('.')[0])
            elif isinstance(node, ast.Import):
                modules.update(a.name.split('.')[0] for a in node.names)
        return modules

    def value(self, node):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in self.names:
                return node.id  # a builtin such as `str` (ParameterValue's value_type)
            if node.id not in self.cache:
                self.cache[node.id] = self.value(self.names[node.id])
            return self.cache[node.id]
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self.value(e) for e in node.elts]
        if isinstance(node, ast.Dict):
            return {self.value(k): self.value(v) for k, v in zip(node.keys, node.values)}
        if isinstance(node, ast.Call):
            result = {'call': node.func.id, 'args': [self.value(a) for a in node.args]}
            result.update({k.arg: self.value(k.value) for k in node.keywords})
            return result
        raise AssertionError(f'unsupported expression: {ast.dump(node)}')

    def description(self):
        generate = next(n for n in self.tree.body
                        if isinstance(n, ast.FunctionDef) and n.name == 'generate_launch_description')
        (ret,) = [n for n in ast.walk(generate) if isinstance(n, ast.Return)]
        described = self.value(ret.value)
        assert described['call'] == 'LaunchDescription'
        return described['args'][0]


def flatten(value):
    """Every call dict inside `value`, depth first."""
    if isinstance(value, dict):
        if 'call' in value:
            yield value
        for v in value.values():
            yield from flatten(v)
    elif isinstance(value, list):
        for v in value:
            yield from flatten(v)


def text(value):
    """A substitution as text, e.g. `$(find-pkg-share diffusion_planner)/urdf/x`."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ''.join(text(v) for v in value)
    call = value['call']
    if call == 'FindPackageShare':
        return f'$(find-pkg-share {value["args"][0]})'
    if call == 'LaunchConfiguration':
        return f'$(var {value["args"][0]})'
    if call == 'FindExecutable':
        return f'$(find-exec {value["name"]})'
    if call == 'PathJoinSubstitution':
        return '/'.join(text(v) for v in value['args'][0])
    if call == 'ParameterValue':
        return text(value['args'][0])
    if call == 'Command':
        return text(value['args'][0])
    raise AssertionError(f'no text form for {call}')


@pytest.fixture(scope='module')
def gazebo():
    launch = Launch(GAZEBO_LAUNCH)
    return launch, launch.description()


def nodes(actions):
    """The Node actions, each once (an action named twice is the same object)."""
    unique = {}
    for c in flatten(actions):
        if c['call'] == 'Node':
            unique.setdefault(id(c), c)
    return list(unique.values())


def node(actions, package, executable, first_arg=None):
    found = [n for n in nodes(actions) if n['package'] == package and n['executable'] == executable
             and (first_arg is None or n['arguments'][0] == first_arg)]
    assert len(found) == 1, (package, executable, first_arg)
    return found[0]


def test_gazebo_launch_uses_only_launch_packages(gazebo):
    launch, _ = gazebo
    assert launch.imports() <= {'launch', 'launch_ros'}


def test_gazebo_starts_with_an_empty_world_and_the_clock_bridge(gazebo):
    _, actions = gazebo
    (include,) = [c for c in flatten(actions) if c['call'] == 'IncludeLaunchDescription']
    source = include['args'][0]
    assert text(source['args'][0]) == '$(find-pkg-share ros_gz_sim)/launch/gz_sim.launch.py'
    (gz_args,) = [v for k, v in include['launch_arguments'] if k == 'gz_args']
    assert text(gz_args).startswith('-r ') and text(gz_args).endswith('$(var world)')
    bridge = node(actions, 'ros_gz_bridge', 'parameter_bridge')
    assert bridge['arguments'] == ['/clock@rosgraph_msgs/msg/Clock[gz.msgs.Clock']


def test_the_robot_description_is_the_packages_xacro(gazebo):
    _, actions = gazebo
    rsp = node(actions, 'robot_state_publisher', 'robot_state_publisher')
    (params,) = rsp['parameters']
    assert params['use_sim_time'] is True
    command = text(params['robot_description'])
    share = '$(find-pkg-share diffusion_planner)'
    assert command.startswith(f'$(find-exec xacro) {share}/urdf/planar_arm.urdf.xacro ')
    assert f' controllers_file:={share}/config/controllers.yaml' in command
    # Every argument the launch passes is one the xacro declares.
    declared = {a.get('name') for a in ET.parse(XACRO).getroot().findall(f'{{{XACRO_NS}}}arg')}
    passed = set(re.findall(r' ([a-z_]+):=', command))
    assert passed == declared
    spawn = node(actions, 'ros_gz_sim', 'create')
    args = spawn['arguments']
    assert args[args.index('-topic') + 1] == 'robot_description'


def test_controllers_are_spawned_in_order_after_the_robot(gazebo, controllers):
    _, actions = gazebo
    manager = controllers['controller_manager']['ros__parameters']
    handlers = [c for c in actions if isinstance(c, dict) and c['call'] == 'RegisterEventHandler']
    chain = []
    for handler in handlers:
        (on_exit,) = handler['args']
        assert on_exit['call'] == 'OnProcessExit'
        target = on_exit['target_action']
        (started,) = on_exit['on_exit']
        chain.append((target['executable'], started['arguments'][0]))
    assert chain == [('create', 'joint_state_broadcaster'),
                     ('spawner', 'joint_trajectory_controller')]
    for name in ('joint_state_broadcaster', 'joint_trajectory_controller'):
        node(actions, 'controller_manager', 'spawner', name)
        assert name in manager
    jtc = node(actions, 'controller_manager', 'spawner', 'joint_trajectory_controller')
    args = jtc['arguments']
    assert text(args[args.index('--param-file') + 1]).endswith('/config/controllers.yaml')


def test_the_planner_runs_on_gazebo_time_and_commands_the_controller(gazebo):
    _, actions = gazebo
    planner = node(actions, 'diffusion_planner', 'diffusion_planner')
    # Substitutions are call dicts; the overrides are a plain dict.
    files = [p for p in planner['parameters'] if 'call' in p]
    (overrides,) = [p for p in planner['parameters'] if 'call' not in p]
    assert [text(f) for f in files] == ['$(var params_file)']
    assert overrides['use_sim_time'] is True
    assert text(overrides['model_path']) == '$(var model)'
    assert [tuple(r) for r in planner['remappings']] == [('joint_trajectory', CONTROLLER_TOPIC)]


def test_urdf_is_installed_with_the_package():
    cargo = tomllib.loads((ROOT / 'Cargo.toml').read_text())
    assert 'urdf' in cargo['package']['metadata']['ros']['install_to_share']
