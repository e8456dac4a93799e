//! Tests of the executor: controller rules of every command, stitching, stops.

use super::*;

const PERIOD: f64 = 0.02;

fn names() -> Vec<String> {
    vec!["shoulder".into(), "elbow".into()]
}

fn point(t: f64, p: [f64; 2], v: [f64; 2]) -> PlanPoint {
    PlanPoint {
        time_from_start_secs: t,
        positions: p.to_vec(),
        velocities: v.to_vec(),
    }
}

/// Rest to rest from `from` over 2 s, moving (0.5, -0.25) rad.
fn plan_from(from: [f64; 2], start_secs: f64) -> Plan {
    Plan {
        joint_names: names(),
        start_stamp_secs: start_secs,
        points: vec![
            point(0.0, from, [0.0, 0.0]),
            point(1.0, [from[0] + 0.25, from[1] - 0.125], [0.4, -0.2]),
            point(2.0, [from[0] + 0.5, from[1] - 0.25], [0.0, 0.0]),
        ],
    }
}

fn executor() -> Executor {
    Executor::new(PERIOD, vec![3.0, 3.0])
}

/// The controller's state at `secs` after receiving `points` in state `from` (positions,
/// velocities): JointTrajectoryController's cubic Hermite from its state to the first point,
/// then through the message's points; at rest at the last point after it.
pub(crate) fn controller_state(
    from: &(Vec<f64>, Vec<f64>),
    points: &[CommandPoint],
    secs: f64,
) -> (Vec<f64>, Vec<f64>) {
    let mut previous = (0.0, from.0.clone(), from.1.clone());
    for p in points {
        if secs <= p.time_from_start_secs {
            let h = p.time_from_start_secs - previous.0;
            return (0..p.positions.len())
                .map(|j| {
                    crate::planning::hermite(
                        previous.1[j],
                        previous.2[j],
                        p.positions[j],
                        p.velocities[j],
                        h,
                        secs - previous.0,
                    )
                })
                .unzip();
        }
        previous = (
            p.time_from_start_secs,
            p.positions.clone(),
            p.velocities.clone(),
        );
    }
    (previous.1, vec![0.0; previous.2.len()])
}

/// The controller's rules (reference/ros-conventions.md §1) plus ours.
fn check_rules(points: &[CommandPoint]) {
    assert!(!points.is_empty());
    assert!(
        points[0].time_from_start_secs >= PERIOD - 1e-12,
        "first point one period ahead"
    );
    for pair in points.windows(2) {
        assert!(pair[1].time_from_start_secs > pair[0].time_from_start_secs);
    }
    for p in points {
        assert_eq!(p.positions.len(), 2);
        assert_eq!(p.velocities.len(), 2);
        assert!(p
            .positions
            .iter()
            .chain(&p.velocities)
            .all(|v| v.is_finite()));
    }
    assert!(points.last().unwrap().velocities.iter().all(|&v| v == 0.0));
}

#[test]
fn holds_with_one_point_one_period_ahead() {
    let mut e = executor();
    assert!(e.command(0.0).is_none(), "nothing before the first state");
    e.hold_at(names(), vec![0.1, 0.2], 5.0);
    let points = e.command(5.3).unwrap();
    check_rules(&points);
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].time_from_start_secs, PERIOD);
    assert_eq!(points[0].positions, vec![0.1, 0.2]);
    assert_eq!(e.motion(5.3), Motion::Holding);
}

