//! `dplan bench --robot`: the robot layer's hot paths on the Franka Panda (urdf/panda/):
//! - scoring K = 32 candidates x H = 32 waypoints: FK of every sphere, limits, self-collision
//!   and the swept check against 10 obstacles (4 spheres, 3 boxes, 3 cylinders), one core;
//! - IK of random reachable tip positions (several seeds, distinct solutions).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use nalgebra::{Isometry3, Translation3, UnitQuaternion};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::robot::{
    Checker, IkOptions, IkSolver, IkTarget, MarkerKind, Obstacle, Robot, RobotFiles,
    TrajectoryCheck, World,
};
use crate::Result;

/// Candidates per scoring call.
pub const K: usize = 32;
/// Waypoints per candidate.
pub const H: usize = 32;

/// What `dplan bench --robot` measured.
#[derive(Debug, Clone, Serialize)]
pub struct RobotBenchReport {
    /// CPU model name (/proc/cpuinfo) and whether it has AVX-512.
    pub cpu: String,
    /// Spheres of the Panda model.
    pub spheres: usize,
    /// Self-collision sphere pairs checked.
    pub self_pairs: usize,
    /// Obstacles in the scene.
    pub obstacles: usize,
    /// Median time of one K x H scoring call, ms (one thread).
    pub score_median_ms: f64,
    /// Fastest scoring call, ms.
    pub score_min_ms: f64,
    /// Candidates found collision-free (of K, averaged over calls).
    pub free_fraction: f64,
    /// Configurations checked per call (waypoints + swept-check midpoints).
    pub evaluations_per_call: f64,
    /// IK targets tried.
    pub ik_targets: usize,
    /// Fraction solved (FK(IK(x)) within 1e-4 m).
    pub ik_success: f64,
    /// Median time per IK call, ms.
    pub ik_median_ms: f64,
    /// Mean time per IK call, ms.
    pub ik_mean_ms: f64,
    /// Mean distinct solutions per solved target.
    pub ik_solutions_mean: f64,
    /// Build profile of this binary.
    pub profile: &'static str,
}

/// The Panda of `urdf/panda/` below `root`.
pub fn panda(root: &Path) -> Result<Robot> {
    let dir = root.join("urdf/panda");
    Robot::load(&RobotFiles {
        joint_limits: Some(dir.join("joint_limits.yaml")),
        spheres: Some(dir.join("spheres.yaml")),
        srdf: Some(dir.join("panda.srdf")),
        base_link: Some("panda_link0".into()),
        tip_link: Some("panda_hand".into()),
        ..RobotFiles::urdf(dir.join("panda.urdf"))
    })
}

/// Ten obstacles around the Panda's workspace (seeded).
pub fn bench_world(rng: &mut ChaCha8Rng) -> World {
    let mut obstacles = Vec::new();
    for i in 0..10 {
        // Centres 0.45 .. 0.8 m from the base axis, 0 .. 0.9 m high.
        let angle = rng.random_range(-std::f64::consts::PI..std::f64::consts::PI);
        let r = rng.random_range(0.45..0.8);
        let pose = Isometry3::from_parts(
            Translation3::new(r * angle.cos(), r * angle.sin(), rng.random_range(0.0..0.9)),
            UnitQuaternion::from_euler_angles(
                rng.random_range(-1.0..1.0),
                rng.random_range(-1.0..1.0),
                rng.random_range(-1.0..1.0),
            ),
        );
        let (kind, scale) = match i % 3 {
            0 => {
                let d = rng.random_range(0.1..0.2);
                (MarkerKind::Sphere, [d, d, d])
            }
            1 => (
                MarkerKind::Cube,
                [
                    rng.random_range(0.05..0.2),
                    rng.random_range(0.05..0.2),
                    rng.random_range(0.05..0.2),
                ],
            ),
            _ => {
                let d = rng.random_range(0.05..0.15);
                (MarkerKind::Cylinder, [d, d, rng.random_range(0.1..0.3)])
            }
        };
        if let Ok(o) = Obstacle::from_marker(kind, &pose, scale) {
            obstacles.push(o);
        }
    }
    World::new(obstacles)
}

/// K candidate trajectories of H waypoints from one start: straight joint-space lines to
/// random goals with a smooth bump, clamped to the limits (`K x H x dof`).
pub fn bench_trajectories(robot: &Robot, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let dof = robot.dof();
    let start = [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785];
    let mut out = Vec::with_capacity(K * H * dof);
    for _ in 0..K {
        let goal: Vec<f64> = robot
            .joints
            .iter()
            .zip(&start)
            .map(|(j, s)| {
                (s + rng.random_range(-0.8f64..0.8)).clamp(j.limits.lower, j.limits.upper)
            })
            .collect();
        let bump: Vec<f64> = (0..dof).map(|_| rng.random_range(-0.3..0.3)).collect();
        for w in 0..H {
            let t = w as f64 / (H - 1) as f64;
            for (j, joint) in robot.joints.iter().enumerate() {
                let v = start[j]
                    + t * (goal[j] - start[j])
                    + bump[j] * (std::f64::consts::PI * t).sin();
                out.push(v.clamp(joint.limits.lower, joint.limits.upper));
            }
        }
    }
    out
}

