//! JointTrajectoryController's interpolation between two states (`splines`, the default
//! `interpolation_method`; `Trajectory::interpolate_between_points` in JTC's trajectory.cpp):
//! linear when either state lacks velocities, cubic (positions and velocities at both ends)
//! when either lacks accelerations, quintic (positions, velocities, accelerations) otherwise.
//! Outside `[time_a, time_b]` the time is clamped and the linear form is used, as JTC does.
//!
//! One difference: JTC outputs nothing (zeros) for states with accelerations but without
//! velocities; that case (never produced by a valid position-based message here) is linear.

use super::trajectory::TrajectoryPoint;

/// The polynomial JTC uses between two states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplineKind {
    /// Positions only: constant velocity.
    Linear,
    /// Positions and velocities: cubic Hermite.
    Cubic,
    /// Positions, velocities and accelerations: quintic.
    Quintic,
}

/// The spline between states `a` and `b` (fields present in both).
pub fn spline_kind(a: &TrajectoryPoint, b: &TrajectoryPoint) -> SplineKind {
    let velocity = !a.velocities.is_empty() && !b.velocities.is_empty();
    let acceleration = !a.accelerations.is_empty() && !b.accelerations.is_empty();
    match (velocity, acceleration) {
        (true, true) => SplineKind::Quintic,
        (true, false) => SplineKind::Cubic,
        (false, _) => SplineKind::Linear,
    }
}

/// The state at `t_secs` between `a` at `time_a_secs` and `b` at `time_b_secs` (all three
/// output fields filled, one value per position of `a`).
pub fn interpolate(
    time_a_secs: f64,
    a: &TrajectoryPoint,
    time_b_secs: f64,
    b: &TrajectoryPoint,
    t_secs: f64,
) -> TrajectoryPoint {
    let duration = time_b_secs - time_a_secs;
    let mut kind = spline_kind(a, b);
    let mut tau = t_secs - time_a_secs;
    if tau < 0.0 {
        tau = 0.0;
        kind = SplineKind::Linear;
    }
    if tau > duration {
        tau = duration;
        kind = SplineKind::Linear;
    }
    let dim = a.positions.len();
    let mut out = TrajectoryPoint {
        positions: vec![0.0; dim],
        velocities: vec![0.0; dim],
        accelerations: vec![0.0; dim],
        effort: Vec::new(),
        time_from_start_secs: 0.0,
    };
    let get = |v: &[f64], j: usize| v.get(j).copied().unwrap_or(0.0);
    for j in 0..dim {
        let (p0, p1) = (get(&a.positions, j), get(&b.positions, j));
        let (p, v, acc) = match kind {
            SplineKind::Linear => {
                let slope = if duration != 0.0 {
                    (p1 - p0) / duration
                } else {
                    0.0
                };
                (p0 + slope * tau, slope, 0.0)
            }
            SplineKind::Cubic => cubic(
                p0,
                get(&a.velocities, j),
                p1,
                get(&b.velocities, j),
                duration,
                tau,
            ),
            SplineKind::Quintic => quintic(
                [p0, get(&a.velocities, j), get(&a.accelerations, j)],
                [p1, get(&b.velocities, j), get(&b.accelerations, j)],
                duration,
                tau,
            ),
        };
        out.positions[j] = p;
        out.velocities[j] = v;
        out.accelerations[j] = acc;
    }
    out
}

/// JTC's cubic: `p(τ) = c0 + c1 τ + c2 τ² + c3 τ³` through `(p0, v0)` at 0 and `(p1, v1)` at `h`
/// (for `h = 0`: `c2 = c3 = 0`). Returns position, velocity, acceleration at `tau`.
fn cubic(p0: f64, v0: f64, p1: f64, v1: f64, h: f64, tau: f64) -> (f64, f64, f64) {
    let (c2, c3) = if h != 0.0 {
        (
            (-3.0 * p0 + 3.0 * p1 - 2.0 * v0 * h - v1 * h) / (h * h),
            (2.0 * p0 - 2.0 * p1 + v0 * h + v1 * h) / (h * h * h),
        )
    } else {
        (0.0, 0.0)
    };
    (
        p0 + v0 * tau + c2 * tau * tau + c3 * tau * tau * tau,
        v0 + 2.0 * c2 * tau + 3.0 * c3 * tau * tau,
        2.0 * c2 + 6.0 * c3 * tau,
    )
}

/// JTC's quintic through `[p, v, a]` at 0 and at `h` (for `h = 0`: `c3 = c4 = c5 = 0`).
fn quintic(start: [f64; 3], end: [f64; 3], h: f64, tau: f64) -> (f64, f64, f64) {
    let [p0, v0, a0] = start;
    let [p1, v1, a1] = end;
    let c0 = p0;
    let c1 = v0;
    let c2 = 0.5 * a0;
    let (c3, c4, c5) = if h != 0.0 {
        let (h2, h3, h4, h5) = (h * h, h * h * h, h.powi(4), h.powi(5));
        (
            (-20.0 * p0 + 20.0 * p1 - 3.0 * a0 * h2 + a1 * h2 - 12.0 * v0 * h - 8.0 * v1 * h)
                / (2.0 * h3),
            (30.0 * p0 - 30.0 * p1 + 3.0 * a0 * h2 - 2.0 * a1 * h2 + 16.0 * v0 * h + 14.0 * v1 * h)
                / (2.0 * h4),
            (-12.0 * p0 + 12.0 * p1 - a0 * h2 + a1 * h2 - 6.0 * v0 * h - 6.0 * v1 * h) / (2.0 * h5),
        )
    } else {
        (0.0, 0.0, 0.0)
    };
    let t = tau;
    let (t2, t3, t4, t5) = (t * t, t * t * t, t.powi(4), t.powi(5));
    (
        c0 + c1 * t + c2 * t2 + c3 * t3 + c4 * t4 + c5 * t5,
        c1 + 2.0 * c2 * t + 3.0 * c3 * t2 + 4.0 * c4 * t3 + 5.0 * c5 * t4,
        2.0 * c2 + 6.0 * c3 * t + 12.0 * c4 * t2 + 20.0 * c5 * t3,
    )
}