#[test]
fn a_plan_from_rest_that_arrives_late_starts_at_the_next_messages_first_point() {
    let mut e = executor();
    e.hold_at(names(), vec![0.1, 0.2], 0.0);
    // Requested at t = 1.0 (start stamp), adopted at 1.3: the robot was at rest, no jump. It
    // starts one period later, at the first point of the message published now.
    e.adopt(plan_from([0.1, 0.2], 1.0), 1.3).unwrap();
    assert_eq!(e.active_plan().unwrap().start_stamp_secs, 1.3);
    assert_eq!(e.motion(1.3), Motion::Following);
    let points = e.command(1.3).unwrap();
    check_rules(&points);
    let reference = plan_from([0.1, 0.2], 1.3 + PERIOD);
    for p in &points {
        let (q, v) = reference.state_at(p.time_from_start_secs - PERIOD);
        assert!(max_abs_diff(&q, &p.positions) < 1e-12);
        if p.time_from_start_secs < 2.0 + PERIOD {
            assert!(max_abs_diff(&v, &p.velocities) < 1e-12);
        }
    }
    assert!(
        max_abs_diff(&points[0].positions, &[0.1, 0.2]) < 1e-12
            && points[0].velocities.iter().all(|v| *v == 0.0),
        "the first point is still the hold: {:?}",
        points[0]
    );
    assert!((points.last().unwrap().time_from_start_secs - (2.0 + PERIOD)).abs() < 1e-9);
    assert!(max_abs_diff(&points.last().unwrap().positions, &[0.6, -0.05]) < 1e-12);
    // Midway: the rest of the plan, first point one period ahead.
    let later = e.command(2.3 + 0.005).unwrap();
    check_rules(&later);
    assert!((later.last().unwrap().time_from_start_secs - (0.995 + PERIOD)).abs() < 1e-9);
    // After the end: hold at the last point.
    let done = e.command(10.0).unwrap();
    assert_eq!(done.len(), 1);
    assert!(max_abs_diff(&done[0].positions, &[0.6, -0.05]) < 1e-12);
    assert_eq!(e.motion(10.0), Motion::Holding);
}

#[test]
fn a_plan_stitched_ahead_takes_over_without_a_jump() {
    let mut e = executor();
    e.hold_at(names(), vec![0.0, 0.0], 0.0);
    e.adopt(plan_from([0.0, 0.0], 0.0), 0.0).unwrap();
    // Replan at t = 0.5 for a switch at t = 0.8 from the commanded state there.
    let commanded = e.commanded_at(0.8).unwrap();
    let (q, v) = (
        commanded.positions_rad.clone(),
        commanded.velocities_rad_s.clone(),
    );
    let new = Plan {
        joint_names: names(),
        start_stamp_secs: 0.8,
        points: vec![
            PlanPoint {
                time_from_start_secs: 0.0,
                positions: q.clone(),
                velocities: v.clone(),
            },
            point(1.5, [q[0] - 0.3, q[1] + 0.3], [0.0, 0.0]),
        ],
    };
    let before: Vec<_> = (0..40)
        .map(|k| e.state_at(0.5 + k as f64 * 0.0075))
        .collect();
    e.adopt(new.clone(), 0.6).unwrap();
    // Until the switch, the old plan; after it, the new one.
    for (k, old) in before.iter().enumerate() {
        let t = 0.5 + k as f64 * 0.0075;
        if (0.6..=0.8).contains(&t) {
            let now = e.state_at(t).unwrap();
            let old = old.as_ref().unwrap();
            assert!(max_abs_diff(&now.0, &old.0) < 1e-12, "t={t}");
        }
    }
    for t in [0.8, 0.9, 1.5, 2.3, 3.0] {
        let (q_new, _) = new.state_at(t - 0.8);
        assert!(
            max_abs_diff(&e.state_at(t).unwrap().0, &q_new) < 1e-12,
            "t={t}"
        );
    }
    check_rules(&e.command(0.6).unwrap());
}

#[test]
fn late_or_discontinuous_plans_are_refused_while_moving() {
    let mut e = executor();
    e.adopt(plan_from([0.0, 0.0], 0.0), 0.0).unwrap();
    let commanded = e.commanded_at(0.5).unwrap();
    let late = Plan {
        joint_names: names(),
        start_stamp_secs: 0.5,
        points: vec![
            PlanPoint {
                time_from_start_secs: 0.0,
                positions: commanded.positions_rad.clone(),
                velocities: commanded.velocities_rad_s.clone(),
            },
            point(1.0, [0.0, 0.0], [0.0, 0.0]),
        ],
    };
    let err = e.adopt(late.clone(), 0.7).unwrap_err();
    // Late by 0.2 s, plus the period to the next message's first point.
    assert!(
        matches!(err, AdoptError::Late { late_by_secs } if (late_by_secs - 0.2 - PERIOD).abs() < 1e-9)
    );
    let mut shifted = late;
    shifted.start_stamp_secs = 0.9;
    assert!(matches!(
        e.adopt(shifted, 0.7).unwrap_err(),
        AdoptError::Discontinuous { .. }
    ));
    let mut bad = plan_from([0.0, 0.0], 1.0);
    bad.points[2].velocities = vec![0.1, 0.0];
    assert!(matches!(
        e.adopt(bad, 0.7).unwrap_err(),
        AdoptError::Invalid(_)
    ));
}

