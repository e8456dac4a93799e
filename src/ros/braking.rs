//! Braking along a trajectory's path: the time scaling that stops the robot as fast as every
//! joint's acceleration limit allows ([`braking_points`]), and the check of a trajectory's cubic
//! segments against those limits ([`peak_acceleration_ratio`]). Used by the executor's stop
//! (`super::executor::Executor::stop`); free of ROS types.

use super::executor::REST_VELOCITY_RAD_S;
use crate::planning::{Plan, PlanPoint};

/// Integration steps of the braking time scaling per control period.
const BRAKING_SUBSTEPS: usize = 20;
/// Points of the braking trajectory per control period (its cubic segments then follow the
/// integrated motion closely).
const BRAKING_POINTS_PER_PERIOD: usize = 4;
/// Step of the finite differences giving the path's acceleration, seconds.
const ACCELERATION_STEP_SECS: f64 = 1e-6;

/// The braking trajectory along `plan`'s path from plan time `t0`: the time scaling `s(tau)`
/// with `s(0) = t0`, `s'(0) = 1` decelerates (`s'' <= 0`) as hard as every joint allows: joint
/// `j` moves with `q_j'' = a_j(s) s'^2 + v_j(s) s''`, which must stay within `±margin A_j`
/// (`a`, `v`: the path's acceleration and velocity). Where no deceleration fits (a joint already
/// decelerating at its limit) the path is followed as it is (`s'' = 0`, within the limits as the
/// plan is). The result is sampled [`BRAKING_POINTS_PER_PERIOD`] times per period; if one of
/// its cubic segments still exceeds a limit (sampling), the margin shrinks and it is redone.
pub fn braking_points(plan: &Plan, t0: f64, limits: &[f64], period_secs: f64) -> Vec<PlanPoint> {
    let mut margin = 1.0 - 1e-6;
    let mut best = Vec::new();
    for _ in 0..12 {
        best = integrate_braking(plan, t0, limits, period_secs, margin);
        if peak_acceleration_ratio(&best, limits) <= 1.0 + 1e-9 {
            break;
        }
        margin *= 0.9;
    }
    best
}

/// The largest |acceleration| / limit over the cubic segments of `points` and every joint.
pub fn peak_acceleration_ratio(points: &[PlanPoint], limits: &[f64]) -> f64 {
    let mut worst: f64 = 0.0;
    for pair in points.windows(2) {
        let h = pair[1].time_from_start_secs - pair[0].time_from_start_secs;
        for (j, limit) in limits.iter().enumerate() {
            let (_, a) = crate::planning::segment_extrema(
                pair[0].positions[j],
                pair[0].velocities[j],
                pair[1].positions[j],
                pair[1].velocities[j],
                h,
            );
            worst = worst.max(a / limit);
        }
    }
    worst
}

