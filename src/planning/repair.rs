//! Local repair of a candidate that grazes or shallowly cuts an obstacle: a few steps of
//! covariant gradient descent on the clearance deficit (CHOMP's update, Zucker et al. 2013),
//! with the first and last waypoints fixed.
//!
//! The network places the end effector well but sometimes sweeps a link a few centimetres
//! through the obstacle; such a candidate lies in a homotopy class next to the obstacle and a
//! small deformation makes it collision-free, and one that passes too close gets its safety
//! margin the same way. The repair is local on purpose: a candidate that cuts an obstacle
//! deeper than `max_depth_fraction` of its radius plus the link radius (a link's centre line
//! near the obstacle's centre, as a mode-interpolated path straight through it has) is left
//! alone, so the filter still rejects it; with the default one half, the link passes on one
//! side of the centre and the push keeps it there. A repair that does not end collision-free
//! is discarded.
//!
//! One step: at every interior waypoint whose clearance `c` is below `margin_m` the gradient
//! of `(margin − c)²` (central differences of the swept link capsules' clearance), smoothed
//! along the path by `A⁻¹` with `A` the second-difference matrix of the interior waypoints
//! (the path's velocity metric, ends fixed), so a push at one waypoint bends its neighbours
//! too instead of making a kink; scaled so that no joint moves more than `max_step_rad`; then
//! clamped to the joint limits.

use serde::{Deserialize, Serialize};

use crate::robot::{CircleObstacle, JointPath, PlanarArm};
use crate::{Error, Result};

/// Settings of the repair (part of [`super::PlannerConfig`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RepairConfig {
    /// Clearance the repair aims for at every waypoint, metres. Candidates whose waypoints
    /// all have it (and whose swept path is collision-free) are not touched. Default 0.01.
    pub margin_m: f64,
    /// Candidates with a waypoint deeper inside an obstacle than this fraction of the obstacle
    /// radius plus the link radius are not repaired. Default 0.5.
    pub max_depth_fraction: f64,
    /// Most gradient steps per candidate; 0 disables the repair. Default 60.
    pub iterations: usize,
    /// Largest change of any joint at any waypoint per step, radians. Default 0.03.
    pub max_step_rad: f64,
}

impl Default for RepairConfig {
    fn default() -> Self {
        RepairConfig {
            margin_m: 0.01,
            max_depth_fraction: 0.5,
            iterations: 60,
            max_step_rad: 0.03,
        }
    }
}

impl RepairConfig {
    /// Checks every value (NaN fails); `prefix` goes before the key names in errors.
    pub fn validate(&self, prefix: &str) -> Result<()> {
        for (key, value) in [
            ("margin_m", self.margin_m),
            ("max_depth_fraction", self.max_depth_fraction),
        ] {
            if !(value >= 0.0 && value.is_finite()) {
                return Err(Error::config(
                    format!("{prefix}{key}"),
                    format!("must be finite and >= 0, found {value}"),
                ));
            }
        }
        if !(self.max_step_rad > 0.0 && self.max_step_rad.is_finite()) {
            return Err(Error::config(
                format!("{prefix}max_step_rad"),
                format!("must be finite and > 0, found {}", self.max_step_rad),
            ));
        }
        Ok(())
    }
}

/// What the repair did to one candidate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Repair {
    /// The smallest waypoint clearance before the repair, metres (< 0: penetration).
    pub initial_min_clearance_m: f64,
    /// The smallest waypoint clearance after it, metres.
    pub final_min_clearance_m: f64,
    /// Gradient steps taken.
    pub steps: usize,
    /// The swept path was in collision before and is not after.
    pub collision_removed: bool,
}

/// Step of the central differences, radians.
const GRADIENT_STEP_RAD: f64 = 1e-6;