#[test]
fn stop_brakes_along_the_path_within_the_limits() {
    let mut e = executor();
    e.adopt(plan_from([0.0, 0.0], 0.0), 0.0).unwrap();
    let original = plan_from([0.0, 0.0], 0.0);
    let (q0, v0) = e.state_at(1.0).unwrap();
    assert!(e.stop(1.0));
    assert!(!e.stop(1.01), "stopping twice changes nothing");
    assert_eq!(e.motion(1.01), Motion::Stopping);
    let (q, v) = e.state_at(1.0).unwrap();
    assert!(
        max_abs_diff(&q, &q0) < 1e-12 && max_abs_diff(&v, &v0) < 1e-12,
        "no jump"
    );
    // Along the path: every position equals the plan's at some later time.
    let stop = e.active_plan().unwrap().clone();
    let end = stop.duration_secs();
    let mut previous_v = v0.clone();
    let dt = 0.001;
    let mut t = 0.0;
    while t < end {
        let (q, v) = stop.state_at(t);
        let on_path = (0..=2000).any(|k| {
            let s = 1.0 + k as f64 * 0.0005;
            max_abs_diff(&original.state_at(s).0, &q) < 2e-4
        });
        assert!(on_path, "t={t} q={q:?}");
        for j in 0..2 {
            let accel = (v[j] - previous_v[j]) / dt;
            assert!(accel.abs() <= 3.0 + 0.2, "t={t} joint {j}: {accel}");
        }
        previous_v = v;
        t += dt;
    }
    let (_, v_end) = stop.state_at(end);
    assert!(v_end.iter().all(|&x| x == 0.0));
    assert_eq!(e.motion(1.0 + end + 0.01), Motion::Holding);
    check_rules(&e.command(1.05).unwrap());
}

#[test]
fn stop_at_rest_holds_in_place() {
    let mut e = executor();
    e.hold_at(names(), vec![0.3, 0.3], 0.0);
    assert!(!e.stop(0.5), "a hold is already a stop");
    e.adopt(plan_from([0.3, 0.3], 1.0), 1.0).unwrap();
    assert!(e.stop(0.99), "before the plan starts: hold");
    assert_eq!(e.command(0.99).unwrap()[0].positions, vec![0.3, 0.3]);
    assert_eq!(e.motion(5.0), Motion::Holding);
}

#[test]
fn long_remainders_are_sampled_more_coarsely() {
    let mut e = executor();
    let long = Plan {
        joint_names: names(),
        start_stamp_secs: 0.0,
        points: vec![
            point(0.0, [0.0, 0.0], [0.0, 0.0]),
            point(100.0, [1.0, 1.0], [0.0, 0.0]),
        ],
    };
    e.adopt(long, 0.0).unwrap();
    let points = e.command(0.0).unwrap();
    check_rules(&points);
    assert!(points.len() <= MAX_POINTS + 1, "{}", points.len());
    assert!((points.last().unwrap().time_from_start_secs - 100.0).abs() < 1e-9);
}

/// Accelerates at the limit (3 rad/s²) to 1.5 rad/s, cruises, decelerates at the limit.
fn at_the_limit() -> Plan {
    Plan {
        joint_names: names(),
        start_stamp_secs: 0.0,
        points: vec![
            point(0.0, [0.0, 0.0], [0.0, 0.0]),
            point(0.5, [0.375, -0.1875], [1.5, -0.75]),
            point(1.0, [1.125, -0.5625], [1.5, -0.75]),
            point(1.5, [1.5, -0.75], [0.0, 0.0]),
        ],
    }
}

