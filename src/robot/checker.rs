//! Robot-world and self-collision checks on sphere models, for single configurations, for
//! segments between two configurations (a swept check that cannot tunnel) and for batches of
//! K trajectories x H waypoints, with every buffer allocated once in [`Checker::new`].
//!
//! The spheres of one link form a *group* with a bounding ball. A group's clearance to the
//! world is the smallest signed distance of its spheres to any obstacle; a group pair's
//! self-clearance the smallest distance of their sphere pairs. When the bounding balls are more
//! than [`Checker::exact_below_m`] apart the bounding-ball distance is used instead: a lower
//! bound, so every verdict stays conservative.
//!
//! **Swept check.** Along the joint-space segment `q(t) = q_a + t (q_b - q_a)` (shortest signed
//! difference for continuous joints) a sphere centre moves at most
//! `B = sum_j |dq_j| * lever[j]`, where `lever[j]` bounds the distance from joint `j`'s axis to
//! the centre over every configuration (the chain's link offsets, see `Robot::lever`). A clearance
//! `c(t)` is 1-Lipschitz in the centre, so `c(t) >= max(c_a - B t, c_b - B (1 - t))` and the
//! whole segment keeps at least `(c_a + c_b - B) / 2`. A segment whose bound is not above the
//! margin is split at its midpoint (which is checked) until it is, a checked configuration
//! collides, or the depth limit ([`Checker::set_max_depth`]) is reached (then reported as a collision: unproven).

use std::sync::Arc;

use nalgebra::Vector3;

use super::frame::Frame;
use super::model::Robot;
use super::world::World;

/// The result of checking one configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConfigCheck {
    /// Smallest robot-world clearance (m; `+inf` without obstacles; a lower bound when above
    /// `exact_below_m`).
    pub world_clearance: f64,
    /// Smallest self-clearance between checked sphere pairs (m; `+inf` without pairs).
    pub self_clearance: f64,
    /// Within the position limits.
    pub within_limits: bool,
}

impl ConfigCheck {
    /// `min(world_clearance, self_clearance)`.
    pub fn clearance(&self) -> f64 {
        self.world_clearance.min(self.self_clearance)
    }
}

/// The result of checking a trajectory (waypoints and the segments between them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrajectoryCheck {
    /// No waypoint and no segment comes closer than the margin.
    pub collision_free: bool,
    /// Every waypoint within the position limits.
    pub within_limits: bool,
    /// Smallest clearance at the waypoints (world and self).
    pub min_waypoint_clearance: f64,
    /// Guaranteed lower bound of the clearance along the whole trajectory.
    pub min_swept_clearance: f64,
    /// First waypoint (or segment start) found in contact.
    pub first_contact: Option<usize>,
    /// Configurations checked (waypoints plus subdivision midpoints).
    pub evaluations: usize,
}

/// Nearest obstacle to the robot (exact, over every sphere).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clearance {
    /// Signed distance, m.
    pub distance: f64,
    /// Sphere index.
    pub sphere: usize,
    /// Obstacle index.
    pub obstacle: usize,
    /// Unit direction in which the distance grows, at the sphere centre (base frame).
    pub direction: Vector3<f64>,
}

#[derive(Debug, Clone)]
struct Group {
    spheres: std::ops::Range<usize>,
    body: usize,
    center: Vector3<f64>,
    radius: f64,
}

/// Collision checks with preallocated buffers (one per thread).
#[derive(Debug, Clone)]
pub struct Checker {
    robot: Arc<Robot>,
    groups: Vec<Group>,
    group_pairs: Vec<(u32, u32)>,
    group_lever: Vec<f64>,
    /// Distances of bounding balls above this are used as lower bounds (m).
    pub exact_below_m: f64,
    max_depth: usize,
    frames: Vec<Frame>,
    centers: Vec<Vector3<f64>>,
    /// `centers_ready[g]`: group `g`'s sphere centres are those of the configuration last
    /// evaluated (they are computed on first use, for the groups a narrow phase needs).
    centers_ready: Vec<bool>,
    /// Sphere centres (base frame) of the configuration last evaluated, by coordinate.
    cx: Vec<f64>,
    cy: Vec<f64>,
    cz: Vec<f64>,
    /// Sphere centres in their body frames and radii (copied from the robot, contiguous).
    local_centers: Vec<Vector3<f64>>,
    radii: Vec<f64>,
    group_centers: Vec<Vector3<f64>>,
    /// Group centres by coordinate, group radii, and per group the smallest bounding-ball
    /// bound to the obstacles and whether every bound is above `exact_below_m`.
    gx: Vec<f64>,
    gy: Vec<f64>,
    gz: Vec<f64>,
    g_radius: Vec<f64>,
    bound_min: Vec<f64>,
    all_far: Vec<bool>,
    /// Clearance rows: row 0 and 1 the segment ends, row d + 2 the midpoint at depth d; each row
    /// holds the groups' world clearances, then the group pairs' self-clearances.
    rows: Vec<f64>,
    bounds: Vec<f64>,
    /// Per group, the motion bound of the whole current segment (`span` 1).
    unit_bounds: Vec<f64>,
    delta: Vec<f64>,
    q_tmp: Vec<f64>,
    jac: Vec<[f64; 6]>,
}