/// Repairs `path` in place (see the module docs). Returns `None` when the path was left as it
/// was: no obstacles, nothing to repair, too deep, repair disabled, or a repair that did not
/// end collision-free (then the original path is kept and the filter judges it).
pub fn repair_path(
    arm: &PlanarArm,
    path: &mut JointPath,
    obstacles: &[CircleObstacle],
    config: &RepairConfig,
) -> Option<Repair> {
    let n = path.len();
    let dof = path.dof();
    if obstacles.is_empty() || config.iterations == 0 || n < 3 || !path.is_finite() {
        return None;
    }
    let clearance = |q: &[f64]| {
        arm.clearance(q, obstacles)
            .map_or(f64::INFINITY, |c| c.clearance_m)
    };
    let clearances = |p: &[f64]| -> Vec<f64> { p.chunks_exact(dof).map(clearance).collect() };
    let contacts: Vec<_> = path
        .waypoints()
        .map(|q| arm.clearance(q, obstacles))
        .collect();
    let too_deep = contacts.iter().flatten().any(|contact| {
        let thickness = obstacles[contact.obstacle].radius_m + arm.link_radius_m();
        -contact.clearance_m > config.max_depth_fraction * thickness
    });
    if too_deep {
        return None;
    }
    let mut c: Vec<f64> = contacts
        .iter()
        .map(|contact| contact.map_or(f64::INFINITY, |c| c.clearance_m))
        .collect();
    let initial_min = c.iter().copied().fold(f64::INFINITY, f64::min);
    let interior_short = c[1..n - 1].iter().any(|&ci| ci < config.margin_m);
    let collided = arm.path_collision(path, obstacles).is_some();
    if !(collided || interior_short) {
        return None;
    }
    let mut q = path.as_slice().to_vec();
    let lower = arm.lower_limits_rad();
    let upper = arm.upper_limits_rad();
    let interior = n - 2;
    let mut gradient = vec![0.0; interior * dof];
    let mut steps = 0;
    while steps < config.iterations {
        // The direction that raises the clearance deficit's descent, per interior waypoint.
        gradient.iter_mut().for_each(|g| *g = 0.0);
        let mut any = false;
        for i in 1..n - 1 {
            let deficit = config.margin_m - c[i];
            if deficit <= 0.0 {
                continue;
            }
            any = true;
            let qi = &mut q[i * dof..(i + 1) * dof];
            for j in 0..dof {
                let saved = qi[j];
                qi[j] = saved + GRADIENT_STEP_RAD;
                let plus = clearance(qi);
                qi[j] = saved - GRADIENT_STEP_RAD;
                let minus = clearance(qi);
                qi[j] = saved;
                let dc = (plus - minus) / (2.0 * GRADIENT_STEP_RAD);
                if dc.is_finite() {
                    gradient[(i - 1) * dof + j] = deficit * dc;
                }
            }
        }
        if !any {
            break;
        }
        // Covariant step: A^-1 g per joint, A = tridiag(-1, 2, -1) over the interior.
        let mut largest = 0.0f64;
        let mut column = vec![0.0; interior];
        let mut deltas = vec![0.0; interior * dof];
        for j in 0..dof {
            for (i, value) in column.iter_mut().enumerate() {
                *value = gradient[i * dof + j];
            }
            solve_second_difference(&mut column);
            for (i, value) in column.iter().enumerate() {
                deltas[i * dof + j] = *value;
                largest = largest.max(value.abs());
            }
        }
        if !(largest > 0.0 && largest.is_finite()) {
            break;
        }
        let scale = config.max_step_rad / largest;
        for i in 1..n - 1 {
            for j in 0..dof {
                let k = i * dof + j;
                q[k] = (q[k] + scale * deltas[(i - 1) * dof + j]).clamp(lower[j], upper[j]);
            }
        }
        steps += 1;
        c = clearances(&q);
    }
    let repaired = JointPath::new(dof, q).ok()?;
    if arm.path_collision(&repaired, obstacles).is_some() {
        return None;
    }
    let final_min = c.iter().copied().fold(f64::INFINITY, f64::min);
    *path = repaired;
    Some(Repair {
        initial_min_clearance_m: initial_min,
        final_min_clearance_m: final_min,
        steps,
        collision_removed: collided,
    })
}