fn cpu() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let avx512 = info
        .lines()
        .any(|l| l.starts_with("flags") && l.contains("avx512f"));
    format!(
        "{model} ({})",
        if avx512 { "AVX-512" } else { "no AVX-512" }
    )
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs the robot benchmarks on the Panda files below `root` (the source tree).
pub fn run(root: &Path, iterations: usize) -> Result<RobotBenchReport> {
    let robot = Arc::new(panda(root)?);
    let mut rng = ChaCha8Rng::seed_from_u64(20261203);
    let world = bench_world(&mut rng);
    let trajs = bench_trajectories(&robot, &mut rng);
    let mut checker = Checker::new(robot.clone());
    let mut out = vec![
        TrajectoryCheck {
            collision_free: false,
            within_limits: false,
            min_waypoint_clearance: 0.0,
            min_swept_clearance: 0.0,
            first_contact: None,
            evaluations: 0,
        };
        K
    ];
    let mut times = Vec::with_capacity(iterations);
    let (mut free, mut evals) = (0usize, 0usize);
    for _ in 0..iterations.max(1) {
        let t0 = Instant::now();
        checker.check_batch(&world, &trajs, H, 0.0, &mut out);
        times.push(t0.elapsed().as_secs_f64() * 1e3);
        free += out
            .iter()
            .filter(|o| o.collision_free && o.within_limits)
            .count();
        evals += out.iter().map(|o| o.evaluations).sum::<usize>();
    }
    let calls = times.len();
    let score_min_ms = times.iter().cloned().fold(f64::INFINITY, f64::min);
    let score_median_ms = median(&mut times);

    let mut solver = IkSolver::new(&robot);
    let options = IkOptions::default();
    let mut frames = robot.frames_scratch();
    let n = 300;
    let (mut ok, mut sols) = (0usize, 0usize);
    let mut ik_times = Vec::with_capacity(n);
    for _ in 0..n {
        let q: Vec<f64> = robot
            .joints
            .iter()
            .map(|j| rng.random_range(j.limits.lower..=j.limits.upper))
            .collect();
        robot.body_frames(&q, &mut frames);
        let target = IkTarget {
            position: robot.tip_frame(&frames).translation,
            orientation: None,
        };
        let t0 = Instant::now();
        let result = solver.solve(&robot, &target, None, &options);
        ik_times.push(t0.elapsed().as_secs_f64() * 1e3);
        if let Some(s) = result.solutions.first() {
            robot.body_frames(&s.q, &mut frames);
            if (robot.tip_frame(&frames).translation - target.position).norm() <= 1e-4 {
                ok += 1;
                sols += result.solutions.len();
            }
        }
    }
    let ik_mean_ms = ik_times.iter().sum::<f64>() / n as f64;
    Ok(RobotBenchReport {
        cpu: cpu(),
        spheres: robot.spheres.len(),
        self_pairs: robot.self_pairs.len(),
        obstacles: world.obstacles.len(),
        score_median_ms,
        score_min_ms,
        free_fraction: free as f64 / (calls * K) as f64,
        evaluations_per_call: evals as f64 / calls as f64,
        ik_targets: n,
        ik_success: ok as f64 / n as f64,
        ik_median_ms: median(&mut ik_times),
        ik_mean_ms,
        ik_solutions_mean: sols as f64 / ok.max(1) as f64,
        profile: if cfg!(debug_assertions) {
            "dev"
        } else {
            "release"
        },
    })
}

impl RobotBenchReport {
    /// A human-readable summary.
    pub fn text(&self) -> String {
        format!(
            "robot layer on the Franka Panda ({} spheres, {} self pairs), {} build, {}\n\
             scoring K={K} x H={H} (FK of every sphere, limits, self-collision, swept vs {} obstacles): \
             median {:.3} ms, min {:.3} ms per call on one core (target < 1 ms); \
             {:.0}% of candidates free, {:.0} configurations checked per call\n\
             IK (position, {} random reachable targets): {:.1}% solved within 1e-4 m, median {:.3} ms, \
             mean {:.3} ms per call (target < 1 ms), {:.1} distinct solutions per target\n",
            self.spheres,
            self.self_pairs,
            self.profile,
            self.cpu,
            self.obstacles,
            self.score_median_ms,
            self.score_min_ms,
            100.0 * self.free_fraction,
            self.evaluations_per_call,
            self.ik_targets,
            100.0 * self.ik_success,
            self.ik_median_ms,
            self.ik_mean_ms,
            self.ik_solutions_mean
        )
    }
}