#[test]
fn braking_keeps_the_total_acceleration_within_the_limits() {
    for t0 in [0.1, 0.25, 0.45, 0.7, 1.05, 1.3] {
        let mut e = executor();
        e.adopt(at_the_limit(), 0.0).unwrap();
        assert!(e.stop(t0));
        let stop = e.active_plan().unwrap().clone();
        let (q, v) = stop.state_at(0.0);
        let (q0, v0) = at_the_limit().state_at(t0);
        assert!(max_abs_diff(&q, &q0) < 1e-12 && max_abs_diff(&v, &v0) < 1e-12);
        // Exact peak |acceleration| of each cubic segment, as the controller splines it.
        let mut worst: f64 = 0.0;
        for pair in stop.points.windows(2) {
            let h = pair[1].time_from_start_secs - pair[0].time_from_start_secs;
            for j in 0..2 {
                let (_, a) = crate::planning::segment_extrema(
                    pair[0].positions[j],
                    pair[0].velocities[j],
                    pair[1].positions[j],
                    pair[1].velocities[j],
                    h,
                );
                worst = worst.max(a / 3.0);
            }
        }
        assert!(
            worst <= 1.0 + 1e-6,
            "stop at {t0} s: {worst:.3} x the limit"
        );
        let end = stop.duration_secs();
        assert!(end < 1.6, "stops within the path: {end}");
        check_rules(&e.command(t0).unwrap());
    }
}

/// The published times as the message carries them: whole nanoseconds.
fn as_published(points: &[CommandPoint]) -> Vec<f64> {
    points
        .iter()
        .map(|p| (p.time_from_start_secs * 1e9).round() * 1e-9)
        .collect()
}

#[test]
fn published_segments_stay_within_the_limits_at_nanosecond_times() {
    // Sampled every ~0.37 ms, grid points fall at every distance from the plan's knots (0.5 s,
    // 1.0 s); a very short segment amplified the messages' nanosecond rounding of its times
    // past the limit (the abuse test saw 1.01 x).
    let plan = at_the_limit();
    let mut e = executor();
    e.adopt(plan, 0.0).unwrap();
    let mut worst: f64 = 0.0;
    let mut shortest = f64::INFINITY;
    for k in 0..4000 {
        // Not on the nanosecond grid, as a clock reading is not.
        let now = k as f64 * 0.000_370_123_457;
        let points = e.command(now).unwrap();
        check_rules(&points);
        let times = as_published(&points);
        for (pair, t) in points.windows(2).zip(times.windows(2)) {
            let h = t[1] - t[0];
            shortest = shortest.min(h);
            for j in 0..2 {
                let (v, a) = crate::planning::segment_extrema(
                    pair[0].positions[j],
                    pair[0].velocities[j],
                    pair[1].positions[j],
                    pair[1].velocities[j],
                    h,
                );
                worst = worst.max(a / 3.0);
                assert!(v <= 1.5 * (1.0 + 1e-6), "{v} rad/s at {now} s");
            }
        }
    }
    assert!(worst <= 1.0 + 1e-6, "{worst:.4} x the acceleration limit");
    assert!(
        shortest >= 0.1 * PERIOD - 1e-9,
        "shortest segment {shortest} s"
    );
}

/// The worst |acceleration| / 3 rad/s² and |velocity| of the published segments at `now`.
fn published_extrema(e: &mut Executor, now: f64) -> (f64, f64, String) {
    let points = e.command(now).unwrap();
    check_rules(&points);
    let times = as_published(&points);
    let (mut worst_a, mut worst_v, mut at) = (0.0f64, 0.0f64, String::new());
    for (i, (pair, t)) in points.windows(2).zip(times.windows(2)).enumerate() {
        let h = t[1] - t[0];
        for j in 0..2 {
            let (v, a) = crate::planning::segment_extrema(
                pair[0].positions[j],
                pair[0].velocities[j],
                pair[1].positions[j],
                pair[1].velocities[j],
                h,
            );
            if a / 3.0 > worst_a {
                at = format!("segment {i} of {}, h {h:.6} s, joint {j}", points.len());
            }
            worst_a = worst_a.max(a / 3.0);
            worst_v = worst_v.max(v);
        }
    }
    (worst_a, worst_v, at)
}

#[test]
fn every_message_of_a_stop_stays_within_the_limits() {
    // Stops at many phases of a plan at the limit, each followed through to rest at clock
    // readings off the nanosecond grid (the abuse test saw 1.5 x on a stop's last segment).
    let mut worst: (f64, String) = (0.0, String::new());
    for i in 0..60 {
        let t0 = 0.013 + i as f64 * 0.0247;
        let mut e = executor();
        e.adopt(at_the_limit(), 0.0).unwrap();
        e.stop(t0);
        let end = t0 + e.active_plan().unwrap().duration_secs();
        let mut now = t0;
        while now < end + 0.05 {
            let (a, v, at) = published_extrema(&mut e, now);
            assert!(
                v <= 1.5 * (1.0 + 1e-6),
                "{v} rad/s, stop at {t0}, now {now}"
            );
            if a > worst.0 {
                worst = (a, format!("stop at {t0:.4}, now {now:.6}: {at}"));
            }
            now += 0.000_731_117;
        }
    }
    assert!(
        worst.0 <= 1.0 + 1e-6,
        "{:.4} x the limit: {}",
        worst.0,
        worst.1
    );
}

