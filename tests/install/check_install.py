"""The colcon install of diffusion_planner as a ROS user meets it. scripts/test-install runs this
in the environment of the throw-away workspace's install/setup.bash.

    python check_install.py INSTALL_BASE

INSTALL_BASE is the workspace's install/diffusion_planner. The checks:
1. the ament index finds the package there (as `ros2 run` and `ros2 launch` look it up);
2. every executable that an installed launch file names for this package (`Node(package=...,
   executable=...)` in launch/*.py, `<node pkg=... exec=...>` in launch/*.xml) and every
   `[[bin]]` of Cargo.toml is an executable file in lib/diffusion_planner;
3. share/diffusion_planner holds package.xml (which depends on every r2r message package that
   src/ uses) and the same files as the repository's launch/,
   config/, models/ and urdf/, and every `$(find-pkg-share diffusion_planner)` path that a
   launch file uses exists;
4. the installed node, started as `ros2 run diffusion_planner diffusion_planner` starts it (the
   executable under the package prefix, from a folder outside the repository) with the installed
   config/planar_arm.yaml and models/planar_arm (the launch files' defaults), plans with that
   model and publishes joint_trajectory over loopback DDS: tests/ros/node_peer.py plays the
   robot (scenario `follow`: a goal behind an obstacle; every message is checked against
   JointTrajectoryController's rules and the followed motion must reach the goal without a
   collision); SIGINT then stops the node with status 0.
Prints one line per check and exits 1 when any failed.
"""

import ast
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml
from ament_index_python.packages import get_package_prefix, get_package_share_directory

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = 'diffusion_planner'
SHARE_DIRS = ['launch', 'config', 'models', 'urdf']
NODE_TIMEOUT_S = 150.0

failures = []


def check(name, ok, detail=''):
    print(f"{'ok  ' if ok else 'FAIL'} {name}" + (f': {detail}' if detail and not ok else ''))
    if not ok:
        failures.append(name)
    return ok


class PyLaunch:
    """What a Python launch file names for one package: executables and share paths.

    Reads the syntax tree; names bound by simple assignments anywhere in the file are followed.
    A Node whose package or executable is not a plain string is reported as unreadable."""

    def __init__(self, path, package):
        self.path, self.package = path, package
        self.tree = ast.parse(path.read_text(), filename=str(path))
        self.names = {}
        for node in ast.walk(self.tree):
            if (isinstance(node, ast.Assign) and len(node.targets) == 1
                    and isinstance(node.targets[0], ast.Name)):
                self.names[node.targets[0].id] = node.value

    def value(self, node, depth=0):
        if depth > 20:
            return None
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name) and node.id in self.names:
            return self.value(self.names[node.id], depth + 1)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id == 'FindPackageShare' and node.args:
                return ('share', self.value(node.args[0], depth + 1))
            if (node.func.id == 'PathJoinSubstitution' and node.args
                    and isinstance(node.args[0], (ast.List, ast.Tuple))):
                parts = [self.value(e, depth + 1) for e in node.args[0].elts]
                if (parts and parts[0] == ('share', self.package)
                        and all(isinstance(p, str) for p in parts[1:])):
                    return ('path', '/'.join(parts[1:]))
        return None

    def executables(self):
        found, unreadable = [], []
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id == 'Node':
                kw = {k.arg: self.value(k.value) for k in node.keywords}
                package, executable = kw.get('package'), kw.get('executable')
                if not isinstance(package, str) or not isinstance(executable, str):
                    unreadable.append(f'{self.path.name}:{node.lineno}')
                elif package == self.package:
                    found.append(executable)
        return found, unreadable

    def share_paths(self):
        paths = []
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id == 'PathJoinSubstitution':
                v = self.value(node)
                if v and v[0] == 'path':
                    paths.append(v[1])
        return paths


def xml_launch(path, package):
    root = ET.parse(path).getroot()
    executables = [n.get('exec') for n in root.iter('node') if n.get('pkg') == package]
    share = re.compile(r'\$\(find-pkg-share ' + re.escape(package) + r'\)/([^\s"$]+)')
    paths = [m.group(1) for e in root.iter() for v in e.attrib.values()
             for m in share.finditer(v)]
    return executables, paths


def files_under(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob('*') if p.is_file())


