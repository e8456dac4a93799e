#!/usr/bin/env python3
"""Reference values for `src/robot/` (URDF kinematics and sphere-primitive distances) from
code we did not write: Pinocchio (forward kinematics, frame Jacobians) and coal (signed
distances between a sphere and a box, a cylinder or a sphere).

Pinned versions (the fixtures were produced with exactly these):
    pin 4.1.0 (Pinocchio), coal 3.0.3 (installed with pin), numpy 2.4.6, safetensors 0.8.0

Set up (the venv is not committed):
    python3 -m venv .cache/robot-venv
    .cache/robot-venv/bin/pip install pin==4.1.0 safetensors==0.8.0
    .cache/robot-venv/bin/python tools/gen_robot_fixtures.py

Writes, relative to the repository root:
    tests/fixtures/robot_fk.safetensors   per robot `{panda,planar}/...`, float64:
        q            (N, dof)        random configurations, uniform within the URDF limits
        link_pos     (N, L, 3)       origin of every link in `links` (base frame)
        tip_rot      (N, 3, 3)       rotation of the tip link
        tip_jacobian (N, 6, dof)     geometric Jacobian of the tip: linear rows (velocity of the
                                     tip origin), then angular rows, base-frame axes
                                     (Pinocchio's LOCAL_WORLD_ALIGNED)
    tests/fixtures/robot_fk.json          per robot: urdf, base, tip, joints, links (the order of
                                          the tensors above), N, seed
    tests/fixtures/sphere_distances.json  signed distances sphere-vs-{box, cylinder, sphere}
                                          (coal.distance; negative = penetration depth)
The Rust test `tests/robot_reference.rs` reads them; it needs no Python.
"""

import json
import pathlib

import coal
import numpy as np
import pinocchio as pin
from safetensors.numpy import save_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
N = 1000
SEED = 20261203

ROBOTS = {
    "panda": {
        "urdf": "urdf/panda/panda.urdf",
        "base": "panda_link0",
        "tip": "panda_hand",
        "joints": [f"panda_joint{i}" for i in range(1, 8)],
        "links": [f"panda_link{i}" for i in range(1, 9)] + ["panda_hand", "panda_grasptarget"],
    },
    "planar": {
        "urdf": "urdf/planar_arm.urdf",
        "base": "base_link",
        "tip": "tool0",
        "joints": ["shoulder", "elbow"],
        "links": ["link1", "link2", "tool0"],
    },
}


def robot_fixture(name, spec, rng):
    model = pin.buildModelFromUrdf(str(ROOT / spec["urdf"]))
    data = model.createData()
    base = model.getFrameId(spec["base"])
    tip = model.getFrameId(spec["tip"])
    idx_q = [model.joints[model.getJointId(j)].idx_q for j in spec["joints"]]
    idx_v = [model.joints[model.getJointId(j)].idx_v for j in spec["joints"]]
    lower = model.lowerPositionLimit[idx_q]
    upper = model.upperPositionLimit[idx_q]
    dof = len(idx_q)
    q_all = rng.uniform(lower, upper, size=(N, dof))
    link_ids = [model.getFrameId(l) for l in spec["links"]]
    link_pos = np.zeros((N, len(link_ids), 3))
    tip_rot = np.zeros((N, 3, 3))
    jac = np.zeros((N, 6, dof))
    for n in range(N):
        q = pin.neutral(model)
        q[idx_q] = q_all[n]
        pin.forwardKinematics(model, data, q)
        pin.updateFramePlacements(model, data)
        base_inv = data.oMf[base].inverse()
        for k, fid in enumerate(link_ids):
            link_pos[n, k] = (base_inv * data.oMf[fid]).translation
        tip_in_base = base_inv * data.oMf[tip]
        tip_rot[n] = tip_in_base.rotation
        J = pin.computeFrameJacobian(model, data, q, tip, pin.LOCAL_WORLD_ALIGNED)
        # Base-frame axes (the base frame is the URDF root in both robots: identity).
        R = base_inv.rotation
        jac[n, :3] = R @ J[:3, idx_v]
        jac[n, 3:] = R @ J[3:, idx_v]
    tensors = {
        f"{name}/q": q_all,
        f"{name}/link_pos": link_pos,
        f"{name}/tip_rot": tip_rot,
        f"{name}/tip_jacobian": jac,
    }
    meta = {k: spec[k] for k in ("urdf", "base", "tip", "joints", "links")}
    meta.update({"n": N, "seed": SEED})
    return tensors, meta


def random_rotation(rng):
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    return pin.Quaternion(q[0], q[1], q[2], q[3]).toRotationMatrix()


def distance_cases(rng):
    cases = []
    for i in range(300):
        kind = ["box", "cylinder", "sphere"][i % 3]
        rotation = random_rotation(rng)
        translation = rng.uniform(-0.5, 0.5, size=3)
        if kind == "box":
            size = rng.uniform(0.05, 0.6, size=3)  # full extents (Marker CUBE scale)
            shape = coal.Box(*size)
            scale = size.tolist()
        elif kind == "cylinder":
            diameter, height = rng.uniform(0.05, 0.5), rng.uniform(0.05, 0.8)
            shape = coal.Cylinder(diameter / 2.0, height)
            scale = [diameter, diameter, height]
        else:
            diameter = rng.uniform(0.05, 0.5)
            shape = coal.Sphere(diameter / 2.0)
            scale = [diameter] * 3
        radius = rng.uniform(0.01, 0.15)
        # Centres around the obstacle, a third of them inside or touching it.
        spread = 0.2 if i % 3 == 0 else 0.6
        center = translation + rng.uniform(-spread, spread, size=3)
        pose = coal.Transform3s(rotation, translation)
        sphere_pose = coal.Transform3s(np.eye(3), center)
        result = coal.DistanceResult()
        d = coal.distance(coal.Sphere(radius), sphere_pose, shape, pose, coal.DistanceRequest(), result)
        cases.append({
            "kind": kind,
            "scale": scale,
            "position": translation.tolist(),
            "rotation": rotation.tolist(),
            "sphere_center": center.tolist(),
            "sphere_radius": radius,
            "distance": float(d),
        })
    return cases


def main():
    rng = np.random.default_rng(SEED)
    FIXTURES.mkdir(parents=True, exist_ok=True)
    tensors, meta = {}, {}
    for name, spec in ROBOTS.items():
        t, m = robot_fixture(name, spec, rng)
        tensors.update(t)
        meta[name] = m
    save_file({k: np.ascontiguousarray(v, dtype=np.float64) for k, v in tensors.items()},
              str(FIXTURES / "robot_fk.safetensors"))
    (FIXTURES / "robot_fk.json").write_text(json.dumps(meta, indent=1) + "\n")
    cases = distance_cases(rng)
    (FIXTURES / "sphere_distances.json").write_text(
        json.dumps({"source": "coal 3.0.3 coal.distance", "cases": cases}) + "\n")
    print(f"wrote {len(tensors)} tensors, {len(cases)} distance cases")


if __name__ == "__main__":
    main()
