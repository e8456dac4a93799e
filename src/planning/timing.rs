//! Time parameterisation of a joint-space path within velocity and acceleration limits.
//!
//! The trajectory passes through every waypoint; between two waypoints each joint follows the
//! cubic Hermite curve through both positions and velocities (what JointTrajectoryController
//! executes for points with positions and velocities).
//!
//! 1. Consecutive duplicate waypoints are merged; segments longer than 1/16 of the path length
//!    are split, so a sparse path still gets a ramp-cruise-ramp profile.
//! 2. A speed profile along the polyline (forward pass from the start speed, backward pass to
//!    rest, per-segment speed and acceleration limits from the tightest joint, a speed cap at
//!    each corner) gives segment durations and waypoint velocities (speed times the mean of the
//!    two segment directions; the first velocity is the given start velocity, the last exactly
//!    zero). On a straight path this is the time-optimal trapezoid, which the cubics reproduce
//!    exactly (constant acceleration between waypoints).
//! 3. Every segment is checked exactly ([`segment_extrema`]); the speed caps at both ends of a
//!    violating segment shrink and the profile is recomputed, so the whole profile stays
//!    consistent. Should a violation survive (e.g. a start velocity across the path), that
//!    segment alone is stretched with its end velocities fixed, which always ends within the
//!    limits since they are.
//!
//! Guarantee (property-tested): on every segment the exact peak |velocity| and |acceleration|
//! of every joint are within the (scaled) limits; the first point is the start state, the last
//! velocity exactly zero, times strictly increasing (segments last at least
//! [`MIN_SEGMENT_SECS`]).

use serde::{Deserialize, Serialize};

use super::plan::{segment_extrema, PlanPoint};
use crate::robot::{distance, JointPath};
use crate::{Error, Result};

/// Shortest segment duration, seconds (keeps times strictly increasing at controller
/// resolution).
pub const MIN_SEGMENT_SECS: f64 = 1e-3;

/// A moving path is split into at least about this many segments (see `densify`).
const MIN_SEGMENTS: usize = 16;

/// Consecutive waypoints closer than this (max-abs, radians) are merged.
const DUPLICATE_TOLERANCE_RAD: f64 = 1e-9;

/// The speed profile uses the limits times this factor.
const PROFILE_MARGIN: f64 = 1.0 - 1e-6;

/// Rounds of the profile; after each, the speed caps at both ends of a violating segment shrink
/// by `CAP_REDUCTION`.
const MAX_PROFILE_ROUNDS: usize = 60;
const CAP_REDUCTION: f64 = 0.7;

/// Stretches of one segment before giving up (never reached in practice: a segment whose end
/// velocities are within the limits satisfies them once it is long enough).
const MAX_STRETCHES: usize = 10_000;

/// Settings of [`time_parameterize`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimingConfig {
    /// Fraction of each joint's velocity limit to use, in (0, 1].
    pub velocity_scaling: f64,
    /// Fraction of each joint's acceleration limit to use, in (0, 1].
    pub acceleration_scaling: f64,
    /// Duration of the hold plan for a path that does not move, seconds (> 0).
    pub hold_duration_secs: f64,
}

impl Default for TimingConfig {
    fn default() -> Self {
        TimingConfig {
            velocity_scaling: 1.0,
            acceleration_scaling: 1.0,
            hold_duration_secs: 0.1,
        }
    }
}

impl TimingConfig {
    /// Checks the ranges; errors name the key under `prefix`.
    pub fn validate(&self, prefix: &str) -> Result<()> {
        for (key, value) in [
            ("velocity_scaling", self.velocity_scaling),
            ("acceleration_scaling", self.acceleration_scaling),
        ] {
            if !(value > 0.0 && value <= 1.0) {
                return Err(Error::config(
                    format!("{prefix}{key}"),
                    format!("must be in (0, 1], found {value}"),
                ));
            }
        }
        if !(self.hold_duration_secs > 0.0 && self.hold_duration_secs.is_finite()) {
            return Err(Error::config(
                format!("{prefix}hold_duration_secs"),
                format!("must be finite and > 0, found {}", self.hold_duration_secs),
            ));
        }
        Ok(())
    }
}

