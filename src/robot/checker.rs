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
#[path = "checker_tests.rs"]
mod tests;