impl Checker {
    /// Buffers for `robot`.
    pub fn new(robot: Arc<Robot>) -> Self {
        let mut groups: Vec<Group> = Vec::new();
        let mut s = 0;
        while s < robot.spheres.len() {
            let link = robot.spheres[s].link;
            let end = (s..robot.spheres.len())
                .find(|&i| robot.spheres[i].link != link)
                .unwrap_or(robot.spheres.len());
            let members = &robot.spheres[s..end];
            let center =
                members.iter().map(|m| m.center).sum::<Vector3<f64>>() / members.len() as f64;
            let radius = members
                .iter()
                .map(|m| (m.center - center).norm() + m.radius)
                .fold(0.0, f64::max);
            groups.push(Group {
                spheres: s..end,
                body: members[0].body,
                center,
                radius,
            });
            s = end;
        }
        let group_of = |sphere: u32| {
            groups
                .iter()
                .position(|g| g.spheres.contains(&(sphere as usize)))
                .unwrap_or(0) as u32
        };
        let mut group_pairs: Vec<(u32, u32)> = robot
            .self_pairs
            .iter()
            .map(|&(a, b)| (group_of(a), group_of(b)))
            .collect();
        group_pairs.sort_unstable();
        group_pairs.dedup();
        let dof = robot.dof();
        let mut group_lever = vec![0.0; groups.len() * dof];
        for (g, group) in groups.iter().enumerate() {
            for s in group.spheres.clone() {
                for j in 0..dof {
                    let l: &mut f64 = &mut group_lever[g * dof + j];
                    *l = l.max(robot.lever[s * dof + j]);
                }
            }
        }
        let row = groups.len() + group_pairs.len();
        let max_depth = 12;
        Checker {
            groups,
            group_pairs,
            group_lever,
            exact_below_m: 0.05,
            max_depth,
            frames: robot.frames_scratch(),
            centers: vec![Vector3::zeros(); robot.spheres.len()],
            centers_ready: Vec::new(),
            cx: vec![0.0; robot.spheres.len()],
            cy: vec![0.0; robot.spheres.len()],
            cz: vec![0.0; robot.spheres.len()],
            local_centers: robot.spheres.iter().map(|s| s.center).collect(),
            radii: robot.spheres.iter().map(|s| s.radius).collect(),
            group_centers: Vec::new(),
            gx: Vec::new(),
            gy: Vec::new(),
            gz: Vec::new(),
            g_radius: Vec::new(),
            bound_min: Vec::new(),
            all_far: Vec::new(),
            rows: vec![0.0; row * (max_depth + 3)],
            bounds: Vec::new(),
            unit_bounds: Vec::new(),
            delta: vec![0.0; dof],
            q_tmp: vec![0.0; dof],
            jac: vec![[0.0; 6]; dof],
            robot,
        }
        .with_sized_buffers()
    }

    fn with_sized_buffers(mut self) -> Self {
        self.group_centers = vec![Vector3::zeros(); self.groups.len()];
        self.centers_ready = vec![false; self.groups.len()];
        let ng = self.groups.len();
        (self.gx, self.gy, self.gz) = (vec![0.0; ng], vec![0.0; ng], vec![0.0; ng]);
        self.g_radius = self.groups.iter().map(|g| g.radius).collect();
        self.bound_min = vec![0.0; ng];
        self.all_far = vec![true; ng];
        self.bounds = vec![0.0; self.groups.len()];
        self.unit_bounds = vec![0.0; self.groups.len()];
        self
    }

    /// Maximum bisection depth of the swept check (default 12: segments down to 1/4096).
    pub fn set_max_depth(&mut self, depth: usize) {
        self.max_depth = depth;
        self.rows = vec![0.0; self.row_len() * (depth + 3)];
    }

    /// The robot.
    pub fn robot(&self) -> &Arc<Robot> {
        &self.robot
    }

    fn row_len(&self) -> usize {
        self.groups.len() + self.group_pairs.len()
    }

