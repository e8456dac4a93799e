//! Smoothing of the chosen path before it is timed.
//!
//! A sampled path carries the sampler's high-frequency wiggle (a few milliradians from waypoint
//! to waypoint). The time parameterisation caps the speed at every corner, so a wiggly path is
//! timed much slower than a smooth one of the same length. Before timing, the planner runs
//! `passes` rounds of the binomial filter `q_i ← (q_{i−1} + 2 q_i + q_{i+1}) / 4` over the
//! interior waypoints (the first and last stay exactly where they are: the start state and the
//! goal), a Gaussian of about `sqrt(passes / 2)` waypoints. The smoothed path is timed and
//! re-verified like any plan; when it fails (it cut a corner into an obstacle), the path as it
//! was is used instead.

use crate::robot::JointPath;

/// `path` after `passes` rounds of the binomial filter, end points fixed. Paths of fewer than
/// 3 waypoints, and `passes == 0`, come back unchanged.
pub fn smooth_path(path: &JointPath, passes: usize) -> JointPath {
    let dof = path.dof();
    let n = path.len();
    let mut q = path.as_slice().to_vec();
    if n < 3 || passes == 0 {
        return path.clone();
    }
    let mut next = q.clone();
    for _ in 0..passes {
        for i in 1..n - 1 {
            for j in 0..dof {
                next[i * dof + j] = 0.25 * q[(i - 1) * dof + j]
                    + 0.5 * q[i * dof + j]
                    + 0.25 * q[(i + 1) * dof + j];
            }
        }
        std::mem::swap(&mut q, &mut next);
    }
    // Same shape as the input, finite where the input is: cannot fail. The filter draws the
    // waypoints together near the fixed ends; resampled to equal arc-length spacing, the path
    // has no short segments whose corners would cap the speed.
    JointPath::new(dof, q)
        .map(|p| p.resample_by_arc_length(n))
        .unwrap_or_else(|_| path.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_stay_lines_stay_and_wiggle_shrinks() {
        // A straight line with alternating ±5 mrad wiggle on joint 1.
        let waypoints: Vec<Vec<f64>> = (0..32)
            .map(|i| {
                let s = i as f64 / 31.0;
                let wiggle = if i == 0 || i == 31 {
                    0.0
                } else if i % 2 == 0 {
                    0.005
                } else {
                    -0.005
                };
                vec![2.0 * s, -1.0 + s + wiggle]
            })
            .collect();
        let path = JointPath::from_waypoints(&waypoints).unwrap();
        let smooth = smooth_path(&path, 8);
        assert_eq!(smooth.first(), path.first());
        assert_eq!(smooth.last(), path.last());
        // Distance from the line q1 = -1 + q0 / 2 (the wiggle), along joint 1.
        let off_line = |p: &JointPath| {
            p.waypoints()
                .map(|q| (q[1] - (-1.0 + 0.5 * q[0])).abs())
                .fold(0.0, f64::max)
        };
        assert!((off_line(&path) - 0.005).abs() < 1e-12);
        assert!(off_line(&smooth) < 0.005 * 0.1, "{}", off_line(&smooth));
        // Equal arc-length spacing after the resampling: along the line, joint 0 moves by
        // 2/31 per step.
        for (i, q) in smooth.waypoints().enumerate() {
            assert!((q[0] - 2.0 * i as f64 / 31.0).abs() < 1e-3, "{i}: {q:?}");
        }
        assert!(smooth.length_rad() < path.length_rad());
        assert_eq!(smooth_path(&path, 0), path);
        let short = JointPath::from_waypoints(&[vec![0.0, 0.0], vec![1.0, 1.0]]).unwrap();
        assert_eq!(smooth_path(&short, 5), short);
    }
}