/// Solves `A x = b` in place for `A = tridiag(-1, 2, -1)` (Thomas algorithm).
fn solve_second_difference(b: &mut [f64]) {
    let n = b.len();
    if n == 0 {
        return;
    }
    let mut c_prime = vec![0.0; n];
    let mut denominator = 2.0;
    c_prime[0] = -1.0 / denominator;
    b[0] /= denominator;
    for i in 1..n {
        denominator = 2.0 + c_prime[i - 1];
        c_prime[i] = -1.0 / denominator;
        b[i] = (b[i] + b[i - 1]) / denominator;
    }
    for i in (0..n - 1).rev() {
        b[i] -= c_prime[i] * b[i + 1];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::robot::RobotDescription;

    fn arm() -> PlanarArm {
        PlanarArm::new(RobotDescription::planar_2link()).unwrap()
    }

    /// A straight joint-space path from `a` to `b` with `n` waypoints.
    fn straight(a: [f64; 2], b: [f64; 2], n: usize) -> JointPath {
        let rows: Vec<Vec<f64>> = (0..n)
            .map(|i| {
                let s = i as f64 / (n - 1) as f64;
                vec![a[0] + s * (b[0] - a[0]), a[1] + s * (b[1] - a[1])]
            })
            .collect();
        JointPath::from_waypoints(&rows).unwrap()
    }

    fn min_clearance(arm: &PlanarArm, path: &JointPath, obstacles: &[CircleObstacle]) -> f64 {
        path.waypoints()
            .map(|q| arm.clearance(q, obstacles).unwrap().clearance_m)
            .fold(f64::INFINITY, f64::min)
    }

    #[test]
    fn the_tridiagonal_solve_inverts_the_second_difference() {
        let x = [0.3, -1.0, 2.0, 0.5, 0.0];
        let mut b: Vec<f64> = (0..x.len())
            .map(|i| {
                let left = if i > 0 { x[i - 1] } else { 0.0 };
                let right = if i + 1 < x.len() { x[i + 1] } else { 0.0 };
                2.0 * x[i] - left - right
            })
            .collect();
        solve_second_difference(&mut b);
        for (found, expected) in b.iter().zip(x) {
            assert!((found - expected).abs() < 1e-12, "{b:?}");
        }
    }

    #[test]
    fn a_shallow_cut_is_pushed_out_to_the_margin_with_the_ends_fixed() {
        let arm = arm();
        let mut path = straight([-0.6, 0.9], [0.6, 0.9], 32);
        // The hand sweeps an arc around the base; an obstacle just outside the arc at
        // mid-path, cut 1.5 cm deep by the hand's capsule.
        let hand = arm.end_effector(&[0.0, 0.9]);
        let reach = hand[0].hypot(hand[1]);
        let radius_m = 0.05;
        let distance = reach + radius_m + arm.link_radius_m() - 0.015;
        let obstacle = CircleObstacle {
            center_m: [hand[0] * distance / reach, hand[1] * distance / reach],
            radius_m,
        };
        let obstacles = [obstacle];
        let before = min_clearance(&arm, &path, &obstacles);
        assert!(before < 0.0 && before > -0.05, "{before}");
        let original = path.clone();
        let config = RepairConfig::default();
        let repair = repair_path(&arm, &mut path, &obstacles, &config).expect("repaired");
        assert!(repair.collision_removed);
        assert!(arm.path_collision(&path, &obstacles).is_none());
        let after = min_clearance(&arm, &path, &obstacles);
        assert!(after >= 0.9 * config.margin_m, "{after}");
        assert_eq!(path.first(), original.first());
        assert_eq!(path.last(), original.last());
        assert!(path.waypoints().all(|q| arm.within_limits(q)));
        // Smooth: no step between waypoints much larger than the original's.
        let step = |p: &JointPath| {
            p.waypoints()
                .zip(p.waypoints().skip(1))
                .map(|(a, b)| crate::robot::distance(a, b))
                .fold(0.0, f64::max)
        };
        assert!(step(&path) < 2.0 * step(&original), "{}", step(&path));
    }

    #[test]
    fn clear_paths_deep_cuts_and_disabled_repair_are_left_alone() {
        let arm = arm();
        let path = straight([-0.6, 0.9], [0.6, 0.9], 32);
        let far = [CircleObstacle {
            center_m: [-0.8, -0.8],
            radius_m: 0.1,
        }];
        let mut p = path.clone();
        assert_eq!(
            repair_path(&arm, &mut p, &far, &RepairConfig::default()),
            None
        );
        assert_eq!(p, path);
        // Through the middle of a big obstacle: too deep.
        let mid = arm.end_effector(&[0.0, 0.9]);
        let deep = [CircleObstacle {
            center_m: mid,
            radius_m: 0.15,
        }];
        assert_eq!(
            repair_path(&arm, &mut p, &deep, &RepairConfig::default()),
            None
        );
        assert_eq!(p, path);
        let off = RepairConfig {
            iterations: 0,
            ..RepairConfig::default()
        };
        let graze = [CircleObstacle {
            center_m: [mid[0], mid[1] + 0.04],
            radius_m: 0.02,
        }];
        assert_eq!(repair_path(&arm, &mut p, &graze, &off), None);
        assert_eq!(p, path);
        assert!(RepairConfig {
            margin_m: f64::NAN,
            ..RepairConfig::default()
        }
        .validate("repair.")
        .unwrap_err()
        .to_string()
        .contains("repair.margin_m"));
    }
}