    /// Fills clearance row `row` for `q`; returns (world, self) minima.
    ///
    /// A group's world clearance is the smallest over the obstacles of the bounding-ball bound
    /// when it is above `exact_below_m`, else of the group's exact sphere distances; a group
    /// pair's self-clearance the bounding-ball bound when above `exact_below_m`, else the
    /// smallest sphere-pair distance (`tests::reference_row` computes both plainly). Sphere
    /// centres are computed only for the groups a narrow phase needs, and the loops are written
    /// without data-dependent branches (minima in independent lanes).
    fn eval_row(&mut self, world: &World, q: &[f64], row: usize) -> (f64, f64) {
        self.robot.body_frames(q, &mut self.frames);
        for (gc, g) in self.group_centers.iter_mut().zip(&self.groups) {
            *gc = self.frames[g.body].point(&g.center);
        }
        self.centers_ready.fill(false);
        let n = self.row_len();
        let ng = self.groups.len();
        let exact_below = self.exact_below_m;
        // Each group's smallest bounding-ball bound to the obstacles, and whether every bound
        // is above `exact_below` (then that minimum is the group's clearance).
        for (g, gc) in self.group_centers.iter().enumerate() {
            (self.gx[g], self.gy[g], self.gz[g]) = (gc.x, gc.y, gc.z);
        }
        self.bound_min.fill(f64::INFINITY);
        self.all_far.fill(true);
        for obstacle in &world.obstacles {
            let t = &obstacle.pose.translation;
            let lanes = self
                .gx
                .iter()
                .zip(&self.gy)
                .zip(&self.gz)
                .zip(&self.g_radius);
            let out = self.bound_min.iter_mut().zip(self.all_far.iter_mut());
            for ((((x, y), z), r), (bound, far)) in lanes.zip(out) {
                let (dx, dy, dz) = (x - t.x, y - t.y, z - t.z);
                // `obstacle.distance_lower_bound(centre) - radius`, term for term.
                let lb = (dx * dx + dy * dy + dz * dz).sqrt() - obstacle.bounding_radius - r;
                *bound = bound.min(lb);
                *far &= lb > exact_below;
            }
        }
        let mut world_min = f64::INFINITY;
        for gi in 0..ng {
            let best = if self.all_far[gi] {
                self.bound_min[gi]
            } else {
                self.ensure_centers(gi);
                self.group_world_clearance(world, gi)
            };
            self.rows[row * n + gi] = best;
            world_min = world_min.min(best);
        }
        let mut self_min = f64::INFINITY;
        for pi in 0..self.group_pairs.len() {
            let (a, b) = self.group_pairs[pi];
            let (a, b) = (a as usize, b as usize);
            let (ra, rb) = (self.groups[a].radius, self.groups[b].radius);
            let lb = (self.group_centers[a] - self.group_centers[b]).norm() - ra - rb;
            let value = if lb > exact_below {
                lb
            } else {
                self.ensure_centers(a);
                self.ensure_centers(b);
                self.group_pair_clearance(a, b)
            };
            self.rows[row * n + ng + pi] = value;
            self_min = self_min.min(value);
        }
        (world_min, self_min)
    }

    /// Group `g`'s world clearance when some obstacle is within `exact_below_m` of its
    /// bounding ball (its sphere centres computed): obstacles whose bound cannot beat the best
    /// so far are skipped, far ones give their bound, near ones their exact sphere distances.
    fn group_world_clearance(&self, world: &World, g: usize) -> f64 {
        let group = &self.groups[g];
        let gc = &self.group_centers[g];
        let mut best = f64::INFINITY;
        for obstacle in &world.obstacles {
            let lb = obstacle.distance_lower_bound(gc) - group.radius;
            if lb >= best {
                continue;
            }
            if lb > self.exact_below_m {
                best = lb;
                continue;
            }
            for s in group.spheres.clone() {
                let (c, r) = (self.sphere_center(s), self.radii[s]);
                if obstacle.distance_lower_bound(&c) - r >= best {
                    continue;
                }
                let d = obstacle.signed_distance(&c).0 - r;
                best = best.min(d);
            }
        }
        best
    }

    /// Sphere `s`'s centre (base frame; its group's centres computed).
    #[inline]
    fn sphere_center(&self, s: usize) -> Vector3<f64> {
        Vector3::new(self.cx[s], self.cy[s], self.cz[s])
    }

    /// Computes group `g`'s sphere centres for the current body frames unless done already.
    #[inline]
    fn ensure_centers(&mut self, g: usize) {
        if self.centers_ready[g] {
            return;
        }
        let group = &self.groups[g];
        let frame = &self.frames[group.body];
        for s in group.spheres.clone() {
            let c = frame.point(&self.local_centers[s]);
            (self.cx[s], self.cy[s], self.cz[s]) = (c.x, c.y, c.z);
        }
        self.centers_ready[g] = true;
    }

    /// The smallest distance between the spheres of groups `a` and `b` (their centres
    /// computed), over every pair (a loop the compiler vectorises).
    fn group_pair_clearance(&self, a: usize, b: usize) -> f64 {
        let sb = self.groups[b].spheres.clone();
        let (bx, by, bz) = (
            &self.cx[sb.clone()],
            &self.cy[sb.clone()],
            &self.cz[sb.clone()],
        );
        let br = &self.radii[sb];
        let mut best = f64::INFINITY;
        for i in self.groups[a].spheres.clone() {
            let (x, y, z, r) = (self.cx[i], self.cy[i], self.cz[i], self.radii[i]);
            for (((xj, yj), zj), rj) in bx.iter().zip(by).zip(bz).zip(br) {
                let (dx, dy, dz) = (x - xj, y - yj, z - zj);
                // `(c_i - c_j).norm() - r_i - r_j`, term for term.
                let d = (dx * dx + dy * dy + dz * dz).sqrt() - r - rj;
                best = best.min(d);
            }
        }
        best
    }

