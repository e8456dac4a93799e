#!/usr/bin/env python3
"""Tight collision spheres for the Franka Panda (urdf/panda/spheres.yaml), fitted to the
collision meshes of urdf/panda/panda.urdf and proven to over-approximate them.

STATUS (2026-12-04): done; it wrote urdf/panda/spheres.yaml (56 spheres: 6 per link on link0-4
and link6, 8 on link5, 4 on link7, 8 on the hand). Every link proven covered (octree PROVED, 0
coal misses, dense samples at least 1.90 mm inside); union volume vs the hull x1.93 (link0),
x1.41-1.52 (link1-6), x2.13 (link7), x2.55 (hand with the swept fingers); ready pose
self-clearance +11.7 mm. Full run 11.2 min (fit 11.0 min, checks ~15 s) on one core of an AMD
EPYC (2 vCPU). The earlier over-growth (x3-11 on link0/1/4/5) was a rounding cascade in the
shrink pass, now fixed.

What is covered, per link of the chain panda_link0 -> panda_hand (all in the link frame, the
URDF's `<collision><origin>` and mesh `scale` applied):
- the convex hull of the link's collision mesh. Every collision mesh but link6's is a closed
  convex polyhedron (up to 1 mm of facet noise), so its hull is the mesh's solid; link6's mesh is
  an unwelded, non-manifold union of pieces, whose solid lies inside the hull of its vertices.
- links hanging off a chain link by a prismatic joint (the Panda's fingers, off the chain
  because of their mimic joint) are covered by the parent's spheres over their whole travel:
  the finger's hull swept along its axis from `lower` to `upper` (for a translation, the hull
  of the finger at both ends). The planner then never drives an open or closed finger into an
  obstacle; the SRDF skips no pair for the hand that it checks for a finger.

Fit (per link, k spheres from the table `SPHERES`): k-means centres on interior points, then
L-BFGS on (volume of the union outside the solid, a smooth estimate on a 5 mm grid, 10 mm
far from the solid) + (penalty on
surface and interior sample points less than `MARGIN + sampling gap` deep inside the union),
best of `RESTARTS` seeds (per-link seeds: a `--links` run gives the same spheres as a full one);
then `REFIT_ROUNDS` refits with the fine samples left short added to the optimiser's set (warm
start); then a repair pass (while a fine sample is not deep enough, the sphere nearest to
covering it becomes the smallest ball enclosing itself and the sample's ball: centre and radius
each move half the shortfall, the old ball stays inside) and a shrink pass (each radius down to
what its own points need, plus 1 nm, never up).
Surface samples: each hull triangle cut into n^2 sub-triangles with edges <= 2 mm; every point
of the triangle is then within edge/sqrt(3) of a sample, so `MARGIN + gap` deep at the samples
means at least `MARGIN` = 1 mm deep on the whole surface.

Check (independent of the fit; `--check FILE` runs it on any spheres file):
1. proof by octree: the solid (union of the convex parts, each as its hull's half-spaces) lies
   inside the union of the spheres. A cube of centre p and half-diagonal rho is *covered* when
   |p - c| + rho <= r for one sphere, *empty* when for every convex part some facet plane has
   n.p - b > rho (the whole cube is outside it); other cubes are cut in 8 down to rho_min. The
   solid is proven inside the union when no cube is left undecided: this is exact, not sampled.
2. dense samples: every mesh vertex and the mesh triangles (the URDF's raw triangles, not the
   hulls) sampled with gap <= 0.3 mm, fingers at 11 openings; reports the max over samples of
   (distance to the nearest sphere centre - its radius): negative = inside.
3. coal 3.0.3 (mesh loaded by coal's own loader from the URDF path, as a BVH): 20,000 probe
   spheres (radius 5..30 mm) near each link's surface; whenever coal finds the probe touching the
   mesh, one of our spheres must touch the probe too.

Pinned versions: pin 4.1.0 (brings coal 3.0.3, numpy 2.4.6), scipy 1.17.1 (see
tools/gen_robot_fixtures.py for the venv; add `scipy==1.17.1`).
Run:  .cache/robot-venv/bin/python tools/fit_spheres.py            (fit, check, write)
      .cache/robot-venv/bin/python tools/fit_spheres.py --check urdf/panda/spheres.yaml
      ... --links panda_link5 --out out/l5.yaml                     (fit some links only)
      ... --assemble A.yaml B.yaml [--compare OLD.yaml] [--note TEXT]  (join, check, write)
Use OMP_NUM_THREADS=1 for a single core. `--check` and the fit also report the ready pose's
self-clearance over the pairs the Rust checker tests (src/robot/model.rs `set_self_pairs`).
"""

