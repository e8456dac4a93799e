"""`scripts/demo` on MuJoCo (its default simulator): the summary merge and the PNG writer
offline, then the quick demo over DDS (three goals, the geometric source): passed, every goal
reached, 0 contacts with obstacles in MuJoCo, the tracking error reported, the pictures written
(or skipped with a message when no OpenGL backend works). The DDS test needs rclpy and the node
and dplan binaries (the folder of DP_NODE_BINARY, else target/debug); skipped when they are
missing unless DP_MUJOCO_DDS_TEST=1, which makes that a failure (scripts/test sets it)."""

import importlib.util
import json
import os
import subprocess
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT

from mujoco_sim import demo_report, render

BINARY = Path(os.environ.get('DP_NODE_BINARY', ROOT / 'target' / 'debug' / 'diffusion_planner'))
REQUIRED = os.environ.get('DP_MUJOCO_DDS_TEST') == '1'


def read_png(path):
    """(width, height, rgb) of an 8-bit RGB PNG written by render.write_png."""
    data = Path(path).read_bytes()
    assert data[:8] == b'\x89PNG\r\n\x1a\n'
    width, height = int.from_bytes(data[16:20], 'big'), int.from_bytes(data[20:24], 'big')
    start = data.index(b'IDAT') + 4
    length = int.from_bytes(data[start - 8:start - 4], 'big')
    raw = np.frombuffer(zlib.decompress(data[start:start + length]), np.uint8)
    rows = raw.reshape(height, 1 + 3 * width)
    assert (rows[:, 0] == 1).all()  # filter Sub
    values = rows[:, 1:].astype(np.int64)
    for x in range(3, 3 * width):
        values[:, x] = (values[:, x] + values[:, x - 3]) % 256
    return width, height, values.reshape(height, width, 3).astype(np.uint8)


def test_write_png_round_trips(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    render.write_png(tmp_path / 'a.png', rgb)
    width, height, back = read_png(tmp_path / 'a.png')
    assert (width, height) == (5, 7) and (back == rgb).all()


def test_the_moments_are_the_start_and_each_goals_end():
    trace = {'joint_states': {'t_s': [0.0, 1.0, 2.0, 9.0]},
             'goals': [{'name': 'g1', 't_s': 0.5, 'reached_t_s': 1.5, 'timeout_s': 8.0},
                       {'name': 'g2', 't_s': 2.0, 'reached_t_s': None, 'timeout_s': 8.0}]}
    assert render.moments(trace) == [('start', 0.0), ('g1-reached', 1.5), ('g2-timeout', 9.0)]
    assert render.state_at(trace, 1.5) == 1


def mujoco_report(contacts):
    return {'simulator': 'mujoco', 'mujoco_version': '4.0.0', 'timestep_secs': 0.001,
            'update_rate_hz': 100.0, 'contacts': contacts, 'contact_steps': 3 * contacts,
            'max_penetration_m': 0.001 * contacts, 'min_clearance_m': 0.05,
            'max_tracking_error_rad': 0.01, 'rms_tracking_error_rad': 0.002,
            'saturated_updates': 0, 'trajectories_accepted': 10, 'trajectories_rejected': 0,
            'rejected_by_rule': {}, 'physics_steps': 1000, 'updates': 100, 'goals_received': 1,
            'goals_reached': 1, 'late_updates': 2, 'max_update_gap_secs': 0.03,
            'catch_up_updates': 3}


@pytest.mark.parametrize('contacts', [0, 2])
def test_the_summary_gains_the_mujoco_figures_and_fails_on_a_contact(tmp_path, contacts):
    (tmp_path / 'summary.json').write_text(json.dumps({'passed': True, 'problems': []}))
    (tmp_path / 'README.md').write_text('# demo\n')
    (tmp_path / demo_report.REPORT_FILE).write_text(json.dumps(mujoco_report(contacts)))
    status = demo_report.main(['--out', str(tmp_path), '--no-render'])
    summary = json.loads((tmp_path / 'summary.json').read_text())
    assert summary['simulator'] == 'mujoco'
    assert summary['mujoco']['max_tracking_error_rad'] == 0.01
    assert summary['mujoco']['rms_tracking_error_rad'] == 0.002
    assert summary['mujoco']['contacts'] == contacts
    assert summary['passed'] is (contacts == 0) and status == (0 if contacts == 0 else 1)
    assert 'contacts with obstacles (MuJoCo)' in (tmp_path / 'README.md').read_text()


def test_a_missing_mujoco_report_fails_the_run(tmp_path):
    (tmp_path / 'summary.json').write_text(json.dumps({'passed': True, 'problems': []}))
    assert demo_report.main(['--out', str(tmp_path), '--no-render']) == 1
    summary = json.loads((tmp_path / 'summary.json').read_text())
    assert summary['mujoco'] is None and 'wrote no report' in summary['problems'][0]


def test_the_quick_demo_on_mujoco_reaches_its_goals_without_contacts(tmp_path):
    bin_dir = BINARY.parent
    missing = [what for what, ok in (('rclpy', importlib.util.find_spec('rclpy')),
                                     (str(BINARY), BINARY.exists()),
                                     (str(bin_dir / 'dplan'), (bin_dir / 'dplan').exists()))
               if not ok]
    if missing:
        if REQUIRED:
            pytest.fail(f'missing: {missing}')
        pytest.skip(f'missing: {missing}')
    base = int(os.environ.get('ROS_DOMAIN_ID', os.getpid() % 100))
    env = dict(os.environ, DP_DEMO_ROS_DOMAIN_ID=str((base + 37) % 100 + 1))
    out = tmp_path / 'demo'
    started = time.monotonic()
    done = subprocess.run([str(ROOT / 'scripts' / 'demo'), '--sim', 'mujoco', '--quick',
                           '--duration', '40', '--model', 'synthetic', '--out', str(out),
                           '--bin-dir', str(bin_dir)],
                          capture_output=True, text=True, env=env, timeout=240)
    logs = '\n'.join(f'--- {p.name}\n' + p.read_text()[-1500:]
                     for p in sorted((out / 'logs').glob('*.log')))
    context = f'{done.stdout}\n{done.stderr}\n{logs}'
    print(f'scripts/demo --sim mujoco --quick: status {done.returncode} in '
          f'{time.monotonic() - started:.1f} s\n{done.stdout}')
    assert done.returncode == 0, context
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['passed'] and summary['simulator'] == 'mujoco', context
    assert summary['goals_reached'] == summary['goals_sent'] == 3, context
    m = summary['mujoco']
    assert m['contacts'] == 0 and m['contact_steps'] == 0, context
    assert m['trajectories_rejected'] == 0 and m['trajectories_accepted'] > 10, context
    assert 0 < m['rms_tracking_error_rad'] <= m['max_tracking_error_rad'] < 0.05, context
    assert m['min_clearance_m'] > 0, context
    assert 'MuJoCo contacts     0 with obstacles' in done.stdout
    assert 'tracking error      max' in done.stdout
    if m['pictures'] is None:
        assert 'pictures skipped' in done.stdout, context
    else:
        for picture in m['pictures']:
            width, height, _ = read_png(out / picture)
            assert width >= 320 and height == 240
        assert f"mujoco/{m['pictures'][0].split('/')[-1]}" in (out / 'README.md').read_text()