    /// Checks one configuration.
    pub fn check_config(&mut self, world: &World, q: &[f64]) -> ConfigCheck {
        let (w, s) = self.eval_row(world, q, 0);
        ConfigCheck {
            world_clearance: w,
            self_clearance: s,
            within_limits: self.robot.within_limits(q),
        }
    }

    /// Swept check of the segment between rows `ra` (at `qa`) and `rb`; `t0`, `t1` its
    /// parameters on the parent segment `q_tmp`.. (we re-derive configurations from `base`
    /// and `delta`). Returns the guaranteed minimum clearance, or `None` on contact/unproven.
    #[allow(clippy::too_many_arguments)]
    fn segment(
        &mut self,
        world: &World,
        base: &[f64],
        (t0, ra): (f64, usize),
        (t1, rb): (f64, usize),
        depth: usize,
        margin: f64,
        evaluations: &mut usize,
    ) -> Option<f64> {
        let n = self.row_len();
        let dof = self.robot.dof();
        let span = t1 - t0;
        for (b, unit) in self.bounds.iter_mut().zip(&self.unit_bounds) {
            *b = span * unit;
        }
        // Every row, without an early exit (the rows are few and the exit hard to predict).
        let (row_a, row_b) = (
            &self.rows[ra * n..(ra + 1) * n],
            &self.rows[rb * n..(rb + 1) * n],
        );
        let pair_bounds = self
            .group_pairs
            .iter()
            .map(|&(a, b)| self.bounds[a as usize] + self.bounds[b as usize]);
        let mut proven = f64::INFINITY;
        let mut ok = true;
        for ((&ca, &cb), bound) in row_a
            .iter()
            .zip(row_b)
            .zip(self.bounds.iter().copied().chain(pair_bounds))
        {
            let (lo, hi) = (ca.min(cb), ca.max(cb));
            // min over t of max(c_a - B t, c_b - B (1 - t)).
            let guaranteed = if !hi.is_finite() {
                lo - bound
            } else if hi - lo <= bound {
                (ca + cb - bound) / 2.0
            } else {
                hi - bound
            };
            let skip = lo == f64::INFINITY;
            ok &= skip || guaranteed > margin;
            proven = if skip { proven } else { proven.min(guaranteed) };
        }
        if ok {
            return Some(proven);
        }
        if depth >= self.max_depth {
            return None;
        }
        let tm = 0.5 * (t0 + t1);
        for ((q, b), d) in self.q_tmp.iter_mut().zip(base).zip(&self.delta).take(dof) {
            *q = b + tm * d;
        }
        let q_mid = std::mem::take(&mut self.q_tmp);
        let (w, s) = self.eval_row(world, &q_mid, depth + 2);
        self.q_tmp = q_mid;
        *evaluations += 1;
        if !(w.min(s) > margin) {
            return None;
        }
        let left = self.segment(
            world,
            base,
            (t0, ra),
            (tm, depth + 2),
            depth + 1,
            margin,
            evaluations,
        )?;
        let right = self.segment(
            world,
            base,
            (tm, depth + 2),
            (t1, rb),
            depth + 1,
            margin,
            evaluations,
        )?;
        Some(left.min(right))
    }

    /// The motion bound of every group over the whole segment `delta`.
    fn set_unit_bounds(&mut self) {
        let dof = self.robot.dof();
        for (g, b) in self.unit_bounds.iter_mut().enumerate() {
            let lever = &self.group_lever[g * dof..(g + 1) * dof];
            *b = self
                .delta
                .iter()
                .zip(lever)
                .map(|(d, l)| d.abs() * l)
                .sum::<f64>();
        }
    }

    /// Checks a trajectory of `h` waypoints (`traj` is `h x dof` row-major): every waypoint
    /// and every segment (swept) against `margin` (m).
    pub fn check_trajectory(
        &mut self,
        world: &World,
        traj: &[f64],
        margin: f64,
    ) -> TrajectoryCheck {
        let dof = self.robot.dof();
        let n = self.row_len();
        let mut result = TrajectoryCheck {
            collision_free: true,
            within_limits: true,
            min_waypoint_clearance: f64::INFINITY,
            min_swept_clearance: f64::INFINITY,
            first_contact: None,
            evaluations: 0,
        };
        let mut prev: Option<&[f64]> = None;
        for (w, q) in traj.chunks_exact(dof).enumerate() {
            result.within_limits &= self.robot.within_limits(q);
            // Row 1 holds the current waypoint; row 0 the previous one.
            let (cw, cs) = self.eval_row(world, q, 1);
            result.evaluations += 1;
            let c = cw.min(cs);
            result.min_waypoint_clearance = result.min_waypoint_clearance.min(c);
            if !(c > margin) && result.first_contact.is_none() {
                result.first_contact = Some(w);
                result.collision_free = false;
            }
            if let Some(p) = prev {
                if result.collision_free {
                    self.robot.joint_delta(p, q, &mut self.delta);
                    self.set_unit_bounds();
                    let mut evals = 0;
                    let swept = self.segment(world, p, (0.0, 0), (1.0, 1), 0, margin, &mut evals);
                    result.evaluations += evals;
                    match swept {
                        Some(v) => result.min_swept_clearance = result.min_swept_clearance.min(v),
                        None => {
                            result.collision_free = false;
                            result.first_contact = Some(w - 1);
                        }
                    }
                }
            }
            result.min_swept_clearance = result.min_swept_clearance.min(c);
            self.rows.copy_within(n..2 * n, 0);
            prev = Some(q);
        }
        if !result.collision_free {
            result.min_swept_clearance = result.min_swept_clearance.min(margin);
        }
        result
    }

