//! The expert for the reference task: a complete planner in the 2-D configuration space that
//! returns the shortest path of **every** homotopy class the end effector can take around the
//! obstacle, toward every goal configuration (elbow branch) it is given.
//!
//! Method:
//! 1. A grid over the joint-limit box (`grid_cells` per axis); a node is free when the caller's
//!    predicate says so (the caller inflates the obstacle by a clearance), an 8-connected edge
//!    when its end points and its midpoint are free.
//! 2. Dijkstra on the grid augmented with a winding counter: the end effector's angle around the
//!    obstacle centre is measured from a cut ray, and each crossing of the ray counts ±1. The
//!    total winding angle of a path is `(β_goal − β_start) + 2π·n`; its sign says whether the end
//!    effector went counter-clockwise (`+`) or clockwise (`−`) around the obstacle. Keeping
//!    `n ∈ {−1, 0, 1}` gives the shortest path of both classes with |winding| < 2π in one search.
//! 3. Each path is shortened (seeded random shortcuts, each checked densely and kept only if the
//!    winding class is unchanged), corner-smoothed, and resampled to `horizon` waypoints by arc
//!    length.
//!
//! A class is kept when its length is at most `max_length_ratio` times the shortest class of the
//! scene: a loop around the far side of an obstacle that does not block the way is a real
//! homotopy class but no expert would take it.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::f64::consts::{PI, TAU};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A configuration of the 2-link arm, radians.
pub type Config2 = [f64; 2];

/// Settings of the expert planner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpertConfig {
    /// Grid nodes per joint axis over the joint-limit box.
    #[serde(default = "default_grid_cells")]
    pub grid_cells: usize,
    /// Keep a class whose length is at most this times the shortest class of the scene.
    #[serde(default = "default_max_length_ratio")]
    pub max_length_ratio: f64,
    /// Random shortcut attempts per path.
    #[serde(default = "default_shortcut_iterations")]
    pub shortcut_iterations: usize,
    /// Corner-cutting (Chaikin) passes after shortcutting, each checked for collisions.
    #[serde(default = "default_smoothing_passes")]
    pub smoothing_passes: usize,
    /// Largest joint-space step between two collision checks along a segment, radians.
    #[serde(default = "default_check_step_rad")]
    pub check_step_rad: f64,
}

fn default_grid_cells() -> usize {
    121
}
fn default_max_length_ratio() -> f64 {
    1.5
}
fn default_shortcut_iterations() -> usize {
    60
}
fn default_smoothing_passes() -> usize {
    2
}
fn default_check_step_rad() -> f64 {
    0.01
}

impl Default for ExpertConfig {
    fn default() -> Self {
        ExpertConfig {
            grid_cells: default_grid_cells(),
            max_length_ratio: default_max_length_ratio(),
            shortcut_iterations: default_shortcut_iterations(),
            smoothing_passes: default_smoothing_passes(),
            check_step_rad: default_check_step_rad(),
        }
    }
}

impl ExpertConfig {
    /// Checks every value (NaN fails).
    pub fn validate(&self) -> Result<()> {
        if !(9..=1001).contains(&self.grid_cells) {
            return Err(Error::config("expert.grid_cells", "must be in 9..=1001"));
        }
        if !(self.max_length_ratio >= 1.0 && self.max_length_ratio.is_finite()) {
            return Err(Error::config(
                "expert.max_length_ratio",
                "must be finite and >= 1",
            ));
        }
        if !(self.check_step_rad > 0.0 && self.check_step_rad < 0.5) {
            return Err(Error::config(
                "expert.check_step_rad",
                "must be in (0, 0.5)",
            ));
        }
        Ok(())
    }
}

/// Direction the end effector travels around the obstacle centre.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Winding {
    /// Counter-clockwise: total winding angle > 0.
    Ccw,
    /// Clockwise: total winding angle < 0.
    Cw,
}

/// The geometry the expert needs, supplied by the caller (robot model + scene).
pub struct ExpertProblem<'a> {
    /// Joint limits `[lower, upper]` per joint, radians.
    pub limits: [[f64; 2]; 2],
    /// True when a configuration is collision-free (with the clearance the caller wants).
    pub is_free: &'a (dyn Fn(Config2) -> bool + Sync),
    /// End-effector position of a configuration, metres.
    pub end_effector: &'a (dyn Fn(Config2) -> [f64; 2] + Sync),
    /// The obstacle centre the winding is measured around, metres.
    pub obstacle_centre: [f64; 2],
}