/// Why a path could not be timed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TimingError {
    #[error("{what}: expected {expected} values (one per joint), found {found}")]
    Shape {
        what: &'static str,
        expected: usize,
        found: usize,
    },
    #[error("{what} is not finite")]
    NonFinite { what: &'static str },
    #[error("limit of joint {joint} must be finite and > 0, found {value}")]
    InvalidLimit { joint: usize, value: f64 },
    #[error(
        "start velocity of joint {joint} is {value_rad_s} rad/s, beyond its (scaled) limit \
         {limit_rad_s} rad/s"
    )]
    StartVelocityExceedsLimit {
        joint: usize,
        value_rad_s: f64,
        limit_rad_s: f64,
    },
    #[error("time parameterisation of segment {segment} did not converge")]
    NotConverged { segment: usize },
}

/// Times `path` within the limits (module docs). `start_velocity_rad_s`: the velocity at the
/// first waypoint (the commanded velocity when stitching), `None` for rest. The first point is
/// `(0, path.first(), start velocity)` exactly; the last velocity is exactly zero.
pub fn time_parameterize(
    path: &JointPath,
    max_velocity_rad_s: &[f64],
    max_acceleration_rad_s2: &[f64],
    start_velocity_rad_s: Option<&[f64]>,
    config: &TimingConfig,
) -> Result<Vec<PlanPoint>, TimingError> {
    let dof = path.dof();
    for (what, values) in [
        ("velocity limits", max_velocity_rad_s),
        ("acceleration limits", max_acceleration_rad_s2),
    ] {
        if values.len() != dof {
            return Err(TimingError::Shape {
                what,
                expected: dof,
                found: values.len(),
            });
        }
        if let Some((joint, &value)) = values
            .iter()
            .enumerate()
            .find(|(_, v)| !(**v > 0.0 && v.is_finite()))
        {
            return Err(TimingError::InvalidLimit { joint, value });
        }
    }
    if !path.is_finite() {
        return Err(TimingError::NonFinite { what: "path" });
    }
    let vmax: Vec<f64> = max_velocity_rad_s
        .iter()
        .map(|v| v * config.velocity_scaling)
        .collect();
    let amax: Vec<f64> = max_acceleration_rad_s2
        .iter()
        .map(|a| a * config.acceleration_scaling)
        .collect();
    let v_start: Vec<f64> = match start_velocity_rad_s {
        None => vec![0.0; dof],
        Some(v) if v.len() != dof => {
            return Err(TimingError::Shape {
                what: "start velocity",
                expected: dof,
                found: v.len(),
            })
        }
        Some(v) => v.to_vec(),
    };
    for (joint, (&value, &limit)) in v_start.iter().zip(&vmax).enumerate() {
        if !value.is_finite() {
            return Err(TimingError::NonFinite {
                what: "start velocity",
            });
        }
        if value.abs() > limit {
            return Err(TimingError::StartVelocityExceedsLimit {
                joint,
                value_rad_s: value,
                limit_rad_s: limit,
            });
        }
    }

    // Waypoints without consecutive duplicates (the first one always stays).
    let mut waypoints: Vec<Vec<f64>> = vec![path.first().to_vec()];
    for q in path.waypoints().skip(1) {
        let previous = &waypoints[waypoints.len() - 1];
        let moved = q
            .iter()
            .zip(previous)
            .any(|(a, b)| (a - b).abs() > DUPLICATE_TOLERANCE_RAD);
        if moved {
            waypoints.push(q.to_vec());
        }
    }
    let moving = v_start.iter().any(|&v| v != 0.0);
    if waypoints.len() == 1 {
        let q = waypoints[0].clone();
        if !moving {
            return Ok(vec![
                PlanPoint {
                    time_from_start_secs: 0.0,
                    positions: q.clone(),
                    velocities: vec![0.0; dof],
                },
                PlanPoint {
                    time_from_start_secs: config.hold_duration_secs,
                    positions: q,
                    velocities: vec![0.0; dof],
                },
            ]);
        }
        // Moving but nowhere to go: brake and come back to the start.
        waypoints.push(q);
    } else {
        waypoints = densify(waypoints);
    }

    let segments = waypoints.len() - 1;
    // The profile is planned a hair inside the limits so that rounding never crosses them.
    let profile_vmax: Vec<f64> = vmax.iter().map(|v| v * PROFILE_MARGIN).collect();
    let profile_amax: Vec<f64> = amax.iter().map(|a| a * PROFILE_MARGIN).collect();
    let mut cap_scale = vec![1.0; segments + 1];
    let (mut durations, mut velocities) = (Vec::new(), Vec::new());
    for _ in 0..MAX_PROFILE_ROUNDS {
        (durations, velocities) = speed_profile(
            &waypoints,
            &profile_vmax,
            &profile_amax,
            &v_start,
            &cap_scale,
        );
        let mut violated = false;
        for i in 0..segments {
            if segment_ratio(&waypoints, &velocities, &durations, i, &vmax, &amax) > 1.0 {
                violated = true;
                cap_scale[i] *= CAP_REDUCTION;
                cap_scale[i + 1] *= CAP_REDUCTION;
            }
        }
        if !violated {
            break;
        }
    }
    // Still violated after the rounds (e.g. a start velocity across the path): stretch each
    // such segment on its own, its end velocities fixed; long enough, any segment whose end
    // velocities are within the limits satisfies them.
    for i in 0..segments {
        let mut converged = false;
        for _ in 0..MAX_STRETCHES {
            let ratio = segment_ratio(&waypoints, &velocities, &durations, i, &vmax, &amax);
            if ratio <= 1.0 {
                converged = true;
                break;
            }
            durations[i] *= ratio.clamp(1.0 + 1e-6, 2.0);
        }
        if !converged {
            return Err(TimingError::NotConverged { segment: i });
        }
    }

    let mut points = Vec::with_capacity(segments + 1);
    let mut time = 0.0;
    for (i, q) in waypoints.iter().enumerate() {
        if i > 0 {
            time += durations[i - 1];
        }
        points.push(PlanPoint {
            time_from_start_secs: time,
            positions: q.clone(),
            velocities: velocities[i * dof..(i + 1) * dof].to_vec(),
        });
    }
    Ok(points)
}