import argparse
import math
import pathlib
import re
import sys
import textwrap
import time
import xml.etree.ElementTree as ET

import numpy as np
from scipy.cluster.vq import kmeans2
from scipy.optimize import minimize
from scipy.spatial import ConvexHull

ROOT = pathlib.Path(__file__).resolve().parent.parent
URDF = ROOT / "urdf" / "panda" / "panda.urdf"
OUT = ROOT / "urdf" / "panda" / "spheres.yaml"
CHAIN = ["panda_link0", "panda_link1", "panda_link2", "panda_link3", "panda_link4",
         "panda_link5", "panda_link6", "panda_link7", "panda_hand"]
# Spheres per link.
SPHERES = {"panda_link0": 6, "panda_link1": 6, "panda_link2": 6, "panda_link3": 6,
           "panda_link4": 6, "panda_link5": 8, "panda_link6": 6, "panda_link7": 4,
           "panda_hand": 8}
MARGIN = 0.001       # every point of the solid at least this deep inside the union
FIT_EDGE = 0.002     # surface samples of the fit: sub-triangle edges at most this
INTERIOR = 0.005     # interior grid of the fit
OUTSIDE = 0.005      # grid estimating the union's volume outside the solid
SHELL = 0.025       # ... within this of the solid (coarser beyond, out to FAR)
FAR = 0.1
TAU = 0.002          # sigmoid width of that estimate
RESTARTS = 3
MAXITER = 150       # L-BFGS iterations per penalty weight
REFIT_ROUNDS = 1     # refits with the fine points left short added
REFIT_ADD = 4000
SEED = 20261204
CHECK_EDGE = 0.0005  # dense-sample check: sub-triangle edges (gap <= edge / sqrt(3))
FINGER_STEPS = 11
PROBES = 20000


# ----------------------------------------------------------------------------- geometry input