/// One expert demonstration: the shortest path of one class toward one goal configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpertPath {
    /// Index of the goal configuration (in the order given to [`plan_all_classes`]).
    pub goal_index: usize,
    /// Winding class of the end effector around the obstacle centre.
    pub winding: Winding,
    /// Total winding angle of the end effector around the obstacle centre, radians.
    pub winding_rad: f64,
    /// The path resampled to the requested horizon; first = start, last = goal configuration.
    pub waypoints: Vec<Config2>,
    /// Joint-space length of the path, radians.
    pub length_rad: f64,
}

/// Total winding angle of the end-effector path of `path` around `centre`, radians.
pub fn winding_angle(path: &[Config2], ee: &dyn Fn(Config2) -> [f64; 2], centre: [f64; 2]) -> f64 {
    let angle = |q: Config2| {
        let p = ee(q);
        (p[1] - centre[1]).atan2(p[0] - centre[0])
    };
    path.windows(2)
        .map(|w| wrap_pi(angle(w[1]) - angle(w[0])))
        .sum()
}

fn wrap_pi(a: f64) -> f64 {
    let mut a = (a + PI).rem_euclid(TAU) - PI;
    if a <= -PI {
        a += TAU;
    }
    a
}

/// Plans the shortest path of every winding class from `start` to each of `goals`, keeps the
/// classes within `max_length_ratio` of the best, and returns them smoothed and resampled to
/// `horizon` waypoints, shortest first. `seed` drives the shortcutting.
pub fn plan_all_classes(
    problem: &ExpertProblem<'_>,
    start: Config2,
    goals: &[Config2],
    horizon: usize,
    config: &ExpertConfig,
    seed: u64,
) -> Result<Vec<ExpertPath>> {
    config.validate()?;
    if horizon < 2 {
        return Err(Error::config("horizon", "must be at least 2"));
    }
    if !(problem.is_free)(start) {
        return Err(Error::Invalid(
            "expert: the start configuration is in collision".into(),
        ));
    }
    let grid = Grid::new(problem, config.grid_cells);
    let search = grid.search(problem, start);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut found = Vec::new();
    for (goal_index, &goal) in goals.iter().enumerate() {
        if !(problem.is_free)(goal) {
            continue;
        }
        for winding in [Winding::Ccw, Winding::Cw] {
            let Some(raw) = search.path_to(&grid, problem, start, goal, winding, config) else {
                continue;
            };
            let path = refine(problem, raw, winding, config, &mut rng);
            let length_rad = path_length(&path);
            let waypoints = resample(&path, horizon);
            let winding_rad =
                winding_angle(&waypoints, problem.end_effector, problem.obstacle_centre);
            found.push(ExpertPath {
                goal_index,
                winding,
                winding_rad,
                waypoints,
                length_rad,
            });
        }
    }
    let best = found
        .iter()
        .map(|p| p.length_rad)
        .fold(f64::INFINITY, f64::min);
    found.retain(|p| p.length_rad <= config.max_length_ratio * best + 1e-9);
    found.sort_by(|a, b| a.length_rad.total_cmp(&b.length_rad));
    Ok(found)
}

/// Joint-space length of a polyline, radians.
pub fn path_length(path: &[Config2]) -> f64 {
    path.windows(2).map(|w| dist(w[0], w[1])).sum()
}

fn dist(a: Config2, b: Config2) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

fn lerp(a: Config2, b: Config2, t: f64) -> Config2 {
    [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t]
}

/// Resamples a polyline to `n` points equally spaced by arc length (first and last kept).
pub fn resample(path: &[Config2], n: usize) -> Vec<Config2> {
    let total = path_length(path);
    let Some(&first) = path.first() else {
        return Vec::new();
    };
    if total <= 0.0 || path.len() < 2 {
        return vec![first; n];
    }
    let mut out = Vec::with_capacity(n);
    let mut segment = 0;
    let mut walked = 0.0;
    for i in 0..n {
        let target = total * i as f64 / (n - 1) as f64;
        while segment + 2 < path.len() && walked + dist(path[segment], path[segment + 1]) < target {
            walked += dist(path[segment], path[segment + 1]);
            segment += 1;
        }
        let length = dist(path[segment], path[segment + 1]);
        let t = if length > 0.0 {
            ((target - walked) / length).clamp(0.0, 1.0)
        } else {
            0.0
        };
        out.push(lerp(path[segment], path[segment + 1], t));
    }
    if let (Some(last_out), Some(&last)) = (out.last_mut(), path.last()) {
        *last_out = last;
    }
    out
}

