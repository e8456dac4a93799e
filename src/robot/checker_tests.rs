//! The optimised [`Checker`] against a plain reference: every obstacle and every sphere
//! pair of `Robot::self_pairs` computed, no culling, no lazy centres, a freshly allocated
//! row per configuration; the same bisection written out again.

use super::*;
use crate::robot::world::{Obstacle, Shape};
use nalgebra::Rotation3;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A clearance row by the definition: per group, the minimum over the obstacles of the
/// bounding-ball bound (above `exact_below_m`) or else the exact sphere distances; per group
/// pair, the bound (above `exact_below_m`) or else the minimum over its sphere pairs.
fn reference_row(checker: &Checker, world: &World, q: &[f64]) -> Vec<f64> {
    let robot = &*checker.robot;
    let mut frames = robot.frames_scratch();
    robot.body_frames(q, &mut frames);
    let mut centers = vec![Vector3::zeros(); robot.spheres.len()];
    robot.sphere_centers(&frames, &mut centers);
    let e = checker.exact_below_m;
    let group_center = |g: &Group| frames[g.body].point(&g.center);
    let mut row = Vec::new();
    for g in &checker.groups {
        let gc = group_center(g);
        let mut value = f64::INFINITY;
        for obstacle in &world.obstacles {
            let bound = obstacle.distance_lower_bound(&gc) - g.radius;
            let v = if bound > e {
                bound
            } else {
                g.spheres
                    .clone()
                    .map(|s| obstacle.signed_distance(&centers[s]).0 - robot.spheres[s].radius)
                    .fold(f64::INFINITY, f64::min)
            };
            value = value.min(v);
        }
        row.push(value);
    }
    let group_of = |s: u32| {
        let s = s as usize;
        checker.groups.iter().position(|g| g.spheres.contains(&s))
    };
    for &(a, b) in &checker.group_pairs {
        let (ga, gb) = (&checker.groups[a as usize], &checker.groups[b as usize]);
        let bound = (group_center(ga) - group_center(gb)).norm() - ga.radius - gb.radius;
        let value = if bound > e {
            bound
        } else {
            robot
                .self_pairs
                .iter()
                .filter(|&&(i, j)| {
                    (group_of(i), group_of(j)) == (Some(a as usize), Some(b as usize))
                })
                .map(|&(i, j)| {
                    let (i, j) = (i as usize, j as usize);
                    (centers[i] - centers[j]).norm()
                        - robot.spheres[i].radius
                        - robot.spheres[j].radius
                })
                .fold(f64::INFINITY, f64::min)
        };
        row.push(value);
    }
    row
}

fn minima(checker: &Checker, row: &[f64]) -> (f64, f64) {
    let ng = checker.groups.len();
    let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    (min(&row[..ng]), min(&row[ng..]))
}

/// The swept check of the module docs, plainly: `Some(proven)` or `None`.
#[allow(clippy::too_many_arguments)]
fn reference_segment(
    checker: &Checker,
    world: &World,
    base: &[f64],
    delta: &[f64],
    (t0, row_a): (f64, &[f64]),
    (t1, row_b): (f64, &[f64]),
    depth: usize,
    margin: f64,
    evaluations: &mut usize,
) -> Option<f64> {
    let dof = checker.robot.dof();
    let ng = checker.groups.len();
    let span = t1 - t0;
    let bound: Vec<f64> = (0..ng)
        .map(|g| {
            let lever = &checker.group_lever[g * dof..(g + 1) * dof];
            span * delta
                .iter()
                .zip(lever)
                .map(|(d, l)| d.abs() * l)
                .sum::<f64>()
        })
        .collect();
    let mut proven = f64::INFINITY;
    let mut ok = true;
    for (i, (&ca, &cb)) in row_a.iter().zip(row_b).enumerate() {
        let b = if i < ng {
            bound[i]
        } else {
            let (x, y) = checker.group_pairs[i - ng];
            bound[x as usize] + bound[y as usize]
        };
        let (lo, hi) = (ca.min(cb), ca.max(cb));
        if lo == f64::INFINITY {
            continue;
        }
        let guaranteed = if !hi.is_finite() {
            lo - b
        } else if hi - lo <= b {
            (ca + cb - b) / 2.0
        } else {
            hi - b
        };
        if !(guaranteed > margin) {
            ok = false;
        }
        proven = proven.min(guaranteed);
    }
    if ok {
        return Some(proven);
    }
    if depth >= checker.max_depth {
        return None;
    }
    let tm = 0.5 * (t0 + t1);
    let q: Vec<f64> = base.iter().zip(delta).map(|(b, d)| b + tm * d).collect();
    let row_m = reference_row(checker, world, &q);
    *evaluations += 1;
    let (w, s) = minima(checker, &row_m);
    if !(w.min(s) > margin) {
        return None;
    }
    let args = (world, base, delta);
    let left = reference_segment(
        checker,
        args.0,
        args.1,
        args.2,
        (t0, row_a),
        (tm, &row_m),
        depth + 1,
        margin,
        evaluations,
    )?;
    let right = reference_segment(
        checker,
        args.0,
        args.1,
        args.2,
        (tm, &row_m),
        (t1, row_b),
        depth + 1,
        margin,
        evaluations,
    )?;
    Some(left.min(right))
}

