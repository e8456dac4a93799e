//! The evaluation's ground truth, written apart from the planner's filter: it calls nothing in
//! `robot::collision` or `planning::scoring` (its own forward kinematics, capsule–circle
//! distance, swept test and limits), and its tolerances are its own.
//!
//! **Geometry.** Link `i` is the capsule around the segment between joint points `i` and `i+1`
//! (radius `link_radius_m`); an obstacle is a disc. The clearance of a configuration is
//! `min over links and obstacles of dist(centre, segment) − radius − link_radius`; the arm
//! **collides** when the clearance is `<= 0` anywhere along the motion (touching counts).
//!
//! **Continuous test.** A motion `q(s)` on an interval is split into [`PATH_SUBDIVISION`]
//! pieces per joint-space segment (10x finer than nothing: the planner checks segments by
//! conservative advancement, the oracle by bisection), and each piece is bisected until it is
//! certified free or a configuration with clearance `<= 0` is found: on a piece of half-width
//! `h` around its midpoint, no point of the arm is farther than `B` from where it is at the
//! midpoint, with `B = Σ_j lever_j · Δ_j` (`lever_j` the summed lengths of links `j..`,
//! `Δ_j` a bound on joint `j`'s excursion from the midpoint value: `|q̇_j| h + max|q̈_j| h²/2`
//! on a timed cubic, `|Δq_j| h` on a straight segment), so `clearance(mid) > B` certifies the
//! piece. Pieces shorter than [`MIN_PIECE`] whose clearance stays within `B` are reported as a
//! contact of clearance `clearance(mid) − B` (<= 1e-9 m at that size): conservative by at most
//! a nanometre, where the planner's check is conservative by a micrometre. A certified piece
//! is refined further while its lower bound `clearance(mid) − B` could undercut the smallest
//! clearance found so far by more than [`CLEARANCE_TOLERANCE_M`] (0.1 mm): the reported minimum
//! clearance of a free motion is within 0.1 mm of the true one (branch and bound).
//!
//! **Timed plans** are checked on the curve the controller executes: the cubic Hermite through
//! each pair of points (positions and velocities), sampled every [`PLAN_ORACLE_DT_SECS`]
//! (0.5 ms, 10x finer than the planner's 5 ms re-check) and continuously between samples as
//! above. Velocities, accelerations and jerks are the cubic's exact derivatives; the plan is
//! within limits when every position is inside the joint limits and every |velocity| and
//! |acceleration| within the robot's limits (both with a relative slack of [`LIMIT_SLACK`]).
//!
//! **Goal.** A path or plan reaches the goal when its last end-effector position is within
//! [`ORACLE_GOAL_TOLERANCE_M`] (1 cm) of it — half the node's 2 cm `goal_tolerance_m`, so a
//! plan that only passes the planner's own test does not pass this one by construction.

use serde::Serialize;

use crate::planning::Plan;
use crate::robot::{CircleObstacle, JointPath, RobotDescription};

/// End-effector distance to the goal that counts as reaching it, metres.
pub const ORACLE_GOAL_TOLERANCE_M: f64 = 0.01;
/// Largest distance between a raw sample's first waypoint and the start configuration for the
/// sample to be executable as it is (max over joints), radians.
pub const ORACLE_START_TOLERANCE_RAD: f64 = 0.02;
/// Sampling step of a timed plan, seconds.
pub const PLAN_ORACLE_DT_SECS: f64 = 0.0005;
/// Pieces per straight joint-space segment before bisection.
pub const PATH_SUBDIVISION: usize = 10;
/// Relative slack on velocity and acceleration limits (rounding).
pub const LIMIT_SLACK: f64 = 1e-6;
/// How far the reported minimum clearance of a collision-free motion may lie above the true
/// one, metres (the bisection refines every piece that could hold a lower value).
pub const CLEARANCE_TOLERANCE_M: f64 = 1e-4;
/// Shortest piece the bisection splits (in the piece's own parameter: fraction of a segment or
/// seconds).
const MIN_PIECE: f64 = 1e-9;
/// Bisection depth cap (a piece of 0.5 ms halved 40 times is below a picosecond).
const MAX_DEPTH: u32 = 48;