    /// Checks `k` trajectories of `h` waypoints (`trajs` is `k x h x dof`) into `out[..k]`.
    pub fn check_batch(
        &mut self,
        world: &World,
        trajs: &[f64],
        h: usize,
        margin: f64,
        out: &mut [TrajectoryCheck],
    ) {
        let per = h * self.robot.dof();
        for (traj, o) in trajs.chunks_exact(per).zip(out.iter_mut()) {
            *o = self.check_trajectory(world, traj, margin);
        }
    }

    /// The nearest obstacle over every sphere (exact), `None` without obstacles or spheres.
    pub fn nearest_obstacle(&mut self, world: &World, q: &[f64]) -> Option<Clearance> {
        let robot = &*self.robot;
        robot.body_frames(q, &mut self.frames);
        robot.sphere_centers(&self.frames, &mut self.centers);
        let mut best: Option<Clearance> = None;
        for (s, c) in self.centers.iter().enumerate() {
            if let Some((d, o, n)) = world.sphere_clearance(c, robot.spheres[s].radius) {
                if best.is_none_or(|b| d < b.distance) {
                    best = Some(Clearance {
                        distance: d,
                        sphere: s,
                        obstacle: o,
                        direction: n,
                    });
                }
            }
        }
        best
    }

    /// A CHOMP-style obstacle cost and its joint-space gradient: for every sphere closer than
    /// `influence_m` to its nearest obstacle, cost `(influence - d)^2 / (2 influence)` (and
    /// `influence / 2 - d` inside); `grad` (len dof) gets `d cost / d q` through the sphere's
    /// Jacobian. Returns the total cost (0 when every sphere is farther than `influence_m`).
    pub fn obstacle_cost_gradient(
        &mut self,
        world: &World,
        q: &[f64],
        influence_m: f64,
        grad: &mut [f64],
    ) -> f64 {
        grad.iter_mut().for_each(|g| *g = 0.0);
        let robot = &*self.robot;
        robot.body_frames(q, &mut self.frames);
        robot.sphere_centers(&self.frames, &mut self.centers);
        let eps = influence_m.max(1e-9);
        let mut cost = 0.0;
        for (s, c) in self.centers.iter().enumerate() {
            let Some((d, _, n)) = world.sphere_clearance(c, robot.spheres[s].radius) else {
                continue;
            };
            if d >= eps {
                continue;
            }
            let (value, slope) = if d < 0.0 {
                (0.5 * eps - d, -1.0)
            } else {
                ((eps - d).powi(2) / (2.0 * eps), (d - eps) / eps)
            };
            cost += value;
            robot.point_jacobian(&self.frames, robot.spheres[s].body, c, &mut self.jac);
            for (g, col) in grad.iter_mut().zip(&self.jac) {
                *g += slope * (n.x * col[0] + n.y * col[1] + n.z * col[2]);
            }
        }
        cost
    }
}

#[cfg(test)]
mod tests {
    //! The optimised [`Checker`] against a plain reference: every obstacle and every sphere
    //! pair of `Robot::self_pairs` computed, no culling, no lazy centres, a freshly allocated
    //! row per configuration; the same bisection written out again.

