"""The MuJoCo part of `scripts/demo`'s summary: after `dplan demo-report` wrote summary.json
and README.md, this adds what only the MuJoCo simulator measured (its report file, written at
shutdown: tools/mujoco_sim/node.py `report_file`) and the pictures MuJoCo rendered
(tools/mujoco_sim/render.py).

    python -m mujoco_sim.demo_report --out OUT [--render | --no-render]

- summary.json gains `"simulator": "mujoco"` and a `"mujoco"` object: `contacts` (episodes of
  contact between the arm's links and the obstacles, MuJoCo's, on the collision geometry),
  `contact_steps`, `max_penetration_m`, `min_clearance_m` (mj_geomDistance), the tracking
  error (`max_tracking_error_rad`, `rms_tracking_error_rad`: max over joints of |commanded -
  measured| at each controller update; the RMS over the updates while the command moves),
  `saturated_updates`, trajectories accepted / rejected, physics steps, `late_updates` and
  `catch_up_updates` (the simulator process was late; the missed controller updates were run),
  `pictures`. A missing
  report or a contact makes the run fail (`passed` false, a line in `problems`).
- README.md (the report) gains a section with the same figures and the pictures.
- A few lines for the terminal; exit status 0 when the run (still) passed, 1 when not.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPORT_FILE = 'mujoco.json'
PICTURES_DIR = 'mujoco'

KEYS = ('contacts', 'contact_steps', 'max_penetration_m', 'min_clearance_m',
        'max_tracking_error_rad', 'rms_tracking_error_rad', 'saturated_updates',
        'trajectories_accepted', 'trajectories_rejected', 'rejected_by_rule', 'physics_steps',
        'updates', 'goals_received', 'goals_reached', 'mujoco_version',
        'timestep_secs', 'update_rate_hz', 'late_updates', 'max_update_gap_secs', 'catch_up_updates')


def render(out):
    """Runs the renderer; returns (pictures dict or None, message)."""
    cmd = [sys.executable, '-m', 'mujoco_sim.render', '--trace', str(out / 'trace.json'),
           '--out', str(out / PICTURES_DIR)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        return None, 'pictures skipped: the renderer did not finish within 600 s'
    if done.returncode == 0:
        info = json.loads(done.stdout.strip().splitlines()[-1])
        return info, (f"pictures: {out / PICTURES_DIR / info['picture']} ({len(info['frames'])} "
                      f"moments, rendered by MuJoCo with MUJOCO_GL={info['backend']})")
    why = (done.stderr.strip().splitlines() or [f'exit status {done.returncode}'])[-1]
    if done.returncode == 3:
        return None, f'pictures skipped: {why}'
    return None, f'pictures skipped: the renderer failed: {done.stderr.strip()[-2000:]}'


def fmt(value, digits, unit='', scale=1.0):
    return 'n/a' if value is None else f'{value * scale:.{digits}f}{unit}'


def section(m, pictures, message=''):
    """The README section (Markdown)."""
    penetration = fmt(m['max_penetration_m'], 2, ' mm', 1e3)
    lines = ['', '## MuJoCo (physics behind the controller)', '',
             'The arm ran in MuJoCo (`scripts/mujoco-sim`, docs/SIM.md): PD drives with effort '
             'limits, contacts on the collision geometry.', '',
             '| | |', '|---|---|',
             f"| contacts with obstacles (MuJoCo) | {m['contacts']} ({m['contact_steps']} "
             f"physics steps in contact, max penetration {penetration}) |",
             f"| min clearance (mj_geomDistance) | {fmt(m['min_clearance_m'], 4, ' m')} |",
             '| tracking error, measured vs commanded | '
             f"max {fmt(m['max_tracking_error_rad'], 2, ' mrad', 1e3)}, "
             f"RMS {fmt(m['rms_tracking_error_rad'], 2, ' mrad', 1e3)} (while moving) |",
             f"| drive saturation | {m['saturated_updates']} of {m['updates']} updates |",
             '| controller updates late (> 1.5 periods apart, wall clock) | '
             f"{m['late_updates']} (longest gap {fmt(m['max_update_gap_secs'], 0, ' ms', 1e3)}; "
             f"{m['catch_up_updates']} missed updates run to catch up) |",
             f"| physics | {m['physics_steps']} steps of {m['timestep_secs']} s, MuJoCo "
             f"{m['mujoco_version']} |", '']
    if pictures:
        lines += [f"Rendered by MuJoCo (offscreen, MUJOCO_GL={pictures['backend']}): "
                  + ', '.join(f"{f['moment']} ({f['t_s']:.1f} s)" for f in pictures['frames'])
                  + '.', '', f"![MuJoCo]({PICTURES_DIR}/{pictures['picture']})", '']
    elif message:
        lines += [message[0].upper() + message[1:] + '.', '']
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', required=True, help="the demo's output folder")
    parser.add_argument('--no-render', action='store_true', help='no pictures')
    args = parser.parse_args(argv)
    out = Path(args.out)
    summary_path = out / 'summary.json'
    summary = json.loads(summary_path.read_text())
    summary['simulator'] = 'mujoco'
    passed_before = summary['passed']
    known = list(summary['problems'])
    report_path = out / REPORT_FILE
    lines = []
    if report_path.is_file():
        report = json.loads(report_path.read_text())
        m = {k: report.get(k) for k in KEYS}
        if m['contacts']:
            problem = f"{m['contacts']} contacts with obstacles in MuJoCo"
            if problem not in summary['problems']:
                summary['problems'].append(problem)
    else:
        m = None
        summary['problems'].append(f'the MuJoCo simulator wrote no report ({report_path})')
    pictures = None
    if m is not None and not args.no_render:
        pictures, message = render(out)
    else:
        message = 'pictures skipped (--no-render)' if m is not None else 'pictures skipped'
    if m is not None:
        m['pictures'] = None if pictures is None else \
            [f"{PICTURES_DIR}/{pictures['picture']}"] + \
            [f"{PICTURES_DIR}/{f['file']}" for f in pictures['frames']]
        m['render_backend'] = None if pictures is None else pictures['backend']
        lines += [
            f"  MuJoCo contacts     {m['contacts']} with obstacles ({m['contact_steps']} physics "
            f"steps, max penetration {fmt(m['max_penetration_m'], 2, ' mm', 1e3)}; min clearance "
            f"{fmt(m['min_clearance_m'], 3, ' m')})",
            f"  tracking error      max {fmt(m['max_tracking_error_rad'], 2, ' mrad', 1e3)}, RMS "
            f"{fmt(m['rms_tracking_error_rad'], 2, ' mrad', 1e3)} (measured vs commanded)",
            f"  drive saturation    {m['saturated_updates']} of {m['updates']} updates; "
            f"{m['late_updates']} updates late (> 1.5 periods, longest gap "
            f"{fmt(m['max_update_gap_secs'], 0, ' ms', 1e3)}; {m['catch_up_updates']} missed "
            'ones run to catch up)',
            f'  {message}']
    summary['mujoco'] = m
    summary['passed'] = not summary['problems']
    summary_path.write_text(json.dumps(summary, indent=2) + '\n')
    readme = out / 'README.md'
    if readme.is_file() and m is not None:
        readme.write_text(readme.read_text().rstrip('\n') + '\n' + section(m, pictures, message))
    print('MuJoCo (simulator of this run):')
    for line in lines:
        print(line)
    for problem in summary['problems']:
        if problem not in known:
            print(f'  problem: {problem}')
    if passed_before and not summary['passed']:
        print('demo FAILED (MuJoCo: see the problems above)')
    return 0 if summary['passed'] else 1


if __name__ == '__main__':
    sys.exit(main())