def check_tree(install):
    prefix = Path(get_package_prefix(PACKAGE)).resolve()
    share = Path(get_package_share_directory(PACKAGE)).resolve()
    check('the ament index finds the package in the workspace install', prefix == install,
          f'found at {prefix}, expected {install}')
    check('ament index entry share/ament_index/resource_index/packages/diffusion_planner',
          (install / 'share/ament_index/resource_index/packages' / PACKAGE).is_file())
    installed_xml = share / 'package.xml'
    check('share/diffusion_planner/package.xml is the repository\'s',
          installed_xml.is_file()
          and installed_xml.read_bytes() == (ROOT / 'package.xml').read_bytes())
    depends = {e.text for e in ET.parse(ROOT / 'package.xml').getroot() if e.tag == 'depend'}
    used = {m for f in (ROOT / 'src').rglob('*.rs')
            for m in re.findall(r'\br2r::([a-z_]+_msgs)\b', f.read_text())}
    check('package.xml depends on every message package the sources use',
          used and used <= depends, f'used {sorted(used)}, missing {sorted(used - depends)}')
    for folder in SHARE_DIRS:
        theirs, ours = files_under(ROOT / folder), files_under(share / folder)
        check(f'share/diffusion_planner/{folder}/ has the repository\'s files',
              theirs and theirs == ours,
              f'missing {sorted(set(theirs) - set(ours))}, extra {sorted(set(ours) - set(theirs))}')

    lib = prefix / 'lib' / PACKAGE
    present = sorted(p.name for p in lib.iterdir()) if lib.is_dir() else []
    wanted = {}
    launch_files = sorted((share / 'launch').glob('*.launch.*'))
    check('launch files installed', bool(launch_files), share / 'launch')
    for path in launch_files:
        if path.suffix == '.py':
            launch = PyLaunch(path, PACKAGE)
            executables, unreadable = launch.executables()
            paths = launch.share_paths()
            check(f'{path.name}: every Node names its package and executable as strings',
                  not unreadable, unreadable)
        elif path.suffix == '.xml':
            executables, paths = xml_launch(path, PACKAGE)
        else:
            check(f'{path.name}: a launch file this check can read', False, path.suffix)
            continue
        for executable in executables:
            wanted.setdefault(executable, []).append(path.name)
        for rel in paths:
            check(f'{path.name}: $(find-pkg-share {PACKAGE})/{rel} is installed',
                  (share / rel).exists())
    for binary in tomllib.loads((ROOT / 'Cargo.toml').read_text()).get('bin', []):
        wanted.setdefault(binary['name'], []).append('Cargo.toml [[bin]]')
    check('the launch files name executables of the package', bool(wanted))
    for executable, sources in sorted(wanted.items()):
        path = lib / executable
        check(f'lib/{PACKAGE}/{executable} (named in {", ".join(sorted(set(sources)))})',
              path.is_file() and os.access(path, os.X_OK),
              f'not installed; lib/{PACKAGE} holds {present}')
    return prefix, share


def run_node(prefix, share):
    """Starts the installed node as `ros2 run` would and lets node_peer.py play the robot."""
    executable = prefix / 'lib' / PACKAGE / PACKAGE
    config = share / 'config' / 'planar_arm.yaml'
    model = share / 'models' / 'planar_arm'
    if not check('the installed node, config and model exist to be started',
                 executable.is_file() and config.is_file() and (model / 'model.yaml').is_file(),
                 f'{executable}, {config}, {model}'):
        return
    params = yaml.safe_load(config.read_text())[PACKAGE]['ros__parameters']
    robot = yaml.safe_load((model / 'model.yaml').read_text())['robot']
    namespace = f'/dp_install_{os.getpid()}'
    with tempfile.TemporaryDirectory(prefix='dp-install-run.') as run_dir:
        run_dir = Path(run_dir)
        log_path = run_dir / 'node.log'
        report_path = run_dir / 'report.json'
        peer_config = {
            'scenario': 'follow',
            'namespace': namespace,
            'report': str(report_path),
            'period_s': 1.0 / params['control_rate_hz'],
            'joints': params['joints'],
            'link_lengths_m': robot['link_lengths_m'],
            'link_radius_m': robot['link_radius_m'],
            'max_velocity_rad_s': max(j['max_velocity_rad_s'] for j in robot['joints']),
            'start_rad': [-0.2, 0.8],
            'goal_tolerance_m': params['goal_tolerance_m'],
            'scene': {'goal_m': [-0.3, 0.6], 'obstacle': [0.45, 0.45, 0.08]},
            'reach_timeout_s': 20.0,
        }
        (run_dir / 'peer.json').write_text(json.dumps(peer_config))
        command = [str(executable), '--ros-args', '-r', f'__ns:={namespace}',
                   '--params-file', str(config), '-p', f'model_path:={model}']
        print(f'starting {" ".join(command)}', flush=True)
        started = time.monotonic()
        with open(log_path, 'wb') as log:
            node = subprocess.Popen(command, cwd=run_dir, stdout=log, stderr=subprocess.STDOUT)
        try:
            peer = subprocess.run(
                [sys.executable, str(ROOT / 'tests' / 'ros' / 'node_peer.py'),
                 str(run_dir / 'peer.json')],
                cwd=run_dir, timeout=NODE_TIMEOUT_S)
            peer_ok = peer.returncode == 0
        except subprocess.TimeoutExpired:
            peer_ok = False
        finally:
            if node.poll() is None:
                node.send_signal(signal.SIGINT)
            try:
                status = node.wait(timeout=10.0)
            except subprocess.TimeoutExpired:
                node.kill()
                status = node.wait()
        log = log_path.read_text(errors='replace')
        check('the rclpy peer ran the scenario', peer_ok and report_path.is_file())
        report = json.loads(report_path.read_text()) if report_path.is_file() else {}
        checks = report.get('checks', [])
        for c in checks:
            check(f"peer: {c.get('name')}", c.get('ok') is True, c.get('detail'))
        stats = report.get('stats', {})
        check('joint_trajectory messages received from the installed node',
              any(c.get('name') == 'trajectories were received' and c.get('ok') is True
                  for c in checks), stats.get('rate'))
        check('the node exits with status 0 on SIGINT', status == 0, f'status {status}')
        check('the node log has no panic', 'panicked' not in log)
        print(f'node ran {time.monotonic() - started:.1f} s; goal reached in '
              f"{stats.get('reach_1_s', float('nan')):.2f} s; planning p50 "
              f"{stats.get('latency_ms_p50')} ms")
        if failures:
            print(f'--- node log ({log_path.name}) ---\n{log}')


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    install = Path(sys.argv[1]).resolve()
    prefix, share = check_tree(install)
    run_node(prefix, share)
    print(f'install: {len(failures)} failed' if failures else 'install: every check passed')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