    use super::*;
    use crate::robot::world::{Obstacle, Shape};
    use nalgebra::Rotation3;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A clearance row by the definition: per group, the minimum over the obstacles of the
    /// bounding-ball bound (above `exact_below_m`) or else the exact sphere distances; per group
    /// pair, the bound (above `exact_below_m`) or else the minimum over its sphere pairs.
    fn reference_row(checker: &Checker, world: &World, q: &[f64]) -> Vec<f64> {
        let robot = &*checker.robot;
        let mut frames = robot.frames_scratch();
        robot.body_frames(q, &mut frames);
        let mut centers = vec![Vector3::zeros(); robot.spheres.len()];
        robot.sphere_centers(&frames, &mut centers);
        let e = checker.exact_below_m;
        let group_center = |g: &Group| frames[g.body].point(&g.center);
        let mut row = Vec::new();
        for g in &checker.groups {
            let gc = group_center(g);
            let mut value = f64::INFINITY;
            for obstacle in &world.obstacles {
                let bound = obstacle.distance_lower_bound(&gc) - g.radius;
                let v = if bound > e {
                    bound
                } else {
                    g.spheres
                        .clone()
                        .map(|s| obstacle.signed_distance(&centers[s]).0 - robot.spheres[s].radius)
                        .fold(f64::INFINITY, f64::min)
                };
                value = value.min(v);
            }
            row.push(value);
        }
        let group_of = |s: u32| {
            let s = s as usize;
            checker.groups.iter().position(|g| g.spheres.contains(&s))
        };
        for &(a, b) in &checker.group_pairs {
            let (ga, gb) = (&checker.groups[a as usize], &checker.groups[b as usize]);
            let bound = (group_center(ga) - group_center(gb)).norm() - ga.radius - gb.radius;
            let value = if bound > e {
                bound
            } else {
                robot
                    .self_pairs
                    .iter()
                    .filter(|&&(i, j)| {
                        (group_of(i), group_of(j)) == (Some(a as usize), Some(b as usize))
                    })
                    .map(|&(i, j)| {
                        let (i, j) = (i as usize, j as usize);
                        (centers[i] - centers[j]).norm()
                            - robot.spheres[i].radius
                            - robot.spheres[j].radius
                    })
                    .fold(f64::INFINITY, f64::min)
            };
            row.push(value);
        }
        row
    }

    fn minima(checker: &Checker, row: &[f64]) -> (f64, f64) {
        let ng = checker.groups.len();
        let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
        (min(&row[..ng]), min(&row[ng..]))
    }

    /// The swept check of the module docs, plainly: `Some(proven)` or `None`.
    #[allow(clippy::too_many_arguments)]
    fn reference_segment(
        checker: &Checker,
        world: &World,
        base: &[f64],
        delta: &[f64],
        (t0, row_a): (f64, &[f64]),
        (t1, row_b): (f64, &[f64]),
        depth: usize,
        margin: f64,
        evaluations: &mut usize,
    ) -> Option<f64> {
        let dof = checker.robot.dof();
        let ng = checker.groups.len();
        let span = t1 - t0;
        let bound: Vec<f64> = (0..ng)
            .map(|g| {
                let lever = &checker.group_lever[g * dof..(g + 1) * dof];
                span * delta
                    .iter()
                    .zip(lever)
                    .map(|(d, l)| d.abs() * l)
                    .sum::<f64>()
            })
            .collect();
        let mut proven = f64::INFINITY;
        let mut ok = true;
        for (i, (&ca, &cb)) in row_a.iter().zip(row_b).enumerate() {
            let b = if i < ng {
                bound[i]
            } else {
                let (x, y) = checker.group_pairs[i - ng];
                bound[x as usize] + bound[y as usize]
            };
            let (lo, hi) = (ca.min(cb), ca.max(cb));
            if lo == f64::INFINITY {
                continue;
            }
            let guaranteed = if !hi.is_finite() {
                lo - b
            } else if hi - lo <= b {
                (ca + cb - b) / 2.0
            } else {
                hi - b
            };
            if !(guaranteed > margin) {
                ok = false;
            }
            proven = proven.min(guaranteed);
        }
        if ok {
            return Some(proven);
        }
        if depth >= checker.max_depth {
            return None;
        }
        let tm = 0.5 * (t0 + t1);
        let q: Vec<f64> = base.iter().zip(delta).map(|(b, d)| b + tm * d).collect();
        let row_m = reference_row(checker, world, &q);
        *evaluations += 1;
        let (w, s) = minima(checker, &row_m);
        if !(w.min(s) > margin) {
            return None;
        }
        let args = (world, base, delta);
        let left = reference_segment(
            checker,
            args.0,
            args.1,
            args.2,
            (t0, row_a),
            (tm, &row_m),
            depth + 1,
            margin,
            evaluations,
        )?;
        let right = reference_segment(
            checker,
            args.0,
            args.1,
            args.2,
            (tm, &row_m),
            (t1, row_b),
            depth + 1,
            margin,
            evaluations,
        )?;
        Some(left.min(right))
    }

    fn reference_trajectory(
        checker: &Checker,
        world: &World,
        traj: &[f64],
        margin: f64,
    ) -> TrajectoryCheck {
        let robot = &*checker.robot;
        let dof = robot.dof();
        let mut result = TrajectoryCheck {
            collision_free: true,
            within_limits: true,
            min_waypoint_clearance: f64::INFINITY,
            min_swept_clearance: f64::INFINITY,
            first_contact: None,
            evaluations: 0,
        };
        let mut prev: Option<(&[f64], Vec<f64>)> = None;
        for (w, q) in traj.chunks_exact(dof).enumerate() {
            result.within_limits &= robot.within_limits(q);
            let row = reference_row(checker, world, q);
            result.evaluations += 1;
            let (cw, cs) = minima(checker, &row);
            let c = cw.min(cs);
            result.min_waypoint_clearance = result.min_waypoint_clearance.min(c);
            if !(c > margin) && result.first_contact.is_none() {
                result.first_contact = Some(w);
                result.collision_free = false;
            }
            if let Some((p, prev_row)) = &prev {
                if result.collision_free {
                    let mut delta = vec![0.0; dof];
                    robot.joint_delta(p, q, &mut delta);
                    let mut evals = 0;
                    let swept = reference_segment(
                        checker,
                        world,
                        p,
                        &delta,
                        (0.0, prev_row),
                        (1.0, &row),
                        0,
                        margin,
                        &mut evals,
                    );
                    result.evaluations += evals;
                    match swept {
                        Some(v) => result.min_swept_clearance = result.min_swept_clearance.min(v),
                        None => {
                            result.collision_free = false;
                            result.first_contact = Some(w - 1);
                        }
                    }
                }
            }
            result.min_swept_clearance = result.min_swept_clearance.min(c);
            prev = Some((q, row));
        }
        if !result.collision_free {
            result.min_swept_clearance = result.min_swept_clearance.min(margin);
        }
        result
    }