/// True when the straight segment a→b is free at every `step` (and both ends).
fn segment_free(problem: &ExpertProblem<'_>, a: Config2, b: Config2, step: f64) -> bool {
    let n = (dist(a, b) / step).ceil().max(1.0) as usize;
    (0..=n).all(|i| (problem.is_free)(lerp(a, b, i as f64 / n as f64)))
}

fn winding_class(angle: f64) -> Winding {
    if angle >= 0.0 {
        Winding::Ccw
    } else {
        Winding::Cw
    }
}

/// Shortcuts, then corner-cuts, keeping the path free and in its winding class.
fn refine(
    problem: &ExpertProblem<'_>,
    mut path: Vec<Config2>,
    winding: Winding,
    config: &ExpertConfig,
    rng: &mut ChaCha8Rng,
) -> Vec<Config2> {
    let step = config.check_step_rad;
    let same_class = |p: &[Config2]| {
        let angle = winding_angle(p, problem.end_effector, problem.obstacle_centre);
        winding_class(angle) == winding && angle.abs() < TAU
    };
    for _ in 0..config.shortcut_iterations {
        if path.len() < 3 {
            break;
        }
        let i = rng.random_range(0..path.len() - 2);
        let j = rng.random_range(i + 2..path.len());
        if !segment_free(problem, path[i], path[j], step) {
            continue;
        }
        let mut candidate = path[..=i].to_vec();
        candidate.extend_from_slice(&path[j..]);
        if same_class(&candidate) {
            path = candidate;
        }
    }
    for _ in 0..config.smoothing_passes {
        if path.len() < 3 {
            break;
        }
        let mut smooth = vec![path[0]];
        for w in path.windows(2) {
            smooth.push(lerp(w[0], w[1], 0.25));
            smooth.push(lerp(w[0], w[1], 0.75));
        }
        if let Some(&last) = path.last() {
            smooth.push(last);
        }
        let free = smooth
            .windows(2)
            .all(|w| segment_free(problem, w[0], w[1], step));
        if free && same_class(&smooth) {
            path = smooth;
        } else {
            break;
        }
    }
    path
}

/// The configuration-space grid and its free nodes.
struct Grid {
    n: usize,
    lower: Config2,
    cell: Config2,
    free: Vec<bool>,
}

impl Grid {
    fn new(problem: &ExpertProblem<'_>, n: usize) -> Self {
        let lower = [problem.limits[0][0], problem.limits[1][0]];
        let cell = [
            (problem.limits[0][1] - lower[0]) / (n - 1) as f64,
            (problem.limits[1][1] - lower[1]) / (n - 1) as f64,
        ];
        let mut grid = Grid {
            n,
            lower,
            cell,
            free: Vec::new(),
        };
        grid.free = (0..n * n)
            .map(|id| (problem.is_free)(grid.config(id)))
            .collect();
        grid
    }

    fn config(&self, id: usize) -> Config2 {
        let (i, j) = (id / self.n, id % self.n);
        [
            self.lower[0] + i as f64 * self.cell[0],
            self.lower[1] + j as f64 * self.cell[1],
        ]
    }

    /// Free grid nodes near `q` (its cell's corners and their neighbours), nearest first,
    /// reachable from `q` by a free straight segment.
    fn attach(&self, problem: &ExpertProblem<'_>, q: Config2, step: f64) -> Vec<usize> {
        let fi = ((q[0] - self.lower[0]) / self.cell[0]).floor() as i64;
        let fj = ((q[1] - self.lower[1]) / self.cell[1]).floor() as i64;
        let mut nodes = Vec::new();
        for di in -1..=2 {
            for dj in -1..=2 {
                let (i, j) = (fi + di, fj + dj);
                if i < 0 || j < 0 || i >= self.n as i64 || j >= self.n as i64 {
                    continue;
                }
                let id = i as usize * self.n + j as usize;
                if self.free[id] && segment_free(problem, q, self.config(id), step) {
                    nodes.push(id);
                }
            }
        }
        nodes.sort_by(|a, b| dist(q, self.config(*a)).total_cmp(&dist(q, self.config(*b))));
        nodes
    }

