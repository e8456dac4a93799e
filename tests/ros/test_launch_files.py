"""The launch files agree with each other, with the package and binary names, and with the
parameters the node accepts.

`ros2 launch` cannot be installed here, so the files are read, not run: planner.launch.py through
its syntax tree, planner.launch.xml as XML. Both are turned into the same plain form, in which a
substitution is written as in XML (`$(var name)`, `$(find-pkg-share pkg)`), and compared.
The accepted parameter keys come from docs/PARAMETERS.md, which a Rust test
(tests/params_files.rs) keeps equal to the keys that src/ros/params.rs accepts.
"""

import ast
import re
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
LAUNCH_PY = ROOT / 'launch' / 'planner.launch.py'
LAUNCH_XML = ROOT / 'launch' / 'planner.launch.xml'
CONFIG = ROOT / 'config' / 'planar_arm.yaml'
ARGUMENTS = {'model', 'params_file', 'use_sim_time', 'namespace', 'controller_topic'}
CONTROLLER_TOPIC = '/joint_trajectory_controller/joint_trajectory'


class PyLaunch:
    """Evaluates the subset of Python a launch description uses into plain values."""

    def __init__(self, path):
        self.tree = ast.parse(path.read_text(), filename=str(path))
        self.names = {}
        for node in self.tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                self.names[node.targets[0].id] = node.value
        functions = [n for n in self.tree.body if isinstance(n, ast.FunctionDef)]
        self.generate = next(f for f in functions if f.name == 'generate_launch_description')
        for node in ast.walk(self.generate):
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                self.names[node.targets[0].id] = node.value

    def imports(self):
        modules = set()
        for node in ast.walk(self.tree):
            if isinstance(node, ast.ImportFrom):
                modules.add(node.module.split('.')[0])
            elif isinstance(node, ast.Import):
                modules.update(a.name.split('.')[0] for a in node.names)
        return modules

    def calls(self, name):
        return [
            n for n in ast.walk(self.generate)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == name
        ]

    def value(self, node):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return self.value(self.names[node.id])
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self.value(e) for e in node.elts]
        if isinstance(node, ast.Dict):
            return {self.value(k): self.value(v) for k, v in zip(node.keys, node.values)}
        if isinstance(node, ast.Call):
            func = node.func.id
            args = [self.value(a) for a in node.args]
            if func == 'FindPackageShare':
                return f'$(find-pkg-share {args[0]})'
            if func == 'LaunchConfiguration':
                return f'$(var {args[0]})'
            if func == 'PathJoinSubstitution':
                return '/'.join(args[0])
            if func == 'ParameterValue':
                return args[0]
        raise AssertionError(f'unsupported expression in {LAUNCH_PY.name}: {ast.dump(node)}')

    def kwargs(self, call):
        return {k.arg: self.value(k.value) for k in call.keywords}


def py_launch():
    launch = PyLaunch(LAUNCH_PY)
    args = {}
    for call in launch.calls('DeclareLaunchArgument'):
        args[launch.value(call.args[0])] = launch.kwargs(call).get('default_value')
    (node_call,) = launch.calls('Node')
    node = launch.kwargs(node_call)
    params = node['parameters']
    return {
        'args': args,
        'package': node['package'],
        'executable': node['executable'],
        'name': node['name'],
        'namespace': node['namespace'],
        'param_files': [p for p in params if isinstance(p, str)],
        'params': {k: v for p in params if isinstance(p, dict) for k, v in p.items()},
        'remaps': [tuple(r) for r in node['remappings']],
    }


def xml_launch():
    root = ET.parse(LAUNCH_XML).getroot()
    assert root.tag == 'launch'
    (node,) = root.findall('node')
    return {
        'args': {a.get('name'): a.get('default') for a in root.findall('arg')},
        'package': node.get('pkg'),
        'executable': node.get('exec'),
        'name': node.get('name'),
        'namespace': node.get('namespace'),
        'param_files': [p.get('from') for p in node.findall('param') if p.get('from')],
        'params': {p.get('name'): p.get('value') for p in node.findall('param') if p.get('name')},
        'remaps': [(r.get('from'), r.get('to')) for r in node.findall('remap')],
    }


def documented_keys():
    text = (ROOT / 'docs' / 'PARAMETERS.md').read_text()
    return re.findall(r'^\| `([a-z_]+)` \|', text, flags=re.MULTILINE)


def cargo():
    return tomllib.loads((ROOT / 'Cargo.toml').read_text())


def package_name():
    return ET.parse(ROOT / 'package.xml').getroot().findtext('name')


@pytest.fixture(params=['py', 'xml'])
def launch(request):
    return py_launch() if request.param == 'py' else xml_launch()


def test_both_launch_files_describe_the_same_launch():
    assert py_launch() == xml_launch()


def test_arguments(launch):
    args = launch['args']
    assert set(args) == ARGUMENTS
    share = f'$(find-pkg-share {package_name()})'
    assert args['model'] == f'{share}/models/planar_arm'
    assert args['params_file'] == f'{share}/config/planar_arm.yaml'
    assert args['use_sim_time'] == 'false'
    assert args['namespace'] == ''
    assert args['controller_topic'] == CONTROLLER_TOPIC


def test_node_is_the_packages_binary(launch):
    manifest = cargo()
    assert launch['package'] == package_name() == manifest['package']['name']
    binaries = {b['name']: b for b in manifest['bin']}
    assert launch['executable'] == 'diffusion_planner'
    # No required-features: cargo-ament-build (colcon) would build the binary and not install it.
    assert 'required-features' not in binaries[launch['executable']]
    assert launch['name'] == 'diffusion_planner'
    assert launch['namespace'] == '$(var namespace)'