fn reference_trajectory(
    checker: &Checker,
    world: &World,
    traj: &[f64],
    margin: f64,
) -> TrajectoryCheck {
    let robot = &*checker.robot;
    let dof = robot.dof();
    let mut result = TrajectoryCheck {
        collision_free: true,
        within_limits: true,
        min_waypoint_clearance: f64::INFINITY,
        min_swept_clearance: f64::INFINITY,
        first_contact: None,
        evaluations: 0,
    };
    let mut prev: Option<(&[f64], Vec<f64>)> = None;
    for (w, q) in traj.chunks_exact(dof).enumerate() {
        result.within_limits &= robot.within_limits(q);
        let row = reference_row(checker, world, q);
        result.evaluations += 1;
        let (cw, cs) = minima(checker, &row);
        let c = cw.min(cs);
        result.min_waypoint_clearance = result.min_waypoint_clearance.min(c);
        if !(c > margin) && result.first_contact.is_none() {
            result.first_contact = Some(w);
            result.collision_free = false;
        }
        if let Some((p, prev_row)) = &prev {
            if result.collision_free {
                let mut delta = vec![0.0; dof];
                robot.joint_delta(p, q, &mut delta);
                let mut evals = 0;
                let swept = reference_segment(
                    checker,
                    world,
                    p,
                    &delta,
                    (0.0, prev_row),
                    (1.0, &row),
                    0,
                    margin,
                    &mut evals,
                );
                result.evaluations += evals;
                match swept {
                    Some(v) => result.min_swept_clearance = result.min_swept_clearance.min(v),
                    None => {
                        result.collision_free = false;
                        result.first_contact = Some(w - 1);
                    }
                }
            }
        }
        result.min_swept_clearance = result.min_swept_clearance.min(c);
        prev = Some((q, row));
    }
    if !result.collision_free {
        result.min_swept_clearance = result.min_swept_clearance.min(margin);
    }
    result
}

fn panda() -> Arc<Robot> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    Arc::new(crate::bench::robot::panda(root).expect("urdf/panda loads"))
}

fn random_q(robot: &Robot, rng: &mut ChaCha8Rng) -> Vec<f64> {
    robot
        .joints
        .iter()
        .map(|j| rng.random_range(j.limits.lower..=j.limits.upper))
        .collect()
}

fn random_rotation(rng: &mut ChaCha8Rng) -> Matrix3Like {
    Rotation3::from_euler_angles(
        rng.random_range(-3.2..3.2),
        rng.random_range(-1.6..1.6),
        rng.random_range(-3.2..3.2),
    )
    .into_inner()
}

type Matrix3Like = nalgebra::Matrix3<f64>;