fn integrate_braking(
    plan: &Plan,
    t0: f64,
    limits: &[f64],
    period_secs: f64,
    margin: f64,
) -> Vec<PlanPoint> {
    let dt = period_secs / BRAKING_SUBSTEPS as f64;
    let every = BRAKING_SUBSTEPS / BRAKING_POINTS_PER_PERIOD;
    let end = plan.duration_secs();
    let (mut s, mut rate) = (t0, 1.0f64);
    let sample = |s: f64, rate: f64, tau: f64| {
        let (positions, velocities) = plan.state_at(s);
        PlanPoint {
            time_from_start_secs: tau,
            positions,
            velocities: velocities.iter().map(|v| v * rate).collect(),
        }
    };
    let mut points = vec![sample(s, rate, 0.0)];
    // Integration steps of `dt` (slots); a slot in which the scaling crosses one of the plan's
    // own points (its cubics' ends, where the path's acceleration jumps) is split there, so the
    // step after it uses the acceleration beyond it, and the crossing gets a braking point: no
    // cubic of the braking trajectory then spans a jump of the path's acceleration (across
    // one, the cubic missed the integrated motion by 10-50 %).
    let (mut tau, mut slot) = (0.0f64, 0usize);
    let mut next_knot = plan
        .points
        .partition_point(|p| p.time_from_start_secs <= t0);
    // A bound never reached in practice (each step lowers the rate or advances along the path);
    // at the bound the braking comes to rest (`braking_points` then checks the result).
    let max_steps = 20 * (((end - t0).max(0.0) / dt).ceil() as usize + 10 * BRAKING_SUBSTEPS);
    let mut steps = 0usize;
    let gap_ok = |points: &[PlanPoint], tau: f64| {
        tau - points[points.len() - 1].time_from_start_secs >= MIN_BRAKING_GAP * dt
    };
    while rate > 0.0 && s < end {
        let (_, v) = plan.state_at(s);
        let (_, v_before) = plan.state_at(s - ACCELERATION_STEP_SECS);
        let (_, v_after) = plan.state_at(s + ACCELERATION_STEP_SECS);
        // The most negative s'' every joint allows (and never below what stops within dt).
        let mut lowest = -rate / dt;
        for (j, limit) in limits.iter().enumerate() {
            let bound = margin * limit;
            for a in [
                (v[j] - v_before[j]) / ACCELERATION_STEP_SECS,
                (v_after[j] - v[j]) / ACCELERATION_STEP_SECS,
            ] {
                let centripetal = a * rate * rate;
                if v[j].abs() > REST_VELOCITY_RAD_S {
                    // |centripetal + v s''| <= bound; s'' <= 0.
                    let edge = if v[j] > 0.0 {
                        (-bound - centripetal) / v[j]
                    } else {
                        (bound - centripetal) / v[j]
                    };
                    lowest = lowest.max(edge);
                }
            }
        }
        steps += 1;
        let accel = if steps >= max_steps {
            -rate / dt
        } else {
            lowest.min(0.0)
        };
        let slot_end = (slot + 1) as f64 * dt;
        let h = slot_end - tau;
        let next_rate = (rate + accel * h).max(0.0);
        let s_next = s + 0.5 * (rate + next_rate) * h;
        let (s_before, rate_before, tau_before) = (s, rate, tau);
        // The first of the plan's points crossed in this step, if the motion goes on past it.
        let mut crossed = None;
        while let Some(knot) = plan.points.get(next_knot) {
            let k = knot.time_from_start_secs;
            if k > s_next || next_rate == 0.0 || k >= end {
                break;
            }
            next_knot += 1;
            if k > s_before {
                crossed = Some(k);
                break;
            }
        }
        if let Some(k) = crossed {
            // s(u) = s + rate u + accel u^2 / 2 within the step.
            let ds = k - s_before;
            let u = if accel < 0.0 {
                let disc = (rate_before * rate_before + 2.0 * accel * ds).max(0.0);
                (rate_before - disc.sqrt()) / -accel
            } else {
                ds / rate_before
            };
            let u = u.clamp(0.0, h);
            s = k;
            rate = rate_before + accel * u;
            tau += u;
            if gap_ok(&points, tau) {
                points.push(sample(s, rate, tau));
            }
            if tau < slot_end {
                continue;
            }
        } else {
            s = s_next;
            rate = next_rate;
        }
        tau = slot_end;
        slot += 1;
        if rate == 0.0 || s >= end {
            // At rest, or at the path's end: the last point, never closer than half a step
            // to the one before it (which then gives way: a near-zero segment's cubic is
            // arbitrary). At rest, the last segment decelerates uniformly over the time that
            // covers its path length at the mean rate: its cubic is then that uniform
            // deceleration, no harder than the integrated one, which covered the same length
            // from the same rate within the limits. At the path's end, the time its length
            // took within this step.
            let s_end = s.min(end);
            let (q_end, v_end) = plan.state_at(s_end);
            let rest = PlanPoint {
                time_from_start_secs: 0.0,
                positions: q_end,
                velocities: v_end.iter().map(|v| v * rate).collect(),
            };
            let crossing = tau_before + (s_end - s_before) / (0.5 * (rate_before + rate));
            let tau_after = |from: &PlanPoint| {
                if rate > 0.0 {
                    crossing
                } else {
                    from.time_from_start_secs
                        + gentlest_rest_duration(from, &rest.positions, limits, dt)
                }
            };
            while points.len() > 1
                && tau_after(&points[points.len() - 1])
                    - points[points.len() - 1].time_from_start_secs
                    < 0.5 * dt
            {
                points.pop();
            }
            let tau = tau_after(&points[points.len() - 1]);
            points.push(PlanPoint {
                time_from_start_secs: tau,
                ..rest
            });
        } else if slot % every == 0 && gap_ok(&points, tau) {
            points.push(sample(s, rate, tau));
        }
    }
    if let Some(last) = points.last_mut() {
        last.velocities.iter_mut().for_each(|v| *v = 0.0);
    }
    points
}

/// Braking points closer than this many integration steps to the one before are left out.
const MIN_BRAKING_GAP: f64 = 0.25;

/// The duration of the segment from `from` to rest at `to`: for one joint, the uniform
/// deceleration (`2 dq / v`, which its cubic then is); for several, the duration near those
/// (from half the shortest to 1.5 x the longest: longer ones would overshoot and come back)
/// whose cubic has the lowest peak |acceleration| / limit. A joint already at rest has none;
/// if all are, `dt / 4` (the caller then drops `from`).
fn gentlest_rest_duration(from: &PlanPoint, to: &[f64], limits: &[f64], dt: f64) -> f64 {
    let uniform: Vec<f64> = from
        .velocities
        .iter()
        .zip(&from.positions)
        .zip(to)
        .filter(|((v, _), _)| v.abs() > REST_VELOCITY_RAD_S)
        .map(|((v, q), q_end)| 2.0 * (q_end - q) / v)
        .filter(|h| h.is_finite() && *h > 0.0)
        .collect();
    let (Some(shortest), Some(longest)) = (
        uniform.iter().copied().reduce(f64::min),
        uniform.iter().copied().reduce(f64::max),
    ) else {
        return 0.25 * dt;
    };
    let peak = |h: f64| {
        limits.iter().enumerate().fold(0.0f64, |worst, (j, limit)| {
            let (_, a) = crate::planning::segment_extrema(
                from.positions[j],
                from.velocities[j],
                to[j],
                0.0,
                h,
            );
            worst.max(a / limit)
        })
    };
    if shortest == longest {
        return shortest;
    }
    const SAMPLES: usize = 32;
    let (mut lo, mut hi) = (0.5 * shortest, 1.5 * longest);
    let mut best = shortest;
    for _ in 0..5 {
        let step = (hi - lo) / SAMPLES as f64;
        best = (0..=SAMPLES)
            .map(|i| lo + i as f64 * step)
            .min_by(|a, b| peak(*a).total_cmp(&peak(*b)))
            .unwrap_or(best);
        (lo, hi) = ((best - step).max(0.5 * shortest), best + step);
    }
    best
}
