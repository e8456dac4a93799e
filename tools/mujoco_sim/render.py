"""Pictures of a demo run rendered by MuJoCo offscreen: the arm, the obstacles and the goal as
MuJoCo draws them, at a few moments of the run (the start, and each goal when it was reached
or given up), from the demo's trace (`trace.json`: the measured joint positions, the obstacle
sets and the goals; format src/demo/trace.rs).

    python -m mujoco_sim.render --trace OUT/trace.json --out OUT/mujoco [--physics-file F]

writes `OUT/mujoco/frame-<k>-<moment>.png` for each moment and `OUT/mujoco/mujoco.png`, all
of them side by side, and prints a JSON line describing them (the last line of its output).
The scene: the model of tools/mujoco_sim/arm.py (the simulator's MJCF, the obstacles as its
cylinders), seen from above at a slant; the goal a green ball of the goal tolerance, the end
effector's path since the previous moment a thin blue tube.

OpenGL: MuJoCo reads MUJOCO_GL when it is imported, so each backend is tried in a process of
its own: MUJOCO_GL when it is set, else `egl` then `osmesa`. Exit status 0 when the pictures
were written, 3 when no backend could render (the message says why for each; callers skip the
pictures), 1 on other errors.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PHYSICS_FILE = ROOT / 'config' / 'mujoco_planar_arm.yaml'
BACKENDS = ('egl', 'osmesa')
NO_BACKEND = 3
GOAL_TOLERANCE_M = 0.02
# The demo's obstacle markers are this high (tools/demo_scenario.py); MuJoCo makes them at least
# obstacle_min_height_m.
MARKER_HEIGHT_M = 0.3
MAX_TRAIL_SEGMENTS = 300


def write_png(path, rgb):
    """An 8-bit RGB PNG of `rgb` (numpy, height x width x 3, uint8); filter `Sub` on every row."""
    import numpy as np
    height, width, _ = rgb.shape
    rows = rgb.reshape(height, width * 3).astype(np.int16)
    sub = rows.copy()
    sub[:, 3:] -= rows[:, :-3]
    raw = np.concatenate([np.ones((height, 1), np.uint8), (sub % 256).astype(np.uint8)], axis=1)

    def chunk(kind, data):
        return (struct.pack('>I', len(data)) + kind + data +
                struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))

    png = (b'\x89PNG\r\n\x1a\n' +
           chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)) +
           chunk(b'IDAT', zlib.compress(raw.tobytes(), 9)) + chunk(b'IEND', b''))
    Path(path).write_bytes(png)


def moments(trace):
    """[(name, t_s)]: the start, then each goal when it was reached (or when the driver gave up
    on it), the last one no later than the end of the run."""
    t = trace['joint_states']['t_s']
    if not t:
        return []
    end = t[-1]
    out = [('start', t[0])]
    for goal in trace['goals']:
        if goal.get('reached_t_s') is not None:
            out.append((f"{goal['name']}-reached", goal['reached_t_s']))
        else:
            out.append((f"{goal['name']}-timeout", min(goal['t_s'] + goal['timeout_s'], end)))
    return [(name, min(when, end)) for name, when in out]


def state_at(trace, when):
    """The index of the last joint-state sample at or before `when` (the first one if none)."""
    t = trace['joint_states']['t_s']
    index = 0
    for i, ti in enumerate(t):
        if ti <= when:
            index = i
        else:
            break
    return index


def last_before(events, when):
    chosen = None
    for event in events:
        if event['t_s'] <= when:
            chosen = event
    return chosen


def render_frames(trace, physics_file, out_dir, width, height):
    """Renders each moment (MUJOCO_GL already chosen); returns the description of the files."""
    import mujoco
    import numpy as np

    from .arm import ArmModel, Obstacle
    from .config import Physics, RobotDescription

    robot = RobotDescription.from_dict(trace['robot'], 'trace.json')
    physics = Physics.load(physics_file, len(robot.joints))
    half_height = 0.5 * max(MARKER_HEIGHT_M, physics.obstacle_min_height_m)
    names = trace['joint_states']['names']
    order = [names.index(j.name) for j in robot.joints]
    positions = trace['joint_states']['positions_rad']
    out_dir.mkdir(parents=True, exist_ok=True)
    frames, files = [], []
    renderer = None
    previous_index = 0
    for k, (name, when) in enumerate(moments(trace)):
        index = state_at(trace, when)
        q = [positions[index][i] for i in order]
        event = last_before(trace['obstacles'], when)
        obstacles = [] if event is None else [
            Obstacle('cylinder', tuple(c['center_m']), (c['radius_m'], half_height))
            for c in event['circles']]
        arm = ArmModel(robot, physics, q, obstacles)
        model, data = arm.model, arm.data
        for g in arm.link_geoms:
            model.geom_rgba[g] = (0.85, 0.55, 0.15, 1.0)
        for g in arm.obstacle_geoms:
            model.geom_rgba[g] = (0.75, 0.2, 0.2, 0.9)
        model.vis.headlight.ambient[:] = (0.45, 0.45, 0.45)
        model.vis.headlight.diffuse[:] = (0.6, 0.6, 0.6)
        model.vis.headlight.specular[:] = (0.1, 0.1, 0.1)
        mujoco.mj_forward(model, data)
        if renderer is None:
            renderer = mujoco.Renderer(model, height, width)
        else:   # a new model each moment (the obstacles differ); the same GL context
            renderer.close()
            renderer = mujoco.Renderer(model, height, width)
        camera = mujoco.MjvCamera()
        camera.type = mujoco.mjtCamera.mjCAMERA_FREE
        reach = sum(robot.link_lengths_m)
        bx, by = robot.base_position_m
        camera.lookat[:] = (bx, by - 0.05 * reach, 0.0)
        camera.distance = 2.4 * reach
        camera.azimuth = 90.0
        camera.elevation = -72.0
        renderer.update_scene(data, camera)
        scene = renderer.scene
        identity = np.eye(3).flatten()

        def add(kind, size, pos, rgba):
            if scene.ngeom >= scene.maxgeom:
                return None
            geom = scene.geoms[scene.ngeom]
            mujoco.mjv_initGeom(geom, kind, np.asarray(size, float), np.asarray(pos, float),
                                identity, np.asarray(rgba, np.float32))
            scene.ngeom += 1
            return geom

        # The floor (a flat box under the arm), then the goal and the path.
        add(mujoco.mjtGeom.mjGEOM_BOX, (3.0 * reach, 3.0 * reach, 0.005), (bx, by, -0.005),
            (0.93, 0.93, 0.9, 1.0))
        goal = last_before(trace['goals'], when)
        z = 0.13
        if goal is not None:   # a disc on the floor under it (the arm hides the ball once there)
            gx, gy = goal['goal_m']
            add(mujoco.mjtGeom.mjGEOM_CYLINDER, (0.045, 0.045, 0.002), (gx, gy, 0.002),
                (0.1, 0.7, 0.2, 1.0))
            add(mujoco.mjtGeom.mjGEOM_SPHERE, (GOAL_TOLERANCE_M,) * 3, (gx, gy, z),
                (0.1, 0.75, 0.2, 0.9))
        trail = [robot.end_effector([positions[i][j] for j in order])
                 for i in range(previous_index, index + 1)]
        step = max(1, math.ceil(len(trail) / MAX_TRAIL_SEGMENTS))
        trail = trail[::step] + trail[-1:]
        for a, b in zip(trail, trail[1:]):
            if math.hypot(b[0] - a[0], b[1] - a[1]) < 1e-4:
                continue
            geom = add(mujoco.mjtGeom.mjGEOM_CAPSULE, (0.006, 0.006, 0.006), (0, 0, 0),
                       (0.15, 0.35, 0.9, 1.0))
            if geom is not None:
                mujoco.mjv_connector(geom, mujoco.mjtGeom.mjGEOM_CAPSULE, 0.006,
                                     np.array([a[0], a[1], z]), np.array([b[0], b[1], z]))
        image = renderer.render()
        previous_index = index
        path = out_dir / f'frame-{k}-{name}.png'
        write_png(path, image)
        frames.append(image)
        files.append({'moment': name, 't_s': when, 'file': path.name,
                      'positions_rad': q, 'obstacles': len(obstacles)})
    if renderer is not None:
        renderer.close()
    if not frames:
        raise ValueError('the trace has no joint states: nothing to render')
    gap = np.full((height, 4, 3), 255, np.uint8)
    strip = frames[0]
    for image in frames[1:]:
        strip = np.concatenate([strip, gap, image], axis=1)
    write_png(out_dir / 'mujoco.png', strip)
    return {'backend': os.environ.get('MUJOCO_GL'), 'picture': 'mujoco.png', 'width': width,
            'height': height, 'frames': files}


def child(args):
    """Renders with MUJOCO_GL=args.backend (set before MuJoCo is imported)."""
    os.environ['MUJOCO_GL'] = args.backend
    if args.backend in ('egl', 'osmesa'):
        os.environ.setdefault('PYOPENGL_PLATFORM', args.backend)
    trace = json.loads(Path(args.trace).read_text())
    try:
        import mujoco
        mujoco.GLContext(8, 8).free()
    except Exception as e:  # noqa: BLE001 (any failure here means: this backend cannot render)
        print(f'render: {args.backend}: no OpenGL context: {e!r}', file=sys.stderr)
        return NO_BACKEND
    result = render_frames(trace, args.physics_file, Path(args.out), args.width, args.height)
    print(json.dumps(result))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--trace', required=True, help="the demo's trace.json")
    parser.add_argument('--out', required=True, help='folder for the PNGs (created)')
    parser.add_argument('--physics-file', default=str(DEFAULT_PHYSICS_FILE))
    parser.add_argument('--width', type=int, default=320)
    parser.add_argument('--height', type=int, default=240)
    parser.add_argument('--backend', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.backend:
        return child(args)
    backends = [os.environ['MUJOCO_GL']] if os.environ.get('MUJOCO_GL') else list(BACKENDS)
    failures = []
    for backend in backends:
        cmd = [sys.executable, '-m', 'mujoco_sim.render', '--backend', backend,
               '--trace', args.trace, '--out', args.out, '--physics-file', args.physics_file,
               '--width', str(args.width), '--height', str(args.height)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if done.returncode == 0:
            print(done.stdout.strip().splitlines()[-1])
            return 0
        why = (done.stderr.strip().splitlines() or [f'exit status {done.returncode}'])[-1]
        why = why.removeprefix('render: ')
        if done.returncode != NO_BACKEND:
            print(f'render: failed with MUJOCO_GL={backend}:\n{done.stderr[-3000:]}',
                  file=sys.stderr)
            return 1
        failures.append(why)
    print('render: no OpenGL backend for offscreen rendering works (' + '; '.join(failures) +
          '); install libegl1 (EGL) or libosmesa6 (OSMesa) for the pictures', file=sys.stderr)
    return NO_BACKEND


if __name__ == '__main__':
    sys.exit(main())