#[test]
fn every_message_around_a_takeover_stays_within_the_limits() {
    // A new plan stitched onto the commanded state at many switch times, published from
    // before the switch to after it, on the clock of a real robot: epoch seconds, which an f64
    // holds to 0.24 µs (the abuse test saw 1.002 x at a takeover).
    const EPOCH: f64 = 1_796_367_112.0;
    let mut worst: (f64, String) = (0.0, String::new());
    for i in 0..40 {
        let switch = EPOCH + 0.11 + i as f64 * 0.0313;
        let mut e = executor();
        let mut first = at_the_limit();
        first.start_stamp_secs = EPOCH;
        e.adopt(first, EPOCH).unwrap();
        let c = e.commanded_at(switch).unwrap();
        let (q, v) = (c.positions_rad.clone(), c.velocities_rad_s.clone());
        // Brakes at the limit to rest from the commanded velocity.
        let h = (v[0].abs() / 3.0).max(0.1);
        let new = Plan {
            joint_names: names(),
            start_stamp_secs: switch,
            points: vec![
                PlanPoint {
                    time_from_start_secs: 0.0,
                    positions: q.clone(),
                    velocities: v.clone(),
                },
                point(
                    h,
                    [q[0] + 0.5 * v[0] * h, q[1] + 0.5 * v[1] * h],
                    [0.0, 0.0],
                ),
            ],
        };
        let adopt_at = switch - 0.0537;
        e.adopt(new, adopt_at).unwrap();
        let mut now = adopt_at;
        while now < switch + 0.1 {
            let (a, _, at) = published_extrema(&mut e, now);
            if a > worst.0 {
                worst = (a, format!("switch at {switch:.4}, now {now:.6}: {at}"));
            }
            now += 0.000_913_7;
        }
    }
    assert!(
        worst.0 <= 1.0 + 1e-6,
        "{:.4} x the limit: {}",
        worst.0,
        worst.1
    );
}

#[test]
fn a_stop_between_ticks_continues_what_the_controller_was_sent() {
    // The controller follows the last message until the next one comes (the next tick); a
    // stop requested between ticks (an input callback) must not change the commanded curve
    // before then, or the controller's segment from where it is to the next message's first
    // point leaves the curve (the abuse test saw jumps of 1/2 a (p + d)^2, d the stop's delay
    // before the next tick: 0.6 to 2.4 mrad at 3 rad/s^2, 50 Hz).
    let mut worst: (f64, String) = (0.0, String::new());
    for i in 0..40 {
        let tick = 0.013 + i as f64 * 0.0311;
        for fraction in [0.02, 0.3, 0.65, 0.98] {
            let mut e = executor();
            e.adopt(at_the_limit(), 0.0).unwrap();
            let sent = e.command(tick).unwrap();
            let before = e.clone();
            e.stop(tick + fraction * PERIOD);
            // Up to the next tick, when the next message comes, the commanded curve is what
            // it was.
            let sent_until = tick + PERIOD;
            for k in 0..=20 {
                let stop = tick + fraction * PERIOD;
                let t = stop + k as f64 / 20.0 * (sent_until - stop);
                let (q0, v0) = before.state_at(t).unwrap();
                let (q1, v1) = e.state_at(t).unwrap();
                assert!(
                    max_abs_diff(&q0, &q1).max(max_abs_diff(&v0, &v1)) < 1e-9,
                    "stop at {:.4} changed the curve at {t:.4}, before {sent_until:.4}",
                    tick + fraction * PERIOD
                );
            }
            let next = e.command(tick + PERIOD).unwrap();
            // At the next tick the controller is where the last message put it: on its spline
            // from the state at that tick (on the plan) through the message's points.
            let (q_tick, v_tick) = at_the_limit().state_at(tick);
            let (q, v) = controller_state(&(q_tick, v_tick), &sent, PERIOD);
            let to = &next[0];
            for j in 0..2 {
                let (_, a) = crate::planning::segment_extrema(
                    q[j],
                    v[j],
                    to.positions[j],
                    to.velocities[j],
                    to.time_from_start_secs,
                );
                if a / 3.0 > worst.0 {
                    worst = (
                        a / 3.0,
                        format!("tick {tick:.4}, stop {fraction} period later, joint {j}"),
                    );
                }
            }
            let (a, _, at) = published_extrema(&mut e, tick + PERIOD);
            assert!(
                a <= 1.0 + 1e-6,
                "{a:.4} x the limit at {at}, tick {tick:.4}, stop {fraction} period later"
            );
        }
    }
    // Braking starts at the next tick, where the controller is when the next message comes.
    // Where the braking starts within the controller's next segment (a knot of the plan
    // inside it), its cubic spans the jump of the acceleration (from the plan's to the
    // braking's) and overshoots a little (~10 % at a jump from +A to -A); braking from the
    // stop request's time left it 17 x.
    assert!(
        worst.0 <= 1.1,
        "{:.4} x the limit on the controller's first segment: {}",
        worst.0,
        worst.1
    );
}

