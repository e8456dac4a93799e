//! The expert for the reference task: a complete planner in the 2-D configuration space that
//! returns the shortest path of **every** homotopy class of the free configuration space, toward
//! every goal configuration (elbow branch) it is given.
//!
//! Method:
//! 1. A grid over the joint-limit box (`grid_cells` per axis); a node is free when the caller's
//!    predicate says so (the caller inflates the obstacle by a clearance), an 8-connected edge
//!    when its end points and its midpoint are free.
//! 2. The blocked nodes are grouped into connected components (8-connected). A component that
//!    touches the border of the box cannot be walked around; every other one (an "island") gets
//!    a cut: the vertical half-line from its top to the upper border. The signed number of times
//!    a path crosses each cut (its H-signature) is a homotopy invariant, so two paths with
//!    different signatures are different ways around the islands.
//! 3. Dijkstra on the grid augmented with the signature (each count in {−1, 0, 1}, at most
//!    [`MAX_ISLANDS`] islands, the largest) gives the shortest path of every class in one search.
//! 4. Each path is shortened (seeded random shortcuts, each checked densely and kept only if the
//!    signature is unchanged), corner-smoothed, and resampled to `horizon` waypoints by arc length.
//!
//! A class is kept when its length is at most `max_length_ratio` times the shortest class toward
//! the same goal configuration: a loop around the far side of an obstacle that does not block
//! the way is a real homotopy class but no expert would take it. The ratio is per goal
//! configuration (each is its own planning problem, and its own elbow-branch mode): compared with
//! the shortest class of the whole scene, the two routes toward the far elbow branch would be
//! dropped whenever the other branch is near.
//!
//! Why configuration-space classes and not the end effector's side of the obstacle: for a serial
//! arm anchored at its base, the side on which the end effector passes an obstacle is fixed by
//! the start and goal configurations (the arm's sweep is a disc that cannot contain the
//! obstacle), so different sides come only from different goal configurations, which this
//! planner is given one by one; the configuration-space classes also separate motions with the
//! same side (e.g. the forearm swinging past the obstacle one way or the other).

use std::collections::{BinaryHeap, VecDeque};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A configuration of the 2-link arm, radians.
pub type Config2 = [f64; 2];

/// Islands (obstacle components not touching the border) that get a cut; the largest are kept.
pub const MAX_ISLANDS: usize = 4;

/// Settings of the expert planner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpertConfig {
    /// Grid nodes per joint axis over the joint-limit box.
    #[serde(default = "default_grid_cells")]
    pub grid_cells: usize,
    /// Keep a class whose length is at most this times the shortest class toward the same goal
    /// configuration.
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

/// The geometry the expert needs, supplied by the caller (robot model + scene).
pub struct ExpertProblem<'a> {
    /// Joint limits `[lower, upper]` per joint, radians.
    pub limits: [[f64; 2]; 2],
    /// True when a configuration is collision-free (with the clearance the caller wants).
    pub is_free: &'a (dyn Fn(Config2) -> bool + Sync),
}

/// One expert demonstration: the shortest path of one class toward one goal configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpertPath {
    /// Index of the goal configuration (in the order given to [`plan_all_classes`]).
    pub goal_index: usize,
    /// Signed crossings of each island's cut (the homotopy class); islands in the order of
    /// the scene's [`Islands`].
    pub signature: Vec<i8>,
    /// The path resampled to the requested horizon; first = start, last = goal configuration.
    pub waypoints: Vec<Config2>,
    /// Joint-space length of the path, radians.
    pub length_rad: f64,
}

/// Plans the shortest path of every homotopy class from `start` to each of `goals`, keeps the
/// classes within `max_length_ratio` of the best toward the same goal, and returns them smoothed and resampled to
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
    let islands = Islands::find(&grid);
    let search = grid.search(problem, &islands, start, config.check_step_rad);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut found = Vec::new();
    for (goal_index, &goal) in goals.iter().enumerate() {
        if !(problem.is_free)(goal) {
            continue;
        }
        for (signature, raw) in search.paths_to(&grid, problem, &islands, goal, config) {
            let path = refine(problem, &islands, raw, &signature, config, &mut rng);
            found.push(ExpertPath {
                goal_index,
                length_rad: path_length(&path),
                waypoints: resample(&path, horizon),
                signature,
            });
        }
    }
    let mut best = vec![f64::INFINITY; goals.len()];
    for p in &found {
        best[p.goal_index] = best[p.goal_index].min(p.length_rad);
    }
    found.retain(|p| p.length_rad <= config.max_length_ratio * best[p.goal_index] + 1e-9);
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