/// A random obstacle centred at `center`: a sphere, box or cylinder of 1 .. 30 cm.
fn obstacle_at(center: Vector3<f64>, rng: &mut ChaCha8Rng) -> Obstacle {
    let shape = match rng.random_range(0..3) {
        0 => Shape::Sphere {
            radius: rng.random_range(0.01..0.15),
        },
        1 => Shape::Box {
            half_extents: Vector3::new(
                rng.random_range(0.005..0.15),
                rng.random_range(0.005..0.15),
                rng.random_range(0.005..0.15),
            ),
        },
        _ => Shape::Cylinder {
            radius: rng.random_range(0.005..0.12),
            half_length: rng.random_range(0.01..0.15),
        },
    };
    let pose = Frame {
        rotation: random_rotation(rng),
        translation: center,
    };
    Obstacle::new(shape, pose)
}

/// 0 .. 12 obstacles around the arm; some on a sphere of `near` (in contact) and some just
/// off one (near misses, a few mm beyond the sphere's surface).
fn random_world(robot: &Robot, near: &[f64], rng: &mut ChaCha8Rng) -> World {
    let mut frames = robot.frames_scratch();
    robot.body_frames(near, &mut frames);
    let mut centers = vec![Vector3::zeros(); robot.spheres.len()];
    robot.sphere_centers(&frames, &mut centers);
    let count = rng.random_range(0..=12) * rng.random_range(0..=1);
    let mut obstacles = Vec::new();
    for _ in 0..count {
        let s = rng.random_range(0..robot.spheres.len());
        let o = match rng.random_range(0..4) {
            0 => obstacle_at(centers[s], rng),
            1 => {
                // A sphere 0 .. 5 mm beyond sphere `s`'s surface.
                let radius = rng.random_range(0.01..0.1);
                let dir = Vector3::new(
                    rng.random_range(-1.0..1.0),
                    rng.random_range(-1.0..1.0),
                    rng.random_range(-1.0..1.0),
                )
                .normalize();
                let gap = rng.random_range(0.0..0.005);
                let c = centers[s] + dir * (robot.spheres[s].radius + radius + gap);
                Obstacle::sphere([c.x, c.y, c.z], radius)
            }
            _ => {
                let angle = rng.random_range(-std::f64::consts::PI..std::f64::consts::PI);
                let r = rng.random_range(0.1..0.9);
                let c = Vector3::new(
                    r * angle.cos(),
                    r * angle.sin(),
                    rng.random_range(-0.1..1.1),
                );
                obstacle_at(c, rng)
            }
        };
        obstacles.push(o);
    }
    World::new(obstacles)
}

fn assert_close(what: &str, a: f64, b: f64) {
    let same = a == b || (a - b).abs() <= 1e-12 || (a.is_nan() && b.is_nan());
    assert!(same, "{what}: optimised {a} vs reference {b}");
}

