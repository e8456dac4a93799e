"""The MuJoCo node's parameters are diffusion_planner_sim's, checked the same way."""

import re

import pytest
from conftest import ROOT

from mujoco_sim.node import PARAMETERS, node_sections, read_params


def good():
    return {'model_path': ('string', 'synthetic'),
            'joints': ('string_array', ['shoulder', 'elbow']),
            'use_sim_time': ('bool', False)}


def test_defaults_fill_the_optional_keys():
    p = read_params(good())
    assert p['initial_positions'] == [0.0, 0.0] and p['update_rate_hz'] == 100.0
    assert p['base_frame'] == 'base_link' and p['static_obstacles'] == []


def test_bad_values_name_their_keys():
    values = good()
    values.update({'update_rate_hz': ('integer', 100), 'colour': ('string', 'red'),
                   'real_time_factor': ('double', 2.0), 'use_sim_time': ('bool', True),
                   'initial_positions': ('double_array', [0.1]),
                   'acceleration_limit_scale': ('double', 20.0)})
    with pytest.raises(ValueError) as e:
        read_params(values)
    for key in ('`update_rate_hz`', 'write 100.0', '`colour`', '`real_time_factor`',
                '`use_sim_time`', '`initial_positions`', '`acceleration_limit_scale`'):
        assert key in str(e.value)
    with pytest.raises(ValueError, match='`joints`: required'):
        read_params({'model_path': ('string', 'synthetic')})


def test_the_keys_are_the_rust_simulators_plus_physics_and_report_file():
    rust = (ROOT / 'src' / 'ros' / 'sim' / 'params.rs').read_text()
    block = rust.split('pub const SIM_PARAMETER_KEYS')[1].split('];')[0]
    assert re.findall(r'"(\w+)"', block) + ['physics_file', 'report_file'] == list(PARAMETERS)


def test_the_shipped_sim_config_is_read_for_the_node_in_a_namespace(tmp_path):
    args = node_sections(['--ros-args', '-r', '__ns:=/test', '--params-file',
                          str(ROOT / 'config' / 'sim_planar_arm.yaml')])
    import yaml
    merged = yaml.safe_load(open(args[-1]).read())
    assert merged['/**']['ros__parameters']['joints'] == ['shoulder', 'elbow']