/// The worst ratio of peak |velocity| and sqrt(peak |acceleration|) to the limits over the
/// joints of segment `i` (> 1: violated).
fn segment_ratio(
    waypoints: &[Vec<f64>],
    velocities: &[f64],
    durations: &[f64],
    i: usize,
    vmax: &[f64],
    amax: &[f64],
) -> f64 {
    let dof = vmax.len();
    let mut ratio = 0.0f64;
    for j in 0..dof {
        let (max_v, max_a) = segment_extrema(
            waypoints[i][j],
            velocities[i * dof + j],
            waypoints[i + 1][j],
            velocities[(i + 1) * dof + j],
            durations[i],
        );
        ratio = ratio.max(max_v / vmax[j]).max((max_a / amax[j]).sqrt());
    }
    ratio
}

/// Splits segments longer than `1 / MIN_SEGMENTS` of the path length into equal pieces, so that
/// even a sparse path gets a ramp-cruise-ramp profile instead of one cubic per segment.
fn densify(waypoints: Vec<Vec<f64>>) -> Vec<Vec<f64>> {
    let total: f64 = waypoints.windows(2).map(|w| distance(&w[0], &w[1])).sum();
    let max_step = total / MIN_SEGMENTS as f64;
    if max_step.is_nan() || max_step <= 0.0 {
        return waypoints;
    }
    let mut out = Vec::with_capacity(waypoints.len() + MIN_SEGMENTS);
    for pair in waypoints.windows(2) {
        let pieces = (distance(&pair[0], &pair[1]) / max_step * (1.0 - 1e-9))
            .ceil()
            .max(1.0);
        let pieces = pieces as usize;
        for k in 0..pieces {
            let s = k as f64 / pieces as f64;
            out.push(
                pair[0]
                    .iter()
                    .zip(&pair[1])
                    .map(|(a, b)| a + s * (b - a))
                    .collect(),
            );
        }
    }
    if let Some(last) = waypoints.last() {
        out.push(last.clone());
    }
    out
}

