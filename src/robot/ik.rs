//! Numeric inverse kinematics of the tip: damped least squares with Levenberg–Marquardt damping
//! adaptation, projected onto the joint limits, from several seeds; returns the distinct
//! solutions found (the generalisation of "both elbow branches").
//!
//! Each iteration solves `(J Jᵀ + λ² I) y = e`, `Δq = Jᵀ y` (3 x 3 for a position target,
//! 6 x 6 with an orientation), accepts the step when the error drops (λ halves) and otherwise
//! retries with λ x 4. Seeds: the caller's first (e.g. the current joint positions), then
//! uniform draws within the limits from a seeded generator (deterministic).

use nalgebra::{Matrix3, Matrix6, Rotation3, Vector3, Vector6};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::frame::Frame;
use super::model::{JointKind, Robot};

/// IK settings.
#[derive(Debug, Clone, PartialEq)]
pub struct IkOptions {
    /// Seeds tried (the given one first, then random ones).
    pub seeds: usize,
    /// Iterations per seed.
    pub max_iterations: usize,
    /// Position tolerance, m.
    pub tolerance_m: f64,
    /// Orientation tolerance, rad (when a target orientation is given).
    pub tolerance_rad: f64,
    /// Two solutions are distinct when some joint differs by more than this (rad or m).
    pub distinct_threshold: f64,
    /// Stop after this many distinct solutions.
    pub max_solutions: usize,
    /// Seed of the random seeds.
    pub rng_seed: u64,
}

impl Default for IkOptions {
    fn default() -> Self {
        IkOptions {
            seeds: 8,
            max_iterations: 100,
            tolerance_m: 1e-6,
            tolerance_rad: 1e-5,
            distinct_threshold: 0.1,
            max_solutions: 8,
            rng_seed: 0,
        }
    }
}

/// A target for the tip.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IkTarget {
    /// Position in the base frame, m.
    pub position: Vector3<f64>,
    /// Orientation of the tip frame in the base frame, if constrained.
    pub orientation: Option<Rotation3<f64>>,
}

/// One solution.
#[derive(Debug, Clone, PartialEq)]
pub struct IkBranch {
    /// Joint positions (within limits).
    pub q: Vec<f64>,
    /// Remaining position error, m.
    pub position_error_m: f64,
    /// Remaining orientation error, rad (0 without an orientation target).
    pub orientation_error_rad: f64,
}

/// The outcome of an IK call.
#[derive(Debug, Clone, PartialEq)]
pub struct IkResult {
    /// Distinct solutions, in the order found (the first seed's first).
    pub solutions: Vec<IkBranch>,
    /// Smallest position error over every seed (m): how far the target is from reachable
    /// when `solutions` is empty.
    pub best_position_error_m: f64,
    /// Iterations over every seed.
    pub iterations: usize,
}

impl IkResult {
    /// Whether any seed reached the target.
    pub fn reachable(&self) -> bool {
        !self.solutions.is_empty()
    }
}

/// An IK solver for one robot with its buffers.
#[derive(Debug, Clone)]
pub struct IkSolver {
    frames: Vec<Frame>,
    jac: Vec<[f64; 6]>,
    q: Vec<f64>,
    trial: Vec<f64>,
    rng: ChaCha8Rng,
}

impl IkSolver {
    /// Buffers for `robot`.
    pub fn new(robot: &Robot) -> Self {
        IkSolver {
            frames: robot.frames_scratch(),
            jac: vec![[0.0; 6]; robot.dof()],
            q: vec![0.0; robot.dof()],
            trial: vec![0.0; robot.dof()],
            rng: ChaCha8Rng::seed_from_u64(0),
        }
    }

    fn error(&mut self, robot: &Robot, q: &[f64], target: &IkTarget) -> (Vector6<f64>, f64, f64) {
        robot.body_frames(q, &mut self.frames);
        let tip = robot.tip_frame(&self.frames);
        let dp = target.position - tip.translation;
        let dw = match target.orientation {
            Some(r) => {
                let current = Rotation3::from_matrix_unchecked(tip.rotation);
                (r * current.inverse()).scaled_axis()
            }
            None => Vector3::zeros(),
        };
        (
            Vector6::new(dp.x, dp.y, dp.z, dw.x, dw.y, dw.z),
            dp.norm(),
            dw.norm(),
        )
    }

    fn clamp(robot: &Robot, q: &mut [f64]) {
        for (v, joint) in q.iter_mut().zip(&robot.joints) {
            *v = match joint.kind {
                JointKind::Continuous => super::fk::wrap_pi(*v),
                _ => v.clamp(joint.limits.lower, joint.limits.upper),
            };
        }
    }