/// Many seeded random batches (random configurations within the limits, some beyond,
/// random worlds with contacts and near misses, self-collisions, several margins, depth
/// limits and `exact_below_m`): the optimised checker gives the reference's verdicts,
/// first contacts and evaluation counts, and its clearances within 1e-12 m.
#[test]
fn optimised_checker_matches_the_plain_reference() {
    let robot = panda();
    let mut checker = Checker::new(robot.clone());
    let mut rng = ChaCha8Rng::seed_from_u64(20261204);
    let dof = robot.dof();
    let (mut contacts, mut free, mut unproven, mut self_hits) = (0, 0, 0, 0);
    let mut bit_equal = (0usize, 0usize);
    for case in 0..600 {
        checker.exact_below_m = [0.05, 0.05, 0.0, 0.2, f64::INFINITY][case % 5];
        checker.set_max_depth([12, 12, 12, 3][case % 4]);
        let margin = [0.0, 0.0, 0.01, -0.005][case % 4];
        // Half the starts near the ready pose (mostly free), half anywhere in the limits.
        let start = if case % 2 == 0 {
            let ready = [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785];
            ready
                .iter()
                .map(|v| v + rng.random_range(-0.3..0.3))
                .collect()
        } else {
            random_q(&robot, &mut rng)
        };
        let world = random_world(&robot, &start, &mut rng);
        let h = rng.random_range(1..=6);
        let step = [0.05, 0.3, 1.0][case % 3];
        let mut traj = start.clone();
        for _ in 1..h {
            let last = traj[traj.len() - dof..].to_vec();
            for (j, v) in last.iter().enumerate() {
                let lim = &robot.joints[j].limits;
                let next = v + rng.random_range(-step..step);
                // Now and then a waypoint beyond the limits.
                let next = if rng.random_bool(0.97) {
                    next.clamp(lim.lower, lim.upper)
                } else {
                    next
                };
                traj.push(next);
            }
        }
        let got = checker.check_trajectory(&world, &traj, margin);
        let want = reference_trajectory(&checker, &world, &traj, margin);
        let ctx = format!("case {case}: {got:?} vs {want:?}");
        assert_eq!(got.collision_free, want.collision_free, "{ctx}");
        assert_eq!(got.within_limits, want.within_limits, "{ctx}");
        assert_eq!(got.first_contact, want.first_contact, "{ctx}");
        assert_eq!(got.evaluations, want.evaluations, "{ctx}");
        assert_close(
            &ctx,
            got.min_waypoint_clearance,
            want.min_waypoint_clearance,
        );
        assert_close(&ctx, got.min_swept_clearance, want.min_swept_clearance);
        for (a, b) in [
            (got.min_waypoint_clearance, want.min_waypoint_clearance),
            (got.min_swept_clearance, want.min_swept_clearance),
        ] {
            bit_equal.1 += 1;
            bit_equal.0 += usize::from(a.to_bits() == b.to_bits());
        }
        for q in traj.chunks_exact(dof) {
            let c = checker.check_config(&world, q);
            let (w, s) = minima(&checker, &reference_row(&checker, &world, q));
            assert_close(&format!("case {case} world"), c.world_clearance, w);
            assert_close(&format!("case {case} self"), c.self_clearance, s);
            assert_eq!(c.within_limits, robot.within_limits(q));
            self_hits += usize::from(s <= 0.0);
        }
        match (got.collision_free, got.evaluations > h) {
            (true, _) => free += 1,
            (false, _) if got.min_waypoint_clearance > margin => unproven += 1,
            _ => contacts += 1,
        }
    }
    // The cases must cover every outcome.
    assert!(
        contacts > 50 && free > 50 && unproven > 5 && self_hits > 5,
        "contacts {contacts}, free {free}, unproven {unproven}, self hits {self_hits}"
    );
    println!(
        "contacts {contacts}, free {free}, unproven/swept {unproven}, self hits {self_hits}, \
         clearances bit-equal {} of {}",
        bit_equal.0, bit_equal.1
    );
}

/// The bench batch itself: the same results as the reference, trajectory by trajectory.
#[test]
fn bench_batch_matches_the_plain_reference() {
    use crate::bench::robot::{bench_trajectories, bench_world, H, K};
    let robot = panda();
    let mut rng = ChaCha8Rng::seed_from_u64(20261203);
    let world = bench_world(&mut rng);
    let trajs = bench_trajectories(&robot, &mut rng);
    let mut checker = Checker::new(robot.clone());
    let mut out = vec![reference_trajectory(&checker, &world, &trajs[..robot.dof()], 0.0); K];
    checker.check_batch(&world, &trajs, H, 0.0, &mut out);
    for (k, (traj, got)) in trajs.chunks_exact(H * robot.dof()).zip(&out).enumerate() {
        let want = reference_trajectory(&checker, &world, traj, 0.0);
        assert_eq!(got.collision_free, want.collision_free, "{k}");
        assert_eq!(got.first_contact, want.first_contact, "{k}");
        assert_eq!(got.evaluations, want.evaluations, "{k}");
        assert_close(
            "waypoint",
            got.min_waypoint_clearance,
            want.min_waypoint_clearance,
        );
        assert_close("swept", got.min_swept_clearance, want.min_swept_clearance);
    }
    assert_eq!(out.iter().map(|o| o.evaluations).sum::<usize>(), 7679);
}