/// Shortcuts, then corner-cuts, keeping the path free and in its class.
fn refine(
    problem: &ExpertProblem<'_>,
    islands: &Islands,
    mut path: Vec<Config2>,
    signature: &[i8],
    config: &ExpertConfig,
    rng: &mut ChaCha8Rng,
) -> Vec<Config2> {
    let step = config.check_step_rad;
    let same_class = |p: &[Config2]| islands.signature(p) == signature;
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

    /// Free grid nodes near `q` (its cell's corners and their neighbours) reachable from `q` by
    /// a free straight segment.
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
        nodes
    }

    /// Dijkstra from `start` over (node, signature).
    fn search(
        &self,
        problem: &ExpertProblem<'_>,
        islands: &Islands,
        start: Config2,
        step: f64,
    ) -> Search {
        let nodes = self.n * self.n;
        let codes = islands.codes();
        let mut cost = vec![f64::INFINITY; nodes * codes];
        let mut parent = vec![usize::MAX; nodes * codes];
        let mut heap = BinaryHeap::new();
        let zero = islands.zero_code();
        for node in self.attach(problem, start, step) {
            let there = self.config(node);
            let Some(code) = islands.step_code(zero, start, there) else {
                continue;
            };
            let state = code * nodes + node;
            let c = dist(start, there);
            if c < cost[state] {
                cost[state] = c;
                heap.push(Entry { cost: c, state });
            }
        }
        while let Some(Entry { cost: c, state }) = heap.pop() {
            if c > cost[state] {
                continue;
            }
            let (code, node) = (state / nodes, state % nodes);
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
                let Some(next_code) = islands.step_code(code, here, there) else {
                    continue;
                };
                let next_state = next_code * nodes + next;
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
        Search {
            start,
            cost,
            parent,
        }
    }
}

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

/// The islands' cuts: vertical half-lines `q0 = x, q1 > y` from each island's top to the upper
/// border, in configuration coordinates.
struct Islands {
    cuts: Vec<Config2>,
}

impl Islands {
    /// Connected blocked components (8-connected) that do not touch the border; the
    /// [`MAX_ISLANDS`] largest get a cut through their topmost node's column (half a cell to its
    /// right, so no grid node lies on it).
    fn find(grid: &Grid) -> Self {
        let n = grid.n;
        let mut seen = vec![false; n * n];
        let mut islands: Vec<(usize, Config2)> = Vec::new();
        for startid in 0..n * n {
            if grid.free[startid] || seen[startid] {
                continue;
            }
            seen[startid] = true;
            let mut queue = VecDeque::from([startid]);
            let (mut size, mut border) = (0usize, false);
            let mut top = startid;
            while let Some(id) = queue.pop_front() {
                size += 1;
                let (i, j) = (id / n, id % n);
                border |= i == 0 || j == 0 || i == n - 1 || j == n - 1;
                if j > top % n || (j == top % n && id < top) {
                    top = id;
                }
                for (di, dj) in NEIGHBOURS {
                    let (ni, nj) = (i as i64 + di, j as i64 + dj);
                    if ni < 0 || nj < 0 || ni >= n as i64 || nj >= n as i64 {
                        continue;
                    }
                    let next = ni as usize * n + nj as usize;
                    if !grid.free[next] && !seen[next] {
                        seen[next] = true;
                        queue.push_back(next);
                    }
                }
            }
            if !border {
                let q = grid.config(top);
                islands.push((size, [q[0] + 0.5 * grid.cell[0], q[1]]));
            }
        }
        islands.sort_by(|a, b| b.0.cmp(&a.0).then(a.1[0].total_cmp(&b.1[0])));
        islands.truncate(MAX_ISLANDS);
        Islands {
            cuts: islands.into_iter().map(|(_, cut)| cut).collect(),
        }
    }

    /// Number of signature codes (3^islands).
    fn codes(&self) -> usize {
        3usize.pow(self.cuts.len() as u32)
    }

    /// The code of the all-zero signature.
    fn zero_code(&self) -> usize {
        (self.codes() - 1) / 2
    }

    /// Signed crossing of cut `cut` by the segment a→b: +1 left to right, −1 right to left.
    fn crossing(cut: Config2, a: Config2, b: Config2) -> i8 {
        let (x, y) = (cut[0], cut[1]);
        if (a[0] < x) == (b[0] < x) {
            return 0;
        }
        let t = (x - a[0]) / (b[0] - a[0]);
        if a[1] + t * (b[1] - a[1]) <= y {
            return 0;
        }
        if a[0] < x {
            1
        } else {
            -1
        }
    }

    /// The code after the segment a→b from `code`, or `None` when a count leaves {−1, 0, 1}.
    fn step_code(&self, code: usize, a: Config2, b: Config2) -> Option<usize> {
        let mut out = 0usize;
        let mut rest = code;
        let mut place = 1usize;
        for &cut in &self.cuts {
            let count = (rest % 3) as i8 - 1 + Self::crossing(cut, a, b);
            if !(-1..=1).contains(&count) {
                return None;
            }
            out += (count + 1) as usize * place;
            rest /= 3;
            place *= 3;
        }
        Some(out)
    }

    /// The signature of a code.
    fn decode(&self, mut code: usize) -> Vec<i8> {
        self.cuts
            .iter()
            .map(|_| {
                let v = (code % 3) as i8 - 1;
                code /= 3;
                v
            })
            .collect()
    }

    /// The signature of a polyline (counts may leave {−1, 0, 1} here).
    fn signature(&self, path: &[Config2]) -> Vec<i8> {
        self.cuts
            .iter()
            .map(|&cut| {
                path.windows(2)
                    .map(|w| Self::crossing(cut, w[0], w[1]))
                    .sum()
            })
            .collect()
    }
}

#[path = "expert_search.rs"]
mod search;
use search::{Entry, Search};

#[cfg(test)]
#[path = "expert_tests.rs"]
mod tests;