def test_parameters_come_from_the_file_and_the_arguments(launch):
    assert launch['param_files'] == ['$(var params_file)']
    assert launch['params'] == {
        'model_path': '$(var model)',
        'use_sim_time': '$(var use_sim_time)',
    }
    assert set(launch['params']) <= set(documented_keys())


def test_trajectories_are_remapped_to_the_controller(launch):
    assert launch['remaps'] == [('joint_trajectory', '$(var controller_topic)')]


def test_installed_files_exist_where_the_defaults_point():
    share = cargo()['package']['metadata']['ros']['install_to_share']
    assert {'launch', 'config', 'models'} <= set(share)
    assert CONFIG.is_file()
    assert LAUNCH_PY.parent.name == 'launch'


def test_config_is_for_this_node_and_uses_documented_keys():
    config = yaml.safe_load(CONFIG.read_text())
    assert list(config) == [py_launch()['name']]
    keys = config['diffusion_planner']['ros__parameters']
    assert list(keys) and set(keys) == set(documented_keys())


def test_python_launch_file_uses_only_launch_packages():
    launch = PyLaunch(LAUNCH_PY)
    assert launch.imports() <= {'launch', 'launch_ros'}
    assert 'ros2launch' in {e.text for e in ET.parse(ROOT / 'package.xml').getroot()}


# --- launch/sim.launch.py: the simulated arm and the node -----------------------------------

SIM_LAUNCH_PY = ROOT / 'launch' / 'sim.launch.py'
SIM_CONFIG = ROOT / 'config' / 'sim_planar_arm.yaml'
SIM_APP = ROOT / 'src' / 'ros' / 'sim' / 'app.rs'


def documented_sim_keys():
    """The keys of the table under `### Parameters` in docs/SIM.md."""
    text = (ROOT / 'docs' / 'SIM.md').read_text()
    section = text.split('### Parameters', 1)[1].split('\n## ', 1)[0]
    return re.findall(r'^\| `([a-z_]+)` \|', section, flags=re.MULTILINE)


def sim_launch():
    launch = PyLaunch(SIM_LAUNCH_PY)
    args = {}
    for call in launch.calls('DeclareLaunchArgument'):
        args[launch.value(call.args[0])] = launch.kwargs(call).get('default_value')
    nodes = {}
    for call in launch.calls('Node'):
        node = launch.kwargs(call)
        params = node['parameters']
        nodes[node['executable']] = {
            'package': node['package'],
            'name': node['name'],
            'param_files': [p for p in params if isinstance(p, str)],
            'params': {k: v for p in params if isinstance(p, dict) for k, v in p.items()},
            'remaps': [tuple(r) for r in node.get('remappings', [])],
        }
    return launch, args, nodes


def test_sim_launch_arguments():
    _, args, _ = sim_launch()
    share = f'$(find-pkg-share {package_name()})'
    assert args == {
        'model': f'{share}/models/planar_arm',
        'params_file': f'{share}/config/planar_arm.yaml',
        'sim_params_file': f'{share}/config/sim_planar_arm.yaml',
        'use_sim_time': 'false',
    }


def test_sim_launch_starts_both_binaries_of_the_package():
    _, _, nodes = sim_launch()
    binaries = {b['name']: b for b in cargo()['bin']}
    assert set(nodes) == {'diffusion_planner', 'diffusion_planner_sim'}
    for executable, node in nodes.items():
        assert node['package'] == package_name()
        assert node['name'] == executable
        assert 'required-features' not in binaries[executable]  # see test_node_is_the_packages_binary


def test_sim_launch_shares_the_model_and_the_clock():
    _, _, nodes = sim_launch()
    sim, planner = nodes['diffusion_planner_sim'], nodes['diffusion_planner']
    assert sim['param_files'] == ['$(var sim_params_file)']
    assert sim['params'] == {'model_path': '$(var model)', 'publish_clock': '$(var use_sim_time)'}
    assert set(sim['params']) <= set(documented_sim_keys())
    assert planner['param_files'] == ['$(var params_file)']
    assert planner['params'] == {'model_path': '$(var model)', 'use_sim_time': '$(var use_sim_time)'}
    assert set(planner['params']) <= set(documented_keys())


def test_sim_listens_where_the_node_publishes():
    _, _, nodes = sim_launch()
    assert nodes['diffusion_planner']['remaps'] == [('joint_trajectory', CONTROLLER_TOPIC)]
    assert nodes['diffusion_planner_sim']['remaps'] == []
    # The simulator subscribes to the relative name, which is the controller topic in the root
    # namespace.
    relative = CONTROLLER_TOPIC.lstrip('/')
    assert f'"{relative}"' in SIM_APP.read_text()


def test_sim_config_uses_documented_keys_and_the_nodes_joints():
    config = yaml.safe_load(SIM_CONFIG.read_text())
    assert list(config) == ['diffusion_planner_sim']
    keys = config['diffusion_planner_sim']['ros__parameters']
    assert set(keys) <= set(documented_sim_keys())
    assert {'model_path', 'joints'} <= set(keys)
    node = yaml.safe_load(CONFIG.read_text())['diffusion_planner']['ros__parameters']
    assert keys['joints'] == node['joints']
    assert len(keys['initial_positions']) == len(keys['joints'])
    # Types are strict in ROS 2: doubles must be written as doubles.
    for key in ('update_rate_hz', 'real_time_factor', 'goal_tolerance_m', 'diagnostics_rate_hz'):
        assert isinstance(keys[key], float), key


def test_sim_launch_uses_only_launch_packages():
    launch, _, _ = sim_launch()
    assert launch.imports() <= {'launch', 'launch_ros'}