/// The robot as the oracle sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Oracle {
    base_m: [f64; 2],
    lengths_m: Vec<f64>,
    link_radius_m: f64,
    lower_rad: Vec<f64>,
    upper_rad: Vec<f64>,
    max_velocity: Vec<f64>,
    max_acceleration: Vec<f64>,
    /// `lever[j]`: summed lengths of links `j..`.
    lever_m: Vec<f64>,
}

/// The oracle's verdict on a joint-space path (straight segments between waypoints).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PathVerdict {
    pub non_finite: bool,
    pub out_of_limits: bool,
    pub collides: bool,
    /// Smallest clearance along the whole motion (a lower bound within 1e-9 m), metres;
    /// infinite without obstacles.
    pub min_clearance_m: f64,
    /// End-effector distance to the goal at the last waypoint, metres.
    pub goal_error_m: f64,
    /// Max-abs joint distance from the first waypoint to the start configuration, radians.
    pub start_error_rad: f64,
}

impl PathVerdict {
    pub fn reaches_goal(&self) -> bool {
        self.goal_error_m <= ORACLE_GOAL_TOLERANCE_M
    }

    /// Executable as it is and reaching the goal: finite, within limits, collision-free, first
    /// waypoint at the start, last at the goal.
    pub fn valid(&self) -> bool {
        !self.non_finite
            && !self.out_of_limits
            && !self.collides
            && self.reaches_goal()
            && self.start_error_rad <= ORACLE_START_TOLERANCE_RAD
    }
}

/// The oracle's verdict on a timed plan.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PlanVerdict {
    pub collides: bool,
    pub min_clearance_m: f64,
    /// Some position outside the joint limits.
    pub out_of_position_limits: bool,
    /// Largest |velocity| / limit and |acceleration| / limit over joints and time.
    pub max_velocity_ratio: f64,
    pub max_acceleration_ratio: f64,
    /// Largest |jerk| over joints and time, rad/s³ (reported; the robot has no jerk limit).
    pub max_jerk_rad_s3: f64,
    pub goal_error_m: f64,
    pub duration_secs: f64,
    /// Joint-space length of the executed curve, radians.
    pub path_length_rad: f64,
}

impl PlanVerdict {
    pub fn within_limits(&self) -> bool {
        !self.out_of_position_limits
            && self.max_velocity_ratio <= 1.0 + LIMIT_SLACK
            && self.max_acceleration_ratio <= 1.0 + LIMIT_SLACK
    }

    /// Collision-free, within limits, at the goal.
    pub fn success(&self) -> bool {
        !self.collides && self.within_limits() && self.goal_error_m <= ORACLE_GOAL_TOLERANCE_M
    }
}

/// Distance from `p` to the segment `a`–`b`.
fn segment_distance(a: [f64; 2], b: [f64; 2], p: [f64; 2]) -> f64 {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let squared = dx * dx + dy * dy;
    let t = if squared > 0.0 {
        (((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / squared).clamp(0.0, 1.0)
    } else {
        0.0
    };
    (p[0] - a[0] - t * dx).hypot(p[1] - a[1] - t * dy)
}

/// One piece of a motion: the configuration and the excursion bound per joint at its midpoint.
trait Motion {
    /// Configuration at parameter `s` and per-joint excursion bound over `[s − h, s + h]`.
    fn at(&self, s: f64, h: f64, q: &mut [f64], excursion: &mut [f64]);
}

/// A straight joint-space segment, `s ∈ [0, 1]`.
struct Straight<'a> {
    a: &'a [f64],
    b: &'a [f64],
}

impl Motion for Straight<'_> {
    fn at(&self, s: f64, h: f64, q: &mut [f64], excursion: &mut [f64]) {
        for j in 0..q.len() {
            let d = self.b[j] - self.a[j];
            q[j] = self.a[j] + s * d;
            excursion[j] = d.abs() * h;
        }
    }
}