#[test]
fn a_plan_starting_before_the_next_first_point_starts_there() {
    // A plan from rest whose start falls before the first point of the next message (one
    // period after now, here later than the first point of the message the controller already
    // has) begins at that point (which holds the arm where it is until then), and the
    // composite still starts now.
    let q = [0.2, -0.4];
    let mut e = executor();
    e.hold_at(names(), q.to_vec(), 0.0);
    e.command(1.0).unwrap();
    let next_first = 1.01 + PERIOD;
    e.adopt(plan_from(q, 1.005), 1.01).unwrap();
    let active = e.active_plan().unwrap();
    assert!(
        (active.start_stamp_secs - 1.01).abs() < 1e-12,
        "composite starts now"
    );
    let (at_next, v_next) = e.state_at(next_first).unwrap();
    assert!(max_abs_diff(&at_next, &q) < 1e-12 && v_next.iter().all(|v| v.abs() < 1e-12));
    let (later, _) = e.state_at(next_first + 0.5).unwrap();
    let (expected, _) = plan_from(q, 0.0).state_at(0.5);
    assert!(
        max_abs_diff(&later, &expected) < 1e-9,
        "{later:?} vs {expected:?}"
    );
    // A moving plan that starts before the next first point would change what was sent.
    let mut e = executor();
    e.adopt(plan_from(q, 0.0), 0.0).unwrap();
    e.command(1.0).unwrap();
    let c = e.commanded_at(1.01).unwrap();
    let moving = Plan {
        joint_names: names(),
        start_stamp_secs: 1.01,
        points: vec![
            PlanPoint {
                time_from_start_secs: 0.0,
                positions: c.positions_rad.clone(),
                velocities: c.velocities_rad_s.clone(),
            },
            point(1.0, [1.0, 1.0], [0.0, 0.0]),
        ],
    };
    assert!(matches!(
        e.adopt(moving, 1.005),
        Err(AdoptError::Late { .. })
    ));
}

#[test]
fn a_start_from_rest_leaves_the_next_first_point_at_rest() {
    // The controller holds where the last message (a hold) put it until the next message
    // arrives, and splines from there to that message's first point. A plan from rest that
    // began before that point would make the controller cut across to it, the more the later
    // the message arrives (5.4 mrad in an abuse run, a message two periods late). It begins
    // there instead: the message's first point is the hold, at rest, so a delivery up to one
    // period late changes nothing, and the plan follows from it.
    let q = [0.2, -0.4];
    let mut e = executor();
    e.hold_at(names(), q.to_vec(), 0.0);
    e.command(1.0).unwrap();
    let now = 1.0 + PERIOD;
    // Planned from the hold at the request (0.1 s ago): its start is in the past.
    e.adopt(plan_from(q, now - 0.1), now).unwrap();
    let sent = e.command(now).unwrap();
    check_rules(&sent);
    assert!(
        max_abs_diff(&sent[0].positions, &q) < 1e-12
            && sent[0].velocities.iter().all(|v| *v == 0.0),
        "{:?}",
        sent[0]
    );
    let reference = plan_from(q, now + PERIOD);
    for p in &sent {
        let (expected, _) = reference.state_at(p.time_from_start_secs - PERIOD);
        assert!(max_abs_diff(&expected, &p.positions) < 1e-12, "{p:?}");
    }
}
