//! A timed joint trajectory: the planner's output, published as a `JointTrajectory`.
//!
//! Between two points the motion is the cubic Hermite curve through both positions and
//! velocities — what JointTrajectoryController executes for points with positions and
//! velocities. Point 0 is the start state at time 0 (the commanded state when a plan was
//! executing); a controller message uses the points after it (first one at least one control
//! period ahead: resample with a step of at least one control period).

use serde::Serialize;

use crate::{Error, Result};

/// One point of a [`Plan`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanPoint {
    /// Seconds after the plan's start.
    pub time_from_start_secs: f64,
    /// Joint positions, radians, in [`Plan::joint_names`] order.
    pub positions: Vec<f64>,
    /// Joint velocities, rad/s.
    pub velocities: Vec<f64>,
}

/// A timed trajectory: strictly increasing times, positions and velocities at every point, the
/// last velocity exactly zero.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub joint_names: Vec<String>,
    /// The time (planner clock, seconds) of the start state at point 0.
    pub start_stamp_secs: f64,
    pub points: Vec<PlanPoint>,
}

/// Position and velocity at `tau` seconds into the cubic Hermite segment of duration `h` from
/// `(p0, v0)` to `(p1, v1)`.
pub fn hermite(p0: f64, v0: f64, p1: f64, v1: f64, h: f64, tau: f64) -> (f64, f64) {
    let u = if h > 0.0 {
        (tau / h).clamp(0.0, 1.0)
    } else {
        1.0
    };
    let (u2, u3) = (u * u, u * u * u);
    let position = (2.0 * u3 - 3.0 * u2 + 1.0) * p0
        + (u3 - 2.0 * u2 + u) * h * v0
        + (-2.0 * u3 + 3.0 * u2) * p1
        + (u3 - u2) * h * v1;
    let velocity = if h > 0.0 {
        ((6.0 * u2 - 6.0 * u) * p0 + (-6.0 * u2 + 6.0 * u) * p1) / h
            + (3.0 * u2 - 4.0 * u + 1.0) * v0
            + (3.0 * u2 - 2.0 * u) * v1
    } else {
        v1
    };
    (position, velocity)
}

/// The largest |velocity| and |acceleration| along a cubic Hermite segment (exact: velocity is
/// quadratic in time, acceleration linear, so the extremes are at the ends or the velocity's
/// vertex).
pub fn segment_extrema(p0: f64, v0: f64, p1: f64, v1: f64, h: f64) -> (f64, f64) {
    if h.is_nan() || h <= 0.0 {
        return (v0.abs().max(v1.abs()), f64::INFINITY);
    }
    let delta = p1 - p0;
    let a0 = (6.0 * delta / h - 4.0 * v0 - 2.0 * v1) / h;
    let a1 = (-6.0 * delta / h + 2.0 * v0 + 4.0 * v1) / h;
    let jerk = (a1 - a0) / h;
    let mut max_velocity = v0.abs().max(v1.abs());
    if jerk != 0.0 {
        let tau = -a0 / jerk;
        if tau > 0.0 && tau < h {
            max_velocity = max_velocity.max((v0 + a0 * tau + 0.5 * jerk * tau * tau).abs());
        }
    }
    (max_velocity, a0.abs().max(a1.abs()))
}

impl Plan {
    /// Checks the controller's rules: at least one point, every point with one position and
    /// velocity per joint, all finite, strictly increasing times starting at >= 0, last velocity
    /// exactly zero.
    pub fn validate(&self) -> Result<()> {
        let dof = self.joint_names.len();
        let Some(last) = self.points.last() else {
            return Err(Error::Invalid("plan has no points".to_string()));
        };
        let mut previous = f64::NEG_INFINITY;
        for (i, point) in self.points.iter().enumerate() {
            if point.positions.len() != dof || point.velocities.len() != dof {
                return Err(Error::Shape {
                    what: format!("plan point {i} positions/velocities"),
                    expected: vec![dof, dof],
                    found: vec![point.positions.len(), point.velocities.len()],
                });
            }
            let t = point.time_from_start_secs;
            let finite = t.is_finite()
                && point.positions.iter().all(|v| v.is_finite())
                && point.velocities.iter().all(|v| v.is_finite());
            if !finite {
                return Err(Error::Invalid(format!("plan point {i} is not finite")));
            }
            if !(t > previous && t >= 0.0) {
                return Err(Error::Invalid(format!(
                    "plan point {i}: time {t} s does not increase strictly from {previous} s"
                )));
            }
            previous = t;
        }
        if last.velocities.iter().any(|&v| v != 0.0) {
            return Err(Error::Invalid(format!(
                "plan ends with velocity {:?}, expected zero",
                last.velocities
            )));
        }
        Ok(())
    }

    /// Time of the last point, seconds.
    pub fn duration_secs(&self) -> f64 {
        self.points.last().map_or(0.0, |p| p.time_from_start_secs)
    }

    /// Positions and velocities at `t_secs` after the start (cubic Hermite between points);
    /// before the start the first point, after the end the last point at rest.
    pub fn state_at(&self, t_secs: f64) -> (Vec<f64>, Vec<f64>) {
        let (Some(first), Some(last)) = (self.points.first(), self.points.last()) else {
            return (Vec::new(), Vec::new());
        };
        if t_secs.is_nan() || t_secs <= first.time_from_start_secs {
            return (first.positions.clone(), first.velocities.clone());
        }
        if t_secs >= last.time_from_start_secs {
            return (last.positions.clone(), vec![0.0; last.velocities.len()]);
        }
        let next = self
            .points
            .partition_point(|p| p.time_from_start_secs <= t_secs)
            .clamp(1, self.points.len() - 1);
        evaluate(&self.points[next - 1], &self.points[next], t_secs)
    }