/// One cubic Hermite segment of a plan, `s` in seconds from its start.
struct Cubic {
    /// Per joint: `q(τ) = c0 + c1 τ + c2 τ² + c3 τ³`.
    coefficients: Vec<[f64; 4]>,
    /// Per joint: max |q̈| over the segment (q̈ is linear: the larger end).
    max_acceleration: Vec<f64>,
}

impl Cubic {
    fn new(p0: &[f64], v0: &[f64], p1: &[f64], v1: &[f64], duration: f64) -> Cubic {
        let mut coefficients = Vec::with_capacity(p0.len());
        let mut max_acceleration = Vec::with_capacity(p0.len());
        for j in 0..p0.len() {
            let h = duration;
            let delta = p1[j] - p0[j];
            let c2 = (3.0 * delta / h - 2.0 * v0[j] - v1[j]) / h;
            let c3 = (-2.0 * delta / h + v0[j] + v1[j]) / (h * h);
            coefficients.push([p0[j], v0[j], c2, c3]);
            let (a0, a1) = (2.0 * c2, 2.0 * c2 + 6.0 * c3 * h);
            max_acceleration.push(a0.abs().max(a1.abs()));
        }
        Cubic {
            coefficients,
            max_acceleration,
        }
    }

    /// Position, velocity, acceleration of joint `j` at `τ`.
    fn derivatives(&self, j: usize, t: f64) -> (f64, f64, f64) {
        let [c0, c1, c2, c3] = self.coefficients[j];
        (
            c0 + t * (c1 + t * (c2 + t * c3)),
            c1 + t * (2.0 * c2 + 3.0 * c3 * t),
            2.0 * c2 + 6.0 * c3 * t,
        )
    }

    fn jerk(&self, j: usize) -> f64 {
        6.0 * self.coefficients[j][3]
    }
}

impl Motion for Cubic {
    fn at(&self, s: f64, h: f64, q: &mut [f64], excursion: &mut [f64]) {
        for j in 0..q.len() {
            let (p, v, _) = self.derivatives(j, s);
            q[j] = p;
            excursion[j] = v.abs() * h + 0.5 * self.max_acceleration[j] * h * h;
        }
    }
}

impl Oracle {
    pub fn new(robot: &RobotDescription) -> Oracle {
        let lengths_m = robot.link_lengths_m.clone();
        let lever_m = (0..lengths_m.len())
            .map(|j| lengths_m[j..].iter().sum())
            .collect();
        Oracle {
            base_m: robot.base_position_m,
            link_radius_m: robot.link_radius_m,
            lower_rad: robot.joints.iter().map(|j| j.lower_rad).collect(),
            upper_rad: robot.joints.iter().map(|j| j.upper_rad).collect(),
            max_velocity: robot.joints.iter().map(|j| j.max_velocity_rad_s).collect(),
            max_acceleration: robot
                .joints
                .iter()
                .map(|j| j.max_acceleration_rad_s2)
                .collect(),
            lengths_m,
            lever_m,
        }
    }

    pub fn dof(&self) -> usize {
        self.lengths_m.len()
    }

    /// End-effector position, metres.
    pub fn end_effector(&self, q: &[f64]) -> [f64; 2] {
        let (mut p, mut angle) = (self.base_m, 0.0);
        for (qj, l) in q.iter().zip(&self.lengths_m) {
            angle += qj;
            p = [p[0] + l * angle.cos(), p[1] + l * angle.sin()];
        }
        p
    }

    /// Smallest clearance of configuration `q` (infinite without obstacles; NaN stays NaN).
    pub fn clearance(&self, q: &[f64], obstacles: &[CircleObstacle]) -> f64 {
        let (mut a, mut angle) = (self.base_m, 0.0);
        let mut best = f64::INFINITY;
        for (qj, l) in q.iter().zip(&self.lengths_m) {
            angle += qj;
            let b = [a[0] + l * angle.cos(), a[1] + l * angle.sin()];
            for o in obstacles {
                let c = segment_distance(a, b, o.center_m) - o.radius_m - self.link_radius_m;
                if c.is_nan() {
                    return f64::NAN;
                }
                best = best.min(c);
            }
            a = b;
        }
        best
    }

