"""The MuJoCo closed loop over DDS, a few goals: the node binary (`diffusion_planner`, feature
`ros`, model `synthetic`: the geometric source, no network) plans on sim time, the MuJoCo
simulator (`mujoco_sim.node`) executes, through tools/mujoco_sim/closed_loop.py. Needs rclpy
(scripts/ros-env.sh) and the binary: DP_NODE_BINARY or target/debug/diffusion_planner
(`scripts/test` builds it with `cargo test --features ros`). Skipped when either is missing
unless DP_MUJOCO_DDS_TEST=1, which makes that a failure (scripts/test sets it)."""

import importlib.util
import json
import os
from pathlib import Path

import pytest
from conftest import ROOT

BINARY = Path(os.environ.get('DP_NODE_BINARY', ROOT / 'target' / 'debug' / 'diffusion_planner'))
REQUIRED = os.environ.get('DP_MUJOCO_DDS_TEST') == '1'


def scene(draw, start, goal, obstacle):
    return {'draw': draw, 'success': None, 'collisions': None, 'min_clearance_m': None,
            'time_to_goal_secs': None, 'max_tracking_error_rad': None,
            'rejected_trajectories': None,
            'scene': {'description': '', 'start_rad': start, 'goal_m': goal,
                      'obstacles': [{'center_m': obstacle[:2], 'radius_m': obstacle[2]}]}}


def test_the_node_reaches_a_few_goals_in_mujoco_over_dds(tmp_path):
    missing = [what for what, ok in (('rclpy', importlib.util.find_spec('rclpy')),
                                     (str(BINARY), BINARY.exists())) if not ok]
    if missing:
        if REQUIRED:
            pytest.fail(f'missing: {missing}')
        pytest.skip(f'missing: {missing}')
    from mujoco_sim import closed_loop
    kinematic = {'model': 'synthetic', 'seed': None, 'per_scene': [
        scene(0, [-0.3, 0.6], [0.1, 0.6], [0.6, 0.6, 0.08]),
        scene(1, [0.5, -1.0], [-0.3, 0.5], [0.7, -0.5, 0.06]),
        scene(2, [1.2, 0.8], [0.6, -0.2], [-0.5, 0.2, 0.1]),
    ]}
    k = tmp_path / 'kinematic.json'
    k.write_text(json.dumps(kinematic))
    out = tmp_path / 'mujoco.json'
    status = closed_loop.main(['--kinematic-json', str(k), '--json', str(out),
                               '--node-binary', str(BINARY), '--timeout-secs', '15',
                               '--logs', str(tmp_path / 'logs')])
    report = json.loads(out.read_text())
    logs = '\n'.join(p.read_text()[-1500:] for p in sorted((tmp_path / 'logs').glob('*.log')))
    scenes = report['per_scene']
    assert [s['success'] for s in scenes] == [True] * 3, f'{json.dumps(scenes, indent=1)}\n{logs}'
    assert report['mujoco']['contacts'] == 0, logs
    assert report['mujoco']['rejected_trajectories'] == 0, logs
    for s in scenes:
        assert s['accepted_trajectories'] > 10 and s['min_clearance_m'] > 0
        assert 0 < s['max_tracking_error_rad'] < 0.05
        assert s['final_goal_distance_m'] <= 0.02
        assert s['node_exit_status'] == 0, logs
    assert report['simulator_exit_status'] == 0, logs
    assert status == 0