    /// Dijkstra from `start` over (node, winding counter).
    fn search(&self, problem: &ExpertProblem<'_>, start: Config2) -> Search {
        let cut = Cut::new(problem, start);
        let states = self.n * self.n * WINDINGS;
        let mut cost = vec![f64::INFINITY; states];
        let mut parent = vec![usize::MAX; states];
        let mut heap = BinaryHeap::new();
        let step = self.cell[0].min(self.cell[1]) * 0.5;
        for node in self.attach(problem, start, step.min(0.01)) {
            let counter = cut.crossing(problem, start, self.config(node));
            let Some(state) = state_id(node, counter, self.n) else {
                continue;
            };
            let c = dist(start, self.config(node));
            if c < cost[state] {
                cost[state] = c;
                heap.push(Entry { cost: c, state });
            }
        }
        let beta: Vec<f64> = (0..self.n * self.n)
            .map(|id| cut.beta(problem, self.config(id)))
            .collect();
        while let Some(Entry { cost: c, state }) = heap.pop() {
            if c > cost[state] {
                continue;
            }
            let node = state % (self.n * self.n);
            let counter = (state / (self.n * self.n)) as i64 - 1;
            let (i, j) = ((node / self.n) as i64, (node % self.n) as i64);
            let here = self.config(node);
            for (di, dj) in NEIGHBOURS {
                let (ni, nj) = (i + di, j + dj);
                if ni < 0 || nj < 0 || ni >= self.n as i64 || nj >= self.n as i64 {
                    continue;
                }
                let next = ni as usize * self.n + nj as usize;
                if !self.free[next] {
                    continue;
                }
                let there = self.config(next);
                if !(problem.is_free)(lerp(here, there, 0.5)) {
                    continue;
                }
                let Some(next_state) =
                    state_id(next, counter + Cut::step(beta[node], beta[next]), self.n)
                else {
                    continue;
                };
                let nc = c + dist(here, there);
                if nc < cost[next_state] {
                    cost[next_state] = nc;
                    parent[next_state] = state;
                    heap.push(Entry {
                        cost: nc,
                        state: next_state,
                    });
                }
            }
        }
        Search { cut, cost, parent }
    }
}

/// Winding counter values −1, 0, 1.
const WINDINGS: usize = 3;

const NEIGHBOURS: [(i64, i64); 8] = [
    (-1, -1),
    (-1, 0),
    (-1, 1),
    (0, -1),
    (0, 1),
    (1, -1),
    (1, 0),
    (1, 1),
];

fn state_id(node: usize, counter: i64, n: usize) -> Option<usize> {
    (-1..=1)
        .contains(&counter)
        .then(|| (counter + 1) as usize * n * n + node)
}

/// The cut ray from the obstacle centre, pointing away from the start's end effector, and the
/// angle `β ∈ [0, 2π)` of an end-effector position measured from it.
struct Cut {
    angle: f64,
}

impl Cut {
    fn new(problem: &ExpertProblem<'_>, start: Config2) -> Self {
        let p = (problem.end_effector)(start);
        let c = problem.obstacle_centre;
        Cut {
            angle: (c[1] - p[1]).atan2(c[0] - p[0]),
        }
    }

    fn beta(&self, problem: &ExpertProblem<'_>, q: Config2) -> f64 {
        let p = (problem.end_effector)(q);
        let c = problem.obstacle_centre;
        ((p[1] - c[1]).atan2(p[0] - c[0]) - self.angle).rem_euclid(TAU)
    }

    /// Counter change for a step from angle `a` to angle `b` (both from [`Cut::beta`]).
    fn step(a: f64, b: f64) -> i64 {
        let d = b - a;
        if d < -PI {
            1
        } else if d > PI {
            -1
        } else {
            0
        }
    }

    fn crossing(&self, problem: &ExpertProblem<'_>, a: Config2, b: Config2) -> i64 {
        Cut::step(self.beta(problem, a), self.beta(problem, b))
    }
}

struct Search {
    cut: Cut,
    cost: Vec<f64>,
    parent: Vec<usize>,
}

impl Search {
    /// The raw grid path of `winding` class from the search start to `goal`, if one exists.
    fn path_to(
        &self,
        grid: &Grid,
        problem: &ExpertProblem<'_>,
        start: Config2,
        goal: Config2,
        winding: Winding,
        config: &ExpertConfig,
    ) -> Option<Vec<Config2>> {
        let beta_start = self.cut.beta(problem, start);
        let beta_goal = self.cut.beta(problem, goal);
        let mut best: Option<(f64, usize)> = None;
        for node in grid.attach(problem, goal, config.check_step_rad) {
            for counter in -1..=1i64 {
                let total = counter + self.cut.crossing(problem, grid.config(node), goal);
                let angle = beta_goal - beta_start + TAU * total as f64;
                if winding_class(angle) != winding || angle.abs() >= TAU {
                    continue;
                }
                let Some(state) = state_id(node, counter, grid.n) else {
                    continue;
                };
                let c = self.cost[state] + dist(grid.config(node), goal);
                if c.is_finite() && best.is_none_or(|(b, _)| c < b) {
                    best = Some((c, state));
                }
            }
        }
        let (_, mut state) = best?;
        let mut nodes = Vec::new();
        while state != usize::MAX {
            nodes.push(grid.config(state % (grid.n * grid.n)));
            state = self.parent[state];
        }
        nodes.reverse();
        let mut path = Vec::with_capacity(nodes.len() + 2);
        path.push(start);
        path.extend(nodes);
        path.push(goal);
        Some(path)
    }
}