    pub fn within_position_limits(&self, q: &[f64]) -> bool {
        q.iter()
            .zip(self.lower_rad.iter().zip(&self.upper_rad))
            .all(|(v, (lo, hi))| *v >= lo - 1e-9 && *v <= hi + 1e-9)
    }

    /// Smallest clearance over the motion on `[0, length]`: the smallest clearance of a sampled
    /// configuration, within [`CLEARANCE_TOLERANCE_M`] of the true minimum (which it never
    /// undercuts by more than 1e-9 m); `<= 0` exactly when the motion touches an obstacle
    /// (stops at the first contact found).
    fn min_clearance(
        &self,
        motion: &dyn Motion,
        length: f64,
        pieces: usize,
        obstacles: &[CircleObstacle],
    ) -> f64 {
        if obstacles.is_empty() {
            return f64::INFINITY;
        }
        let mut q = vec![0.0; self.dof()];
        let mut excursion = vec![0.0; self.dof()];
        let mut best = f64::INFINITY;
        // Ends first (exact values).
        for s in [0.0, length] {
            motion.at(s, 0.0, &mut q, &mut excursion);
            best = best.min(self.clearance(&q, obstacles));
        }
        let width = length / pieces.max(1) as f64;
        let mut stack: Vec<(f64, f64, u32)> = (0..pieces.max(1))
            .map(|i| ((i as f64 + 0.5) * width, 0.5 * width, 0))
            .collect();
        while let Some((mid, half, depth)) = stack.pop() {
            if !(best > 0.0) {
                break;
            }
            motion.at(mid, half, &mut q, &mut excursion);
            let c = self.clearance(&q, obstacles);
            best = best.min(c);
            let bound: f64 = excursion
                .iter()
                .zip(&self.lever_m)
                .map(|(e, l)| e * l)
                .sum();
            // Pruned when certified free and unable to hold a clearance below `best` by more
            // than the tolerance (branch and bound on the minimum).
            if !(c > 0.0) || (c > bound && c - bound >= best - CLEARANCE_TOLERANCE_M) {
                continue;
            }
            if half < MIN_PIECE || depth >= MAX_DEPTH {
                best = best.min(c - bound);
                continue;
            }
            stack.push((mid - 0.5 * half, 0.5 * half, depth + 1));
            stack.push((mid + 0.5 * half, 0.5 * half, depth + 1));
        }
        best
    }

    /// Smallest clearance along the straight joint-space motion `a → b`.
    pub fn segment_min_clearance(&self, a: &[f64], b: &[f64], obstacles: &[CircleObstacle]) -> f64 {
        self.min_clearance(&Straight { a, b }, 1.0, PATH_SUBDIVISION, obstacles)
    }

    /// The verdict on `path` (straight segments between waypoints) for a scene.
    pub fn path(
        &self,
        path: &JointPath,
        start_rad: &[f64],
        goal_m: [f64; 2],
        obstacles: &[CircleObstacle],
    ) -> PathVerdict {
        let start_error_rad = path
            .first()
            .iter()
            .zip(start_rad)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        if !path.is_finite() || path.dof() != self.dof() {
            return PathVerdict {
                non_finite: true,
                out_of_limits: false,
                collides: false,
                min_clearance_m: f64::NAN,
                goal_error_m: f64::INFINITY,
                start_error_rad: f64::INFINITY,
            };
        }
        let waypoints: Vec<&[f64]> = path.waypoints().collect();
        let mut min_clearance_m = if waypoints.len() == 1 {
            self.clearance(waypoints[0], obstacles)
        } else {
            f64::INFINITY
        };
        for pair in waypoints.windows(2) {
            min_clearance_m =
                min_clearance_m.min(self.segment_min_clearance(pair[0], pair[1], obstacles));
            if !(min_clearance_m > 0.0) {
                break;
            }
        }
        let end = self.end_effector(path.last());
        PathVerdict {
            non_finite: false,
            out_of_limits: waypoints.iter().any(|q| !self.within_position_limits(q)),
            collides: !(min_clearance_m > 0.0),
            min_clearance_m,
            goal_error_m: (end[0] - goal_m[0]).hypot(end[1] - goal_m[1]),
            start_error_rad,
        }
    }