    /// The same trajectory sampled every `dt_secs` (from 0), plus the last point; every sample
    /// lies on the original cubic segments, so the executed motion is unchanged up to the final
    /// partial step. A sample closer than `dt_secs / 1000` to the end is merged into it.
    pub fn resample(&self, dt_secs: f64) -> Result<Plan> {
        if !(dt_secs > 0.0 && dt_secs.is_finite()) {
            return Err(Error::config(
                "dt_secs",
                format!("must be finite and > 0, found {dt_secs}"),
            ));
        }
        let (Some(first), Some(last)) = (self.points.first(), self.points.last()) else {
            return Err(Error::Invalid("plan has no points".to_string()));
        };
        let start = first.time_from_start_secs;
        let duration = last.time_from_start_secs - start;
        let mut points = Vec::with_capacity((duration / dt_secs) as usize + 2);
        points.push(first.clone());
        let mut k = 1usize;
        let mut segment = 1usize;
        loop {
            let t = start + k as f64 * dt_secs;
            if t >= last.time_from_start_secs - dt_secs * 1e-3 {
                break;
            }
            while segment + 1 < self.points.len() && self.points[segment].time_from_start_secs < t {
                segment += 1;
            }
            let (positions, velocities) =
                evaluate(&self.points[segment - 1], &self.points[segment], t);
            points.push(PlanPoint {
                time_from_start_secs: t,
                positions,
                velocities,
            });
            k += 1;
        }
        if self.points.len() > 1 {
            points.push(last.clone());
        }
        Ok(Plan {
            joint_names: self.joint_names.clone(),
            start_stamp_secs: self.start_stamp_secs,
            points,
        })
    }
}

/// The state at `t` on the segment between two points.
fn evaluate(a: &PlanPoint, b: &PlanPoint, t: f64) -> (Vec<f64>, Vec<f64>) {
    let h = b.time_from_start_secs - a.time_from_start_secs;
    let tau = t - a.time_from_start_secs;
    (0..a.positions.len())
        .map(|j| {
            hermite(
                a.positions[j],
                a.velocities[j],
                b.positions[j],
                b.velocities[j],
                h,
                tau,
            )
        })
        .unzip()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(t: f64, p: f64, v: f64) -> PlanPoint {
        PlanPoint {
            time_from_start_secs: t,
            positions: vec![p],
            velocities: vec![v],
        }
    }

    fn plan(points: Vec<PlanPoint>) -> Plan {
        Plan {
            joint_names: vec!["j".into()],
            start_stamp_secs: 0.0,
            points,
        }
    }

    #[test]
    fn hermite_matches_end_conditions_and_extrema() {
        let (p, v) = hermite(1.0, 0.5, 2.0, -0.5, 2.0, 0.0);
        assert_eq!((p, v), (1.0, 0.5));
        let (p, v) = hermite(1.0, 0.5, 2.0, -0.5, 2.0, 2.0);
        assert!((p - 2.0).abs() < 1e-12 && (v + 0.5).abs() < 1e-12);
        // Rest to rest over 1 rad in 1 s: peak velocity 1.5, acceleration 6 at the ends.
        let (max_v, max_a) = segment_extrema(0.0, 0.0, 1.0, 0.0, 1.0);
        assert!((max_v - 1.5).abs() < 1e-12 && (max_a - 6.0).abs() < 1e-12);
        let (_, v_mid) = hermite(0.0, 0.0, 1.0, 0.0, 1.0, 0.5);
        assert!((v_mid - 1.5).abs() < 1e-12);
    }

    #[test]
    fn validate_enforces_controller_rules() {
        let good = plan(vec![point(0.0, 0.0, 0.2), point(1.0, 0.5, 0.0)]);
        good.validate().unwrap();
        assert!(plan(vec![point(0.0, 0.0, 0.0), point(0.0, 0.5, 0.0)])
            .validate()
            .is_err());
        assert!(plan(vec![point(0.0, 0.0, 0.0), point(1.0, 0.5, 0.1)])
            .validate()
            .is_err());
        assert!(plan(vec![point(0.0, f64::NAN, 0.0)]).validate().is_err());
        assert!(plan(vec![]).validate().is_err());
    }

    #[test]
    fn resampling_keeps_the_curve() {
        let original = plan(vec![
            point(0.0, 0.0, 0.0),
            point(0.7, 0.4, 0.6),
            point(1.25, 0.8, 0.0),
        ]);
        let fine = original.resample(0.1).unwrap();
        fine.validate().unwrap();
        assert_eq!(fine.points.len(), 14); // 0, 0.1 .. 1.2, 1.25
        assert_eq!(fine.points.last(), original.points.last());
        for t in [0.05, 0.33, 0.7, 0.71, 1.1, 1.24] {
            let (a, va) = original.state_at(t);
            let (b, vb) = fine.state_at(t);
            assert!(
                (a[0] - b[0]).abs() < 1e-12 && (va[0] - vb[0]).abs() < 1e-12,
                "{t}"
            );
        }
        assert_eq!(original.state_at(-1.0).0, vec![0.0]);
        assert_eq!(original.state_at(9.0), (vec![0.8], vec![0.0]));
        assert!(original.resample(0.0).is_err());
    }
}