    fn panda() -> Arc<Robot> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        Arc::new(crate::bench::robot::panda(root).expect("urdf/panda loads"))
    }

    fn random_q(robot: &Robot, rng: &mut ChaCha8Rng) -> Vec<f64> {
        robot
            .joints
            .iter()
            .map(|j| rng.random_range(j.limits.lower..=j.limits.upper))
            .collect()
    }

    fn random_rotation(rng: &mut ChaCha8Rng) -> Matrix3Like {
        Rotation3::from_euler_angles(
            rng.random_range(-3.2..3.2),
            rng.random_range(-1.6..1.6),
            rng.random_range(-3.2..3.2),
        )
        .into_inner()
    }

    type Matrix3Like = nalgebra::Matrix3<f64>;

    /// A random obstacle centred at `center`: a sphere, box or cylinder of 1 .. 30 cm.
    fn obstacle_at(center: Vector3<f64>, rng: &mut ChaCha8Rng) -> Obstacle {
        let shape = match rng.random_range(0..3) {
            0 => Shape::Sphere {
                radius: rng.random_range(0.01..0.15),
            },
            1 => Shape::Box {
                half_extents: Vector3::new(
                    rng.random_range(0.005..0.15),
                    rng.random_range(0.005..0.15),
                    rng.random_range(0.005..0.15),
                ),
            },
            _ => Shape::Cylinder {
                radius: rng.random_range(0.005..0.12),
                half_length: rng.random_range(0.01..0.15),
            },
        };
        let pose = Frame {
            rotation: random_rotation(rng),
            translation: center,
        };
        Obstacle::new(shape, pose)
    }

    /// 0 .. 12 obstacles around the arm; some on a sphere of `near` (in contact) and some just
    /// off one (near misses, a few mm beyond the sphere's surface).
    fn random_world(robot: &Robot, near: &[f64], rng: &mut ChaCha8Rng) -> World {
        let mut frames = robot.frames_scratch();
        robot.body_frames(near, &mut frames);
        let mut centers = vec![Vector3::zeros(); robot.spheres.len()];
        robot.sphere_centers(&frames, &mut centers);
        let count = rng.random_range(0..=12) * rng.random_range(0..=1);
        let mut obstacles = Vec::new();
        for _ in 0..count {
            let s = rng.random_range(0..robot.spheres.len());
            let o = match rng.random_range(0..4) {
                0 => obstacle_at(centers[s], rng),
                1 => {
                    // A sphere 0 .. 5 mm beyond sphere `s`'s surface.
                    let radius = rng.random_range(0.01..0.1);
                    let dir = Vector3::new(
                        rng.random_range(-1.0..1.0),
                        rng.random_range(-1.0..1.0),
                        rng.random_range(-1.0..1.0),
                    )
                    .normalize();
                    let gap = rng.random_range(0.0..0.005);
                    let c = centers[s] + dir * (robot.spheres[s].radius + radius + gap);
                    Obstacle::sphere([c.x, c.y, c.z], radius)
                }
                _ => {
                    let angle = rng.random_range(-std::f64::consts::PI..std::f64::consts::PI);
                    let r = rng.random_range(0.1..0.9);
                    let c = Vector3::new(
                        r * angle.cos(),
                        r * angle.sin(),
                        rng.random_range(-0.1..1.1),
                    );
                    obstacle_at(c, rng)
                }
            };
            obstacles.push(o);
        }
        World::new(obstacles)
    }

    fn assert_close(what: &str, a: f64, b: f64) {
        let same = a == b || (a - b).abs() <= 1e-12 || (a.is_nan() && b.is_nan());
        assert!(same, "{what}: optimised {a} vs reference {b}");
    }

    /// Many seeded random batches (random configurations within the limits, some beyond,
    /// random worlds with contacts and near misses, self-collisions, several margins, depth
    /// limits and `exact_below_m`): the optimised checker gives the reference's verdicts,
    /// first contacts and evaluation counts, and its clearances within 1e-12 m.
    #[test]
    fn optimised_checker_matches_the_plain_reference() {
        let robot = panda();
        let mut checker = Checker::new(robot.clone());
        let mut rng = ChaCha8Rng::seed_from_u64(20261204);
        let dof = robot.dof();
        let (mut contacts, mut free, mut unproven, mut self_hits) = (0, 0, 0, 0);
        let mut bit_equal = (0usize, 0usize);
        for case in 0..600 {
            checker.exact_below_m = [0.05, 0.05, 0.0, 0.2, f64::INFINITY][case % 5];
            checker.set_max_depth([12, 12, 12, 3][case % 4]);
            let margin = [0.0, 0.0, 0.01, -0.005][case % 4];
            // Half the starts near the ready pose (mostly free), half anywhere in the limits.
            let start = if case % 2 == 0 {
                let ready = [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785];
                ready
                    .iter()
                    .map(|v| v + rng.random_range(-0.3..0.3))
                    .collect()
            } else {
                random_q(&robot, &mut rng)
            };
            let world = random_world(&robot, &start, &mut rng);
            let h = rng.random_range(1..=6);
            let step = [0.05, 0.3, 1.0][case % 3];
            let mut traj = start.clone();
            for _ in 1..h {
                let last = traj[traj.len() - dof..].to_vec();
                for (j, v) in last.iter().enumerate() {
                    let lim = &robot.joints[j].limits;
                    let next = v + rng.random_range(-step..step);
                    // Now and then a waypoint beyond the limits.
                    let next = if rng.random_bool(0.97) {
                        next.clamp(lim.lower, lim.upper)
                    } else {
                        next
                    };
                    traj.push(next);
                }
            }
            let got = checker.check_trajectory(&world, &traj, margin);
            let want = reference_trajectory(&checker, &world, &traj, margin);
            let ctx = format!("case {case}: {got:?} vs {want:?}");
            assert_eq!(got.collision_free, want.collision_free, "{ctx}");
            assert_eq!(got.within_limits, want.within_limits, "{ctx}");
            assert_eq!(got.first_contact, want.first_contact, "{ctx}");
            assert_eq!(got.evaluations, want.evaluations, "{ctx}");
            assert_close(
                &ctx,
                got.min_waypoint_clearance,
                want.min_waypoint_clearance,
            );
            assert_close(&ctx, got.min_swept_clearance, want.min_swept_clearance);
            for (a, b) in [
                (got.min_waypoint_clearance, want.min_waypoint_clearance),
                (got.min_swept_clearance, want.min_swept_clearance),
            ] {
                bit_equal.1 += 1;
                bit_equal.0 += usize::from(a.to_bits() == b.to_bits());
            }
            for q in traj.chunks_exact(dof) {
                let c = checker.check_config(&world, q);
                let (w, s) = minima(&checker, &reference_row(&checker, &world, q));
                assert_close(&format!("case {case} world"), c.world_clearance, w);
                assert_close(&format!("case {case} self"), c.self_clearance, s);
                assert_eq!(c.within_limits, robot.within_limits(q));
                self_hits += usize::from(s <= 0.0);
            }
            match (got.collision_free, got.evaluations > h) {
                (true, _) => free += 1,
                (false, _) if got.min_waypoint_clearance > margin => unproven += 1,
                _ => contacts += 1,
            }
        }
        // The cases must cover every outcome.
        assert!(
            contacts > 50 && free > 50 && unproven > 5 && self_hits > 5,
            "contacts {contacts}, free {free}, unproven {unproven}, self hits {self_hits}"
        );
        println!(
            "contacts {contacts}, free {free}, unproven/swept {unproven}, self hits {self_hits}, \
             clearances bit-equal {} of {}",
            bit_equal.0, bit_equal.1
        );
    }

    /// The bench batch itself: the same results as the reference, trajectory by trajectory.
    #[test]
    fn bench_batch_matches_the_plain_reference() {
        use crate::bench::robot::{bench_trajectories, bench_world, H, K};
        let robot = panda();
        let mut rng = ChaCha8Rng::seed_from_u64(20261203);
        let world = bench_world(&mut rng);
        let trajs = bench_trajectories(&robot, &mut rng);
        let mut checker = Checker::new(robot.clone());
        let mut out = vec![reference_trajectory(&checker, &world, &trajs[..robot.dof()], 0.0); K];
        checker.check_batch(&world, &trajs, H, 0.0, &mut out);
        for (k, (traj, got)) in trajs.chunks_exact(H * robot.dof()).zip(&out).enumerate() {
            let want = reference_trajectory(&checker, &world, traj, 0.0);
            assert_eq!(got.collision_free, want.collision_free, "{k}");
            assert_eq!(got.first_contact, want.first_contact, "{k}");
            assert_eq!(got.evaluations, want.evaluations, "{k}");
            assert_close(
                "waypoint",
                got.min_waypoint_clearance,
                want.min_waypoint_clearance,
            );
            assert_close("swept", got.min_swept_clearance, want.min_swept_clearance);
        }
        assert_eq!(out.iter().map(|o| o.evaluations).sum::<usize>(), 7679);
    }
}