    /// The verdict on a timed plan (the cubic Hermite curve between its points).
    pub fn plan(&self, plan: &Plan, goal_m: [f64; 2], obstacles: &[CircleObstacle]) -> PlanVerdict {
        let mut verdict = PlanVerdict {
            collides: false,
            min_clearance_m: f64::INFINITY,
            out_of_position_limits: false,
            max_velocity_ratio: 0.0,
            max_acceleration_ratio: 0.0,
            max_jerk_rad_s3: 0.0,
            goal_error_m: f64::INFINITY,
            duration_secs: plan.duration_secs(),
            path_length_rad: 0.0,
        };
        let dof = self.dof();
        let malformed = plan.points.is_empty()
            || plan
                .points
                .iter()
                .any(|p| p.positions.len() != dof || p.velocities.len() != dof);
        if malformed {
            verdict.collides = true;
            verdict.out_of_position_limits = true;
            return verdict;
        }
        let mut q = vec![0.0; dof];
        let mut previous: Option<Vec<f64>> = None;
        for pair in plan.points.windows(2) {
            let (p0, p1) = (&pair[0], &pair[1]);
            let h = p1.time_from_start_secs - p0.time_from_start_secs;
            if !(h > 0.0) {
                verdict.collides = true;
                verdict.out_of_position_limits = true;
                return verdict;
            }
            let cubic = Cubic::new(
                &p0.positions,
                &p0.velocities,
                &p1.positions,
                &p1.velocities,
                h,
            );
            let samples = (h / PLAN_ORACLE_DT_SECS).ceil().max(1.0) as usize;
            for k in 0..=samples {
                let t = h * k as f64 / samples as f64;
                for (j, qj) in q.iter_mut().enumerate() {
                    let (p, v, a) = cubic.derivatives(j, t);
                    *qj = p;
                    verdict.max_velocity_ratio = verdict
                        .max_velocity_ratio
                        .max(v.abs() / self.max_velocity[j]);
                    verdict.max_acceleration_ratio = verdict
                        .max_acceleration_ratio
                        .max(a.abs() / self.max_acceleration[j]);
                }
                if !self.within_position_limits(&q) || q.iter().any(|v| !v.is_finite()) {
                    verdict.out_of_position_limits = true;
                }
                if let Some(prev) = &previous {
                    verdict.path_length_rad += prev
                        .iter()
                        .zip(&q)
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum::<f64>()
                        .sqrt();
                }
                previous = Some(q.clone());
            }
            for j in 0..dof {
                verdict.max_jerk_rad_s3 = verdict.max_jerk_rad_s3.max(cubic.jerk(j).abs());
                verdict.max_acceleration_ratio = verdict
                    .max_acceleration_ratio
                    .max(cubic.max_acceleration[j] / self.max_acceleration[j]);
            }
            if !verdict.collides {
                let c = self.min_clearance(&cubic, h, samples, obstacles);
                verdict.min_clearance_m = verdict.min_clearance_m.min(c);
                verdict.collides = !(c > 0.0);
            }
        }
        if plan.points.len() == 1 {
            let p = &plan.points[0];
            let c = self.clearance(&p.positions, obstacles);
            verdict.min_clearance_m = c;
            verdict.collides = !(c > 0.0);
            verdict.out_of_position_limits = !self.within_position_limits(&p.positions);
        }
        if let Some(last) = plan.points.last() {
            let end = self.end_effector(&last.positions);
            verdict.goal_error_m = (end[0] - goal_m[0]).hypot(end[1] - goal_m[1]);
        }
        verdict
    }
}

#[cfg(test)]
#[path = "oracle_tests.rs"]
mod tests;