#[derive(PartialEq)]
struct Entry {
    cost: f64,
    state: usize,
}

impl Eq for Entry {}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .cost
            .total_cmp(&self.cost)
            .then_with(|| self.state.cmp(&other.state))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A point robot in the plane (`end effector = configuration`) with a disc obstacle: the
    /// two classes are "above" and "below" the disc.
    fn point_problem<'a>(
        free: &'a (dyn Fn(Config2) -> bool + Sync),
        ee: &'a (dyn Fn(Config2) -> [f64; 2] + Sync),
    ) -> ExpertProblem<'a> {
        ExpertProblem {
            limits: [[-2.0, 2.0], [-2.0, 2.0]],
            is_free: free,
            end_effector: ee,
            obstacle_centre: [0.0, 0.0],
        }
    }

    #[test]
    fn finds_both_sides_of_a_blocking_disc() {
        let free = |q: Config2| q[0].hypot(q[1]) > 0.5;
        let ee = |q: Config2| q;
        let problem = point_problem(&free, &ee);
        let paths = plan_all_classes(
            &problem,
            [-1.5, 0.0],
            &[[1.5, 0.0]],
            32,
            &ExpertConfig::default(),
            7,
        )
        .unwrap();
        assert_eq!(paths.len(), 2, "{paths:?}");
        let classes: Vec<Winding> = paths.iter().map(|p| p.winding).collect();
        assert!(classes.contains(&Winding::Ccw) && classes.contains(&Winding::Cw));
        for path in &paths {
            assert_eq!(path.waypoints.len(), 32);
            assert_eq!(path.waypoints[0], [-1.5, 0.0]);
            assert_eq!(path.waypoints[31], [1.5, 0.0]);
            assert!(path.waypoints.iter().all(|&q| free(q)));
            // Around a disc of radius 0.5 from (−1.5,0) to (1.5,0): the optimum is ~3.28.
            assert!(path.length_rad < 3.6, "{}", path.length_rad);
            // Going below the disc (y < 0) from left to right is counter-clockwise.
            let below = path.waypoints.iter().any(|q| q[1] < -0.4);
            assert_eq!(below, path.winding == Winding::Ccw);
            assert!(
                (path.winding_rad.abs() - PI).abs() < 0.2,
                "{}",
                path.winding_rad
            );
        }
    }

    #[test]
    fn drops_the_long_way_round_a_disc_that_does_not_block() {
        let free = |q: Config2| q[0].hypot(q[1] - 1.6) > 0.2;
        let ee = |q: Config2| q;
        let mut problem = point_problem(&free, &ee);
        problem.obstacle_centre = [0.0, 1.6];
        let paths = plan_all_classes(
            &problem,
            [-1.5, 0.0],
            &[[1.5, 0.0]],
            16,
            &ExpertConfig::default(),
            7,
        )
        .unwrap();
        assert_eq!(paths.len(), 1, "{paths:?}");
        assert!((paths[0].length_rad - 3.0).abs() < 0.05);
    }

    #[test]
    fn resample_keeps_ends_and_spacing() {
        let path = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]];
        let out = resample(&path, 5);
        assert_eq!(out.len(), 5);
        assert_eq!(out[0], [0.0, 0.0]);
        assert_eq!(out[4], [1.0, 1.0]);
        assert!((out[2][0] - 1.0).abs() < 1e-12 && out[2][1].abs() < 1e-12);
    }

    #[test]
    fn start_in_collision_is_an_error() {
        let free = |q: Config2| q[0].hypot(q[1]) > 0.5;
        let ee = |q: Config2| q;
        let problem = point_problem(&free, &ee);
        let err = plan_all_classes(
            &problem,
            [0.0, 0.0],
            &[[1.5, 0.0]],
            8,
            &ExpertConfig::default(),
            1,
        )
        .unwrap_err();
        assert!(err.to_string().contains("start"), "{err}");
    }
}