/// The speed profile along the polyline: segment durations and waypoint velocities
/// (`(segments + 1) × dof`). Each segment is a straight line with a speed and an acceleration
/// limit along it (from the tightest joint); each interior waypoint has a speed limit for its
/// corner (turning within the shorter neighbouring segment within the joint accelerations). A
/// forward pass (accelerating from the start speed, the start velocity's component along the
/// first segment) and a backward pass (stopping at the end) give the speed at every waypoint.
/// Each segment takes its length over the mean of its end speeds; an interior waypoint's velocity
/// is its speed times the mean of the two segment directions, the first is the start velocity,
/// the last zero. For a straight path this is the time-optimal trapezoid, reproduced exactly by
/// the cubic segments (constant acceleration between waypoints).
fn speed_profile(
    waypoints: &[Vec<f64>],
    vmax: &[f64],
    amax: &[f64],
    v_start: &[f64],
    cap_scale: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    let dof = v_start.len();
    let segments = waypoints.len() - 1;
    let mut length = Vec::with_capacity(segments);
    let mut direction: Vec<Vec<f64>> = Vec::with_capacity(segments);
    let mut speed_limit = Vec::with_capacity(segments);
    let mut accel_limit = Vec::with_capacity(segments);
    for pair in waypoints.windows(2) {
        let l = distance(&pair[0], &pair[1]);
        let u: Vec<f64> = pair[0]
            .iter()
            .zip(&pair[1])
            .map(|(a, b)| if l > 0.0 { (b - a) / l } else { 0.0 })
            .collect();
        let limit = |caps: &[f64]| {
            u.iter()
                .zip(caps)
                .filter(|(c, _)| c.abs() > 0.0)
                .map(|(c, cap)| cap / c.abs())
                .fold(f64::INFINITY, f64::min)
        };
        speed_limit.push(limit(vmax));
        accel_limit.push(limit(amax));
        length.push(l);
        direction.push(u);
    }
    let mut speed = vec![0.0; segments + 1];
    let along: f64 = v_start.iter().zip(&direction[0]).map(|(v, u)| v * u).sum();
    speed[0] = along.clamp(0.0, speed_limit[0]);
    for i in 1..segments {
        let mut cap = speed_limit[i - 1].min(speed_limit[i]);
        let turn_length = length[i - 1].min(length[i]);
        for j in 0..dof {
            let turn = (direction[i][j] - direction[i - 1][j]).abs();
            if turn > 0.0 {
                cap = cap.min((amax[j] * turn_length / turn).sqrt());
            }
        }
        speed[i] = cap * cap_scale[i];
    }
    for i in 0..segments {
        let reachable = (speed[i] * speed[i] + 2.0 * accel_limit[i] * length[i]).sqrt();
        speed[i + 1] = speed[i + 1].min(reachable);
    }
    for i in (1..segments).rev() {
        let reachable = (speed[i + 1] * speed[i + 1] + 2.0 * accel_limit[i] * length[i]).sqrt();
        speed[i] = speed[i].min(reachable);
    }
    let durations = (0..segments)
        .map(|i| {
            let mean = 0.5 * (speed[i] + speed[i + 1]);
            let h = if mean > 0.0 {
                length[i] / mean
            } else {
                // Rest to rest in one cubic: peak velocity 1.5 Δ/h, acceleration 6 Δ/h².
                waypoints[i]
                    .iter()
                    .zip(&waypoints[i + 1])
                    .zip(vmax.iter().zip(amax))
                    .map(|((a, b), (v, acc))| {
                        let d = (b - a).abs();
                        (1.5 * d / v).max((6.0 * d / acc).sqrt())
                    })
                    .fold(0.0, f64::max)
            };
            h.max(MIN_SEGMENT_SECS)
        })
        .collect();
    let mut velocities = vec![0.0; (segments + 1) * dof];
    velocities[..dof].copy_from_slice(v_start);
    for i in 1..segments {
        for j in 0..dof {
            let tangent = 0.5 * (direction[i - 1][j] + direction[i][j]);
            // Within both segments' speed limits, so within every joint's velocity limit.
            velocities[i * dof + j] = (speed[i] * tangent).clamp(-vmax[j], vmax[j]);
        }
    }
    (durations, velocities)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Checks every segment against the limits (with a 1e-9 relative tolerance).
    fn assert_within(points: &[PlanPoint], vmax: &[f64], amax: &[f64]) {
        for pair in points.windows(2) {
            let h = pair[1].time_from_start_secs - pair[0].time_from_start_secs;
            assert!(h > 0.0);
            for j in 0..vmax.len() {
                let (v, a) = segment_extrema(
                    pair[0].positions[j],
                    pair[0].velocities[j],
                    pair[1].positions[j],
                    pair[1].velocities[j],
                    h,
                );
                assert!(
                    v <= vmax[j] * (1.0 + 1e-9) + 1e-12,
                    "velocity {v} > {}",
                    vmax[j]
                );
                assert!(
                    a <= amax[j] * (1.0 + 1e-9) + 1e-12,
                    "acceleration {a} > {}",
                    amax[j]
                );
            }
        }
    }

    #[test]
    fn long_straight_move_is_trapezoid_like() {
        let waypoints: Vec<Vec<f64>> = (0..41).map(|t| vec![t as f64 * 0.05]).collect();
        let path = JointPath::from_waypoints(&waypoints).unwrap();
        let points =
            time_parameterize(&path, &[1.0], &[2.0], None, &TimingConfig::default()).unwrap();
        assert_within(&points, &[1.0], &[2.0]);
        let duration = points.last().unwrap().time_from_start_secs;
        // Time-optimal rest to rest over 2 rad at 1 rad/s, 2 rad/s²: 2.5 s.
        assert!(duration > 2.5 - 1e-9 && duration < 2.51, "{duration}");
        let peak = points.iter().map(|p| p.velocities[0]).fold(0.0, f64::max);
        assert!(peak > 0.9, "{peak}");
        assert_eq!(points.last().unwrap().velocities, vec![0.0]);
        assert_eq!(points[0].velocities, vec![0.0]);
    }

    #[test]
    fn sparse_paths_are_densified_and_corners_slow_down() {
        let cfg = TimingConfig::default();
        let path = JointPath::from_waypoints(&[vec![0.0], vec![2.0]]).unwrap();
        let points = time_parameterize(&path, &[1.0], &[2.0], None, &cfg).unwrap();
        assert_eq!(points.len(), 17);
        assert_within(&points, &[1.0], &[2.0]);
        let duration = points.last().unwrap().time_from_start_secs;
        assert!(duration < 2.51, "{duration}");

        let corner =
            JointPath::from_waypoints(&[vec![0.0, 0.0], vec![1.0, 0.0], vec![1.0, 1.0]]).unwrap();
        let points = time_parameterize(&corner, &[1.0, 1.0], &[2.0, 2.0], None, &cfg).unwrap();
        assert_within(&points, &[1.0, 1.0], &[2.0, 2.0]);
        let at_corner = points.iter().find(|p| p.positions == [1.0, 0.0]).unwrap();
        let speed = at_corner.velocities[0].hypot(at_corner.velocities[1]);
        let peak = points
            .iter()
            .map(|p| p.velocities[0].hypot(p.velocities[1]))
            .fold(0.0, f64::max);
        assert!(speed < 0.5 * peak, "corner {speed}, peak {peak}");
    }

    #[test]
    fn still_paths_hold_or_brake() {
        let path = JointPath::from_waypoints(&[vec![0.3, 0.1], vec![0.3, 0.1]]).unwrap();
        let cfg = TimingConfig::default();
        let hold = time_parameterize(&path, &[1.0, 1.0], &[1.0, 1.0], None, &cfg).unwrap();
        assert_eq!(hold.len(), 2);
        assert_eq!(hold[1].time_from_start_secs, cfg.hold_duration_secs);
        let brake =
            time_parameterize(&path, &[1.0, 1.0], &[1.0, 1.0], Some(&[0.5, -0.2]), &cfg).unwrap();
        assert_eq!(brake[0].velocities, vec![0.5, -0.2]);
        assert_within(&brake, &[1.0, 1.0], &[1.0, 1.0]);
        assert!(matches!(
            time_parameterize(&path, &[1.0, 1.0], &[1.0, 1.0], Some(&[1.5, 0.0]), &cfg),
            Err(TimingError::StartVelocityExceedsLimit { joint: 0, .. })
        ));
        assert!(matches!(
            time_parameterize(&path, &[1.0], &[1.0, 1.0], None, &cfg),
            Err(TimingError::Shape { .. })
        ));
        assert!(matches!(
            time_parameterize(&path, &[1.0, 0.0], &[1.0, 1.0], None, &cfg),
            Err(TimingError::InvalidLimit { joint: 1, .. })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn never_exceeds_limits(
            steps in proptest::collection::vec(proptest::collection::vec(-0.6f64..0.6, 3), 1..16),
            dof in 1usize..4,
            vmax in proptest::collection::vec(0.2f64..3.0, 3),
            amax in proptest::collection::vec(0.2f64..6.0, 3),
            start in proptest::option::of(proptest::collection::vec(-1.0f64..1.0, 3)),
            scaling in 0.3f64..1.0,
        ) {
            let mut q = vec![0.1; dof];
            let mut waypoints = vec![q.clone()];
            for step in &steps {
                for j in 0..dof { q[j] += step[j]; }
                waypoints.push(q.clone());
            }
            let path = JointPath::from_waypoints(&waypoints).unwrap();
            let cfg = TimingConfig { velocity_scaling: scaling, ..TimingConfig::default() };
            let limit_v: Vec<f64> = vmax[..dof].iter().map(|v| v * scaling).collect();
            let start: Option<Vec<f64>> =
                start.map(|s| (0..dof).map(|j| s[j] * limit_v[j]).collect());
            let points = time_parameterize(
                &path, &vmax[..dof], &amax[..dof], start.as_deref(), &cfg,
            ).unwrap();
            assert_within(&points, &limit_v, &amax[..dof]);
            prop_assert_eq!(points[0].time_from_start_secs, 0.0);
            prop_assert_eq!(&points[0].positions, &waypoints[0]);
            let expected_start = start.unwrap_or_else(|| vec![0.0; dof]);
            prop_assert_eq!(&points[0].velocities, &expected_start);
            prop_assert!(points.last().unwrap().velocities.iter().all(|&v| v == 0.0));
            prop_assert_eq!(&points.last().unwrap().positions, waypoints.last().unwrap());
            // The plan passes through every waypoint, in order.
            let mut next = 0;
            for point in &points {
                if next < waypoints.len() && point.positions == waypoints[next] {
                    next += 1;
                }
            }
            prop_assert_eq!(next, waypoints.len());
        }
    }
}