def rpy_matrix(r, p, y):
    cr, sr, cp, sp, cy, sy = math.cos(r), math.sin(r), math.cos(p), math.sin(p), math.cos(y), math.sin(y)
    return np.array([[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                     [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                     [-sp, cp * sr, cp * cr]])


def origin(elem):
    """(R, t) of an `<origin>` child of `elem` (identity when absent)."""
    o = elem.find("origin") if elem is not None else None
    if o is None:
        return np.eye(3), np.zeros(3)
    xyz = [float(v) for v in o.get("xyz", "0 0 0").split()]
    rpy = [float(v) for v in o.get("rpy", "0 0 0").split()]
    return rpy_matrix(*rpy), np.array(xyz)


def load_obj(path):
    """Vertices (V, 3) and triangles (F, 3) of a Wavefront .obj (polygons fanned)."""
    verts, tris = [], []
    for line in path.read_text().splitlines():
        t = line.split()
        if not t:
            continue
        if t[0] == "v":
            verts.append([float(x) for x in t[1:4]])
        elif t[0] == "f":
            idx = [int(x.split("/")[0]) for x in t[1:]]
            idx = [i - 1 if i > 0 else len(verts) + i for i in idx]
            for j in range(1, len(idx) - 1):
                tris.append([idx[0], idx[j], idx[j + 1]])
    return np.array(verts), np.array(tris, dtype=np.int64)


class Part:
    """One convex part of a link's solid, link frame: the mesh triangles it stands for and its
    hull (vertices, triangles, unit outward facet planes n.x + d <= 0 inside)."""

    def __init__(self, name, mesh_tris, points):
        self.name = name
        self.mesh_tris = mesh_tris          # (T, 3, 3) raw triangles (for the dense check)
        hull = ConvexHull(points)
        self.points = points[hull.vertices]
        self.tris = points[hull.simplices]  # (H, 3, 3)
        self.normals = hull.equations[:, :3]
        self.offsets = hull.equations[:, 3]
        self.volume = hull.volume

    def plane_dist(self, p):
        """max over facets of n.p + d (> 0 outside; a lower bound on the distance outside)."""
        out = np.full(len(p), -np.inf)
        for s in range(0, len(self.normals), 256):
            out = np.maximum(out, (p @ self.normals[s:s + 256].T + self.offsets[s:s + 256]).max(1))
        return out


def link_solids(urdf_path=URDF, fingers=True):
    """{chain link: [Part]} in the link frame; `geoms` lists (link, mesh path, scale, R, t,
    sweep) for the coal check, sweep = (axis, lower, upper) for a prismatic child."""
    tree = ET.parse(urdf_path).getroot()
    links = {l.get("name"): l for l in tree.findall("link")}
    joints = tree.findall("joint")

    def meshes(link):
        out = []
        for col in links[link].findall("collision"):
            m = col.find("geometry/mesh")
            if m is None:
                raise SystemExit(f"{link}: only mesh collision geometry is handled here")
            fname = m.get("filename").replace("package://", "")
            path = urdf_path.parent / fname
            scale = np.array([float(v) for v in m.get("scale", "1 1 1").split()])
            R, t = origin(col)
            v, f = load_obj(path)
            out.append((path, scale, R, t, (v * scale) @ R.T + t, f))
        return out

    solids, geoms = {}, []
    for link in CHAIN:
        parts = []
        for path, scale, R, t, v, f in meshes(link):
            parts.append(Part(f"{link}:{path.name}", v[f], v[np.unique(f)]))
            geoms.append((link, path, scale, R, t, None))
        if fingers:
            for j in joints:
                if j.find("parent").get("link") != link:
                    continue
                child = j.find("child").get("link")
                if child in CHAIN:
                    continue
                if j.get("type") == "fixed":
                    if links[child].find("collision") is not None:
                        raise SystemExit(f"{child}: fixed to {link} with collision geometry: "
                                         "add it to CHAIN")
                    continue
                if j.get("type") != "prismatic":
                    raise SystemExit(f"{child}: off-chain child of {link} by a {j.get('type')} joint")
                Rj, tj = origin(j)
                axis = Rj @ np.array([float(x) for x in j.find("axis").get("xyz").split()])
                lim = j.find("limit")
                lo, hi = float(lim.get("lower")), float(lim.get("upper"))
                for path, scale, R, t, v, f in meshes(child):
                    v = v @ Rj.T + tj
                    ends = np.vstack([v[np.unique(f)] + lo * axis, v[np.unique(f)] + hi * axis])
                    tris = np.concatenate([v[f] + s * axis for s in np.linspace(lo, hi, FINGER_STEPS)])
                    parts.append(Part(f"{child}:{path.name} swept {lo}..{hi} m", tris, ends))
                    geoms.append((link, path, scale, Rj @ R, Rj @ t + tj, (axis, lo, hi)))
        solids[link] = parts
    return solids, geoms


def surface_samples(tris, edge):
    """Points on triangles (T, 3, 3): each cut into n^2 sub-triangles with edges <= `edge`;
    returns the points and the largest gap (every point of a triangle lies within
    longest sub-edge / sqrt(3) of a sample)."""
    e = np.stack([np.linalg.norm(tris[:, 1] - tris[:, 0], axis=1),
                  np.linalg.norm(tris[:, 2] - tris[:, 1], axis=1),
                  np.linalg.norm(tris[:, 0] - tris[:, 2], axis=1)], 1).max(1)
    n = np.maximum(1, np.ceil(e / edge)).astype(int)
    out, gap = [], 0.0
    for m in np.unique(n):
        sel = tris[n == m]
        i, j = np.meshgrid(np.arange(m + 1), np.arange(m + 1), indexing="ij")
        keep = i + j <= m
        a, b = i[keep] / m, j[keep] / m
        w = np.stack([1 - a - b, a, b], 1)            # (S, 3)
        out.append(np.einsum("sk,tkd->tsd", w, sel).reshape(-1, 3))
        gap = max(gap, (e[n == m] / m).max() / math.sqrt(3))
    return np.concatenate(out), gap


def inside_solid(parts, p, tol=0.0):
    inside = np.zeros(len(p), dtype=bool)
    for part in parts:
        inside |= part.plane_dist(p) <= tol
    return inside


def grid_points(lo, hi, step):
    axes = [np.arange(a + step / 2, b, step) for a, b in zip(lo, hi)]
    g = np.meshgrid(*axes, indexing="ij")
    return np.stack([x.ravel() for x in g], 1)


# ----------------------------------------------------------------------------- spheres

def depth(p, c, r):
    """(P,) max over spheres of r - |p - c| (> 0 inside the union)."""
    best = np.full(len(p), -np.inf)
    for s in range(0, len(p), 200000):
        q = p[s:s + 200000]
        d = np.sqrt(((q[:, None, :] - c[None]) ** 2).sum(-1))
        best[s:s + 200000] = (r[None] - d).max(1)
    return best


def union_volume(c, r, step=0.002, region=None):
    """Volume of the union of spheres on a grid of `step` (optionally only points where
    region(points) is True)."""
    lo, hi = (c - r[:, None]).min(0), (c + r[:, None]).max(0)
    axes = [np.arange(a + step / 2, b, step) for a, b in zip(lo, hi)]
    total = 0
    for x in axes[0]:
        yz = np.stack(np.meshgrid(axes[1], axes[2], indexing="ij"), -1).reshape(-1, 2)
        p = np.column_stack([np.full(len(yz), x), yz])
        ins = depth(p, c, r) >= 0
        if region is not None and ins.any():
            ins[ins] = region(p[ins])
        total += int(ins.sum())
    return total * step ** 3


def fit_link(parts, k, seed):
    """k spheres (centres (k, 3), radii (k,)) covering the solid of `parts`."""
    tris = np.concatenate([p.tris for p in parts])
    verts = np.concatenate([p.points for p in parts])
    lo, hi = verts.min(0), verts.max(0)

    def samples(edge, step):
        surf, gap = surface_samples(tris, edge)
        grid = grid_points(lo, hi, step)
        interior = grid[inside_solid(parts, grid, -step / 2)]
        return (np.concatenate([verts, surf, interior]), interior,
                np.concatenate([np.full(len(verts) + len(surf), MARGIN + gap),
                                np.full(len(interior), MARGIN)]))

    # The proof needs the fine set (FIT_EDGE); the optimiser sees a coarser one, asking it for
    # the fine set's depth.
    pts, interior, need = samples(FIT_EDGE, INTERIOR)
    opt_pts, _, opt_need = samples(2.5 * FIT_EDGE, 2 * INTERIOR)
    opt_need[:] = np.where(opt_need > MARGIN, need.max(), MARGIN)
    # Outside points: a fine grid within SHELL of the solid, a coarse one out to FAR (so that no
    # sphere grows for free beyond the shell); weight = the grid cell's volume.
    fine = grid_points(lo - SHELL, hi + SHELL, OUTSIDE)
    pd = np.min([part.plane_dist(fine) for part in parts], 0)
    fine = fine[(pd > 0) & (pd <= SHELL)]
    coarse = grid_points(lo - FAR, hi + FAR, 2 * OUTSIDE)
    pd = np.min([part.plane_dist(coarse) for part in parts], 0)
    coarse = coarse[pd > SHELL]
    og = (np.concatenate([fine, coarse]),
          np.concatenate([np.full(len(fine), OUTSIDE ** 3), np.full(len(coarse), 8 * OUTSIDE ** 3)]),
          np.concatenate([np.full(len(fine), TAU), np.full(len(coarse), 2 * TAU)]))
    dv = None
    vol = sum(p.volume for p in parts)
    rng = np.random.default_rng(seed)
    best = None
    for restart in range(RESTARTS):
        cent, lab = kmeans2(interior if len(interior) >= 4 * k else pts, k,
                            rng=int(rng.integers(1 << 31)), minit="++")
        d0 = np.sqrt(((pts[:, None] - cent[None]) ** 2).sum(-1))
        lab = d0.argmin(1)
        rad = np.array([(d0[lab == i, i] + need[lab == i]).max() if (lab == i).any() else 0.01
                        for i in range(k)])
        x = np.concatenate([cent.ravel(), rad])
        fit_pts, fit_need = opt_pts, opt_need
        for w in (3.0, 30.0, 300.0):
            x = lbfgs(x, fit_pts, fit_need, og, dv, vol, k, w)
        # Refit: the fine points the optimiser left short join its sample set (at most
        # REFIT_ADD of them per round, the worst first), warm start.
        for _ in range(REFIT_ROUNDS):
            c, r = x[:3 * k].reshape(k, 3), np.abs(x[3 * k:])
            short = depth(pts, c, r) - need
            bad = np.where(short < 0)[0]
            if len(bad) == 0:
                break
            bad = bad[np.argsort(short[bad])][:REFIT_ADD]
            fit_pts = np.concatenate([fit_pts, pts[bad]])
            fit_need = np.concatenate([fit_need, need[bad]])
            x = lbfgs(x, fit_pts, fit_need, og, dv, vol, k, 300.0)
        c, r = x[:3 * k].reshape(k, 3), np.abs(x[3 * k:])
        c, r = repair_and_shrink(pts, need, c, r)
        out_vol = union_volume(c, r, 0.003, lambda q: ~inside_solid(parts, q))
        if best is None or out_vol < best[0]:
            best = (out_vol, c, r)
    return best[1], best[2]


def lbfgs(x, pts, need, og, dv, vol, k, w):
    res = minimize(objective, x, args=(pts, need, og, dv, vol, k, w), jac=True,
                   method="L-BFGS-B", bounds=[(None, None)] * (3 * k) + [(1e-3, None)] * k,
                   options={"maxiter": MAXITER})
    return res.x


def objective(x, pts, need, og, dv, vol, k, w):
    c, r = x[:3 * k].reshape(k, 3), x[3 * k:]
    # Outside volume of the union: u = 1 - prod(1 - s_i), s_i = sigmoid((r_i - d_i) / TAU).
    og, dv, tau = og[0], og[1][:, None], og[2][:, None]
    diff = og[:, None, :] - c[None]
    d = np.sqrt((diff ** 2).sum(-1)) + 1e-12
    z = np.clip((r[None] - d) / tau, -40, 40)
    s = 1 / (1 + np.exp(-z))
    om = np.clip(1 - s, 1e-12, None)
    prod = np.prod(om, 1, keepdims=True)
    u = 1 - prod
    f_out = (u * dv).sum() / vol
    du_ds = prod / om                                   # prod_{j != i} (1 - s_j)
    g_z = du_ds * s * (1 - s) / tau * dv / vol          # d f / d r_i per point
    g_r = g_z.sum(0)
    g_c = (g_z[:, :, None] * diff / d[:, :, None]).sum(0)    # d(r - d)/dc = (q - c)/d
    # Coverage: soft max of r_i - d_i at the samples should reach `need`.
    diff = pts[:, None, :] - c[None]
    d = np.sqrt((diff ** 2).sum(-1)) + 1e-12
    dep = r[None] - d
    t = 0.0005
    m = dep.max(1, keepdims=True)
    e = np.exp((dep - m) / t)
    soft = m[:, 0] + t * np.log(e.sum(1))
    a = e / e.sum(1, keepdims=True)
    viol = np.maximum(need - soft, 0) / MARGIN
    f_cov = w * (viol ** 2).mean()
    gs = -2 * w * viol / MARGIN / len(pts)              # d f_cov / d soft
    gdep = gs[:, None] * a
    g_r = g_r + gdep.sum(0)
    g_c = g_c + (gdep[:, :, None] * diff / d[:, :, None]).sum(0)
    return f_out + f_cov, np.concatenate([g_c.ravel(), g_r])


def repair_and_shrink(pts, need, c, r):
    """Repair: while a sample is short of its depth, the sphere nearest to covering it becomes
    the smallest ball enclosing itself and the sample's `need` ball (the centre moves toward the
    sample by half the shortfall, the radius grows by half of it; the old ball stays inside, so
    no sample is lost). Worst sample first. Then shrink."""
    c, r = c.copy(), r.copy()
    d = np.sqrt(((pts[:, None] - c[None]) ** 2).sum(-1))
    dep = r[None] - d - need[:, None]
    best = dep.max(1)
    for _ in range(200000):
        p = best.argmin()
        if best[p] >= 0:
            break
        i = dep[p].argmax()
        short = d[p, i] + need[p] - r[i]
        u = (pts[p] - c[i]) / max(d[p, i], 1e-12)
        grow = short / 2 + 1e-7
        c[i] = c[i] + grow * u
        r[i] = r[i] + grow
        d[:, i] = np.sqrt(((pts - c[i]) ** 2).sum(-1))
        dep[:, i] = r[i] - d[:, i] - need
        best = dep.max(1)
    else:
        raise RuntimeError("repair did not converge")
    # Shrink: each sphere to the radius its points (those no other sphere covers) need, plus
    # 1 nm: without it, rounding leaves the farthest of them uncovered by 1e-17 m, the next
    # sphere takes it as its own and grows to reach it (the cascade that over-grew link5).
    for i in np.argsort(-r):
        others = np.delete(np.arange(len(r)), i)
        ok = (r[others][None] - d[:, others] - need[:, None]).max(1) >= 0 if len(others) else \
            np.zeros(len(pts), bool)
        own = ~ok & (r[i] - d[:, i] - need >= 0)
        assert not (~ok & ~own).any(), "a sample left uncovered"
        r[i] = min(r[i], (d[own, i] + need[own]).max() + 1e-9) if own.any() else 0.0
    keep = r > 0
    return c[keep], r[keep]


# ----------------------------------------------------------------------------- check

def octree_proof(parts, c, r, rho_min=0.0002):
    """Proves solid within union(spheres); returns (proved, cubes examined, finest half side,
    undecided cube centres)."""
    verts = np.concatenate([p.points for p in parts])
    lo, hi = verts.min(0) - 1e-4, verts.max(0) + 1e-4
    half = 0.008
    cells = grid_points(lo - half, hi + half, 2 * half)
    examined = 0
    while len(cells):
        examined += len(cells)
        rho = half * math.sqrt(3)
        covered = depth(cells, c, r) >= rho + 1e-12
        rest = cells[~covered]
        empty = np.ones(len(rest), bool)
        for part in parts:
            empty &= part.plane_dist(rest) > rho + 1e-12
        rest = rest[~empty]
        if len(rest) == 0:
            return True, examined, half, rest
        if rho / 2 < rho_min:
            return False, examined, half, rest
        half /= 2
        offs = np.array([[i, j, k] for i in (-1, 1) for j in (-1, 1) for k in (-1, 1)]) * half
        cells = (rest[:, None, :] + offs[None]).reshape(-1, 3)
    return True, examined, half, cells


def coal_probe_check(link, geoms, c, r, rng):
    """Probe spheres near the link's surface: whenever coal says one touches the mesh, one of
    our spheres must touch it too. Returns (probes, touching, missed)."""
    import coal
    loader = coal.MeshLoader()
    meshes = []
    for glink, path, scale, R, t, sweep in geoms:
        if glink != link:
            continue
        bvh = loader.load(str(path), np.asarray(scale, float))
        offsets = [0.0] if sweep is None else list(np.linspace(sweep[1], sweep[2], FINGER_STEPS))
        for s in offsets:
            shift = t + (0 if sweep is None else s * sweep[0])
            meshes.append((bvh, coal.Transform3s(R, shift)))
    lo = (c - r[:, None]).min(0)
    hi = (c + r[:, None]).max(0)
    touching = missed = 0
    req = coal.CollisionRequest()
    for _ in range(PROBES):
        rad = rng.uniform(0.005, 0.03)
        p = rng.uniform(lo, hi)
        probe = coal.Sphere(rad)
        tp = coal.Transform3s(np.eye(3), p)
        hit = False
        for bvh, tm in meshes:
            res = coal.CollisionResult()
            if coal.collide(bvh, tm, probe, tp, req, res):
                hit = True
                break
        if hit:
            touching += 1
            if not (np.linalg.norm(c - p, axis=1) < r + rad).any():
                missed += 1
    return PROBES, touching, missed


def check(solids, geoms, spheres, verbose=True):
    """Runs the three checks per link; returns {link: report dict}."""
    rng = np.random.default_rng(SEED + 1)
    out = {}
    for link, parts in solids.items():
        c = np.array([s[0] for s in spheres.get(link, [])]).reshape(-1, 3)
        r = np.array([s[1] for s in spheres.get(link, [])])
        if len(r) == 0:
            out[link] = {"spheres": 0, "proved": False}
            continue
        t0 = time.time()
        proved, examined, half, rest = octree_proof(parts, c, r)
        verts = np.concatenate([p.mesh_tris.reshape(-1, 3) for p in parts])
        samples, gap = surface_samples(np.concatenate([p.mesh_tris for p in parts]), CHECK_EDGE)
        excess_v = -depth(verts, c, r).min()
        excess_s = -depth(samples, c, r).min()
        probes, touching, missed = coal_probe_check(link, geoms, c, r, rng)
        solid_vol = sum(p.volume for p in parts)
        uvol = union_volume(c, r)
        out[link] = dict(spheres=len(r), r_min=r.min(), r_max=r.max(), proved=proved,
                         cubes=examined, finest=half, undecided=len(rest),
                         excess_vertices=excess_v, excess_samples=excess_s, samples=len(samples),
                         gap=gap, probes=probes, touching=touching, missed=missed,
                         solid_volume=solid_vol, union_volume=uvol)
        if verbose:
            print(f"  {link}: {len(r)} spheres r {r.min():.4f}..{r.max():.4f} m; octree "
                  f"{'PROVED' if proved else f'NOT proved ({len(rest)} undecided cubes)'} "
                  f"({examined} cubes, finest half side {half * 1e3:.2f} mm); max excess "
                  f"vertices {excess_v * 1e3:+.2f} mm, {len(samples)} samples (gap "
                  f"{gap * 1e3:.2f} mm) {excess_s * 1e3:+.2f} mm; coal {touching}/{probes} "
                  f"probes touch, {missed} missed; volume {uvol * 1e6:.0f} cm3 vs solid "
                  f"{solid_vol * 1e6:.0f} cm3 ({time.time() - t0:.0f} s)", flush=True)
    return out


READY = [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785]


def ready_pose_check(spheres, urdf_path=URDF, srdf_path=URDF.with_name("panda.srdf")):
    """Self-clearance of the spheres in the Panda's ready pose, with the pairs the Rust checker
    tests (src/robot/model.rs `set_self_pairs`): spheres on different chain links, less links on
    one body or one joint apart and the SRDF's disabled pairs. Returns (min clearance, [(link a,
    link b, clearance)] for the pairs below 0, sorted)."""
    import pinocchio as pin
    model = pin.buildModelFromUrdf(str(urdf_path))
    data = model.createData()
    q = pin.neutral(model)
    for n, v in enumerate(READY):
        j = model.getJointId(f"panda_joint{n + 1}")
        q[model.joints[j].idx_q] = v
    pin.framesForwardKinematics(model, data, q)
    # Body of a chain link: how many moving joints above it (fixed joints share a body).
    tree = ET.parse(urdf_path).getroot()
    parent = {j.find("child").get("link"): (j.find("parent").get("link"), j.get("type"))
              for j in tree.findall("joint")}

    def body(link):
        b = 0
        while link in parent:
            link, kind = parent[link]
            b += kind != "fixed"
        return b

    disabled = {frozenset((d.get("link1"), d.get("link2")))
                for d in ET.parse(srdf_path).getroot().findall("disable_collisions")}
    world = []
    for link, ss in spheres.items():
        M = data.oMf[model.getFrameId(link)]
        for cen, rad in ss:
            world.append((link, M.rotation @ np.asarray(cen) + M.translation, rad))
    worst, pairs = np.inf, {}
    for a in range(len(world)):
        for b in range(a + 1, len(world)):
            la, ca, ra = world[a]
            lb, cb, rb = world[b]
            if la == lb or frozenset((la, lb)) in disabled or abs(body(la) - body(lb)) <= 1:
                continue
            g = np.linalg.norm(ca - cb) - ra - rb
            worst = min(worst, g)
            if g < 0:
                key = (la, lb)
                pairs[key] = min(pairs.get(key, 0.0), g)
    return worst, sorted(((a, b, g) for (a, b), g in pairs.items()), key=lambda t: t[2])


# ----------------------------------------------------------------------------- files

def read_spheres(path):
    """{link: [(centre, radius)]} from a spheres file in the layout this tool and
    `dplan robot spheres --propose` write (one `{center: [...], radius: ...}` per line)."""
    out, link = {}, None
    for line in pathlib.Path(path).read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        m = re.match(r"^  (\w+):\s*$", line)
        if m:
            link = m.group(1)
            out[link] = []
            continue
        m = re.match(r"^\s*- \{center: \[([^\]]*)\], radius: ([^}]*)\}", line)
        if m:
            out[link].append(([float(v) for v in m.group(1).split(",")], float(m.group(2))))
    return out


def write_spheres(path, fitted, report, old_report, ready, note=""):
    total = sum(len(r) for _, r in fitted.values())
    radii = np.concatenate([r for _, r in fitted.values()])
    lines = [
        f"# Collision spheres of the Franka Panda ({total} spheres, radii "
        f"{radii.min():.4f}..{radii.max():.4f} m),",
        "# fitted by tools/fit_spheres.py to the collision meshes of urdf/panda/panda.urdf (chain",
        "# panda_link0 -> panda_hand; panda_hand's spheres also cover both fingers over their whole",
        "# travel, 0..0.04 m).",
        "# Reproduce: .cache/robot-venv/bin/python tools/fit_spheres.py   (pin 4.1.0 with coal 3.0.3",
        "# and numpy 2.4.6, scipy 1.17.1; per-link seeds, so `--links` runs joined by `--assemble`",
        "# give the same file).",
    ] + ["# " + line for line in textwrap.wrap(note, 93)] + [
        "# Checked by the same tool (`--check FILE`): per link, an octree proof that the convex hull",
        "# of the mesh (the swept fingers for the hand) lies inside the union of the spheres, the",
        "# mesh vertices and triangles sampled every <= 0.3 mm, and coal 3.0.3 probe spheres.",
        "# link: spheres, radii (m), octree, coal probes missed/touching, max excess of the samples",
        "# (mm, negative = inside), union volume vs the mesh hull"
        + (" and vs the previous proposal" if old_report else ":"),
    ] + (["# (`dplan robot spheres --propose`: mesh bounding boxes):"] if old_report else []) + [
    ]
    for link, rep in report.items():
        old = old_report.get(link, {}).get("union_volume") if old_report else None
        lines.append(
            f"#   {link}: {rep['spheres']}, {rep['r_min']:.4f}..{rep['r_max']:.4f}, "
            f"{'proved' if rep['proved'] else 'NOT PROVED'}, {rep['missed']}/{rep['touching']}, "
            f"{rep['excess_samples'] * 1e3:+.2f}, x{rep['union_volume'] / rep['solid_volume']:.2f}"
            + (f", x{rep['union_volume'] / old:.2f}" if old else ""))
    worst, pairs = ready
    lines.append(f"# Ready pose {READY}: self-clearance")
    lines.append(f"# {worst * 1e3:+.1f} mm over the pairs the checker tests (SRDF, adjacency)"
                 + ("" if not pairs else " (colliding: " + ", ".join(
                     f"{a}-{b} {g * 1e3:+.1f} mm" for a, b, g in pairs) + ")") + ".")
    lines.append("collision_spheres:")
    for link, (c, r) in fitted.items():
        lines.append(f"  {link}:")
        order = np.lexsort((c[:, 0], c[:, 1], c[:, 2]))
        for i in order:
            x, y, z = c[i]
            lines.append(f"    - {{center: [{x:.4f}, {y:.4f}, {z:.4f}], radius: {r[i]:.4f}}}")
    pathlib.Path(path).write_text("\n".join(lines) + "\n")


def rounded(c, r):
    """Centres to 0.1 mm, radii up to the next 0.1 mm plus the rounding of the centre."""
    c = np.round(c, 4)
    return c, np.ceil((r + 0.5e-4 * math.sqrt(3)) / 1e-4 - 1e-9) * 1e-4


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", metavar="FILE", help="only check a spheres file")
    ap.add_argument("--assemble", metavar="FILE", nargs="+",
                    help="no fit: join the links of these files (written by `--links` runs), "
                         "check and write them")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--links", nargs="*", default=CHAIN)
    ap.add_argument("--compare", metavar="FILE",
                    help="another spheres file (e.g. `dplan robot spheres --propose`'s) to compare volumes with")
    ap.add_argument("--note", default="", help="added to the header (e.g. the run time)")
    args = ap.parse_args()
    solids, geoms = link_solids()
    solids = {k: v for k, v in solids.items() if k in args.links}
    if args.check:
        spheres = read_spheres(args.check)
        rep = check(solids, geoms, spheres)
        worst, pairs = ready_pose_check(spheres)
        print(f"ready pose: self-clearance {worst * 1e3:+.1f} mm; colliding pairs: {pairs}")
        ok = all(r["proved"] and r.get("missed", 1) == 0 for r in rep.values())
        print("all links proven covered" if ok else "NOT all links proven covered")
        sys.exit(0 if ok else 1)
    old = read_spheres(args.compare) if args.compare else {}
    fitted = {}
    if args.assemble:
        for f in args.assemble:
            for link, ss in read_spheres(f).items():
                fitted[link] = (np.array([x[0] for x in ss]), np.array([x[1] for x in ss]))
        missing = [k for k in solids if k not in fitted]
        if missing:
            raise SystemExit(f"--assemble: no spheres for {missing}")
        fitted = {k: fitted[k] for k in solids}
    else:
        for link in solids:
            t0 = time.time()
            c, r = fit_link(solids[link], SPHERES[link], SEED + CHAIN.index(link))
            fitted[link] = rounded(c, r)
            print(f"fitted {link}: {len(r)} spheres ({time.time() - t0:.0f} s)", flush=True)
    print("check of the new spheres:")
    spheres = {k: list(zip(c.tolist(), r.tolist())) for k, (c, r) in fitted.items()}
    report = check(solids, geoms, spheres)
    ready = ready_pose_check(spheres)
    print(f"ready pose: self-clearance {ready[0] * 1e3:+.1f} mm; colliding pairs: {ready[1]}")
    old_report = {}
    if old:
        for link, s in old.items():
            if link in solids:
                cc = np.array([x[0] for x in s])
                rr = np.array([x[1] for x in s])
                old_report[link] = {"union_volume": union_volume(cc, rr, 0.003)}
    write_spheres(args.out, fitted, report, old_report, ready, args.note)
    ok = all(r["proved"] and r["missed"] == 0 for r in report.values())
    print(f"wrote {args.out}; {'all links proven covered' if ok else 'NOT all links proven covered'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