    /// One seed's descent from `self.q`; returns (position error, orientation error, iterations).
    fn descend(
        &mut self,
        robot: &Robot,
        target: &IkTarget,
        options: &IkOptions,
    ) -> (f64, f64, usize) {
        let dof = robot.dof();
        let q = std::mem::take(&mut self.q);
        let (mut e, mut ep, mut ew) = self.error(robot, &q, target);
        self.q = q;
        let mut lambda = 1e-2;
        let with_rot = target.orientation.is_some();
        let mut it = 0;
        while it < options.max_iterations {
            if ep <= options.tolerance_m && (!with_rot || ew <= options.tolerance_rad) {
                break;
            }
            it += 1;
            // Jacobian at the current q (frames are of the last accepted q).
            let q = std::mem::take(&mut self.q);
            robot.body_frames(&q, &mut self.frames);
            self.q = q;
            robot.tip_jacobian(&self.frames, &mut self.jac);
            let mut improved = false;
            for _ in 0..8 {
                if with_rot {
                    let mut a = Matrix6::<f64>::identity() * (lambda * lambda);
                    for col in &self.jac {
                        let c = Vector6::from_column_slice(col);
                        a += c * c.transpose();
                    }
                    let Some(y) = a.cholesky().map(|ch| ch.solve(&e)) else {
                        lambda *= 4.0;
                        continue;
                    };
                    for j in 0..dof {
                        let c = Vector6::from_column_slice(&self.jac[j]);
                        self.trial[j] = self.q[j] + c.dot(&y);
                    }
                } else {
                    let mut a = Matrix3::<f64>::identity() * (lambda * lambda);
                    for col in &self.jac {
                        let c = Vector3::new(col[0], col[1], col[2]);
                        a += c * c.transpose();
                    }
                    let ev = Vector3::new(e[0], e[1], e[2]);
                    let Some(y) = a.cholesky().map(|ch| ch.solve(&ev)) else {
                        lambda *= 4.0;
                        continue;
                    };
                    for j in 0..dof {
                        let c = &self.jac[j];
                        self.trial[j] = self.q[j] + c[0] * y.x + c[1] * y.y + c[2] * y.z;
                    }
                }
                Self::clamp(robot, &mut self.trial);
                let trial = std::mem::take(&mut self.trial);
                let (e2, ep2, ew2) = self.error(robot, &trial, target);
                self.trial = trial;
                let cost = |p: f64, w: f64| p * p + if with_rot { w * w } else { 0.0 };
                if cost(ep2, ew2) < cost(ep, ew) {
                    std::mem::swap(&mut self.q, &mut self.trial);
                    (e, ep, ew) = (e2, ep2, ew2);
                    lambda = (lambda * 0.5).max(1e-6);
                    improved = true;
                    break;
                }
                lambda *= 4.0;
            }
            if !improved {
                break; // a local minimum (or a limit) of this seed
            }
        }
        (ep, ew, it)
    }

    /// Solves for `target` from `seed` (e.g. the current joint positions; `None`: random seeds
    /// only).
    pub fn solve(
        &mut self,
        robot: &Robot,
        target: &IkTarget,
        seed: Option<&[f64]>,
        options: &IkOptions,
    ) -> IkResult {
        self.rng = ChaCha8Rng::seed_from_u64(options.rng_seed);
        let mut result = IkResult {
            solutions: Vec::new(),
            best_position_error_m: f64::INFINITY,
            iterations: 0,
        };
        for s in 0..options.seeds {
            match (s, seed) {
                (0, Some(q0)) if q0.len() == robot.dof() => {
                    self.q.copy_from_slice(q0);
                    Self::clamp(robot, &mut self.q);
                }
                _ => {
                    for (v, joint) in self.q.iter_mut().zip(&robot.joints) {
                        let (lo, hi) = match joint.kind {
                            JointKind::Continuous => (-std::f64::consts::PI, std::f64::consts::PI),
                            _ => (joint.limits.lower, joint.limits.upper),
                        };
                        *v = self.rng.random_range(lo..=hi);
                    }
                }
            }
            let (ep, ew, it) = self.descend(robot, target, options);
            result.iterations += it;
            result.best_position_error_m = result.best_position_error_m.min(ep);
            let converged = ep <= options.tolerance_m
                && (target.orientation.is_none() || ew <= options.tolerance_rad);
            if !converged {
                continue;
            }
            let distinct = result.solutions.iter().all(|other| {
                other
                    .q
                    .iter()
                    .zip(&self.q)
                    .zip(&robot.joints)
                    .any(|((a, b), joint)| {
                        let d = match joint.kind {
                            JointKind::Continuous => super::fk::wrap_pi(b - a),
                            _ => b - a,
                        };
                        d.abs() > options.distinct_threshold
                    })
            });
            if distinct {
                result.solutions.push(IkBranch {
                    q: self.q.clone(),
                    position_error_m: ep,
                    orientation_error_rad: if target.orientation.is_some() {
                        ew
                    } else {
                        0.0
                    },
                });
                if result.solutions.len() >= options.max_solutions {
                    break;
                }
            }
        }
        result
    }
}
