//! The robot layer against code we did not write:
//! - forward kinematics of every link and the tip Jacobian against Pinocchio 4.1.0 on the
//!   Franka Panda URDF (pybullet_data) and the planar arm URDF, 1,000 random configurations each
//!   (`tests/fixtures/robot_fk.{safetensors,json}`);
//! - sphere-box, sphere-cylinder and sphere-sphere signed distances against coal 3.0.3
//!   (`tests/fixtures/sphere_distances.json`);
//! - IK: FK(IK(x)) within 1e-4 m for 1,000 reachable random Panda targets (targets from FK of
//!   random configurations, which Pinocchio verifies above).
//!
//! Regenerate the fixtures with `tools/gen_robot_fixtures.py` (pinned versions inside).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{Device, Tensor};
use nalgebra::{Isometry3, Matrix3, Translation3, UnitQuaternion, Vector3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use diffusion_planner::robot::{
    Checker, IkOptions, IkSolver, IkTarget, MarkerKind, Obstacle, Robot, RobotFiles, World,
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[derive(Deserialize)]
struct Meta {
    urdf: String,
    base: String,
    tip: String,
    joints: Vec<String>,
    links: Vec<String>,
    n: usize,
}

fn tensors() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(
        root().join("tests/fixtures/robot_fk.safetensors"),
        &Device::Cpu,
    )
    .expect("tests/fixtures/robot_fk.safetensors (run tools/gen_robot_fixtures.py)")
}

fn f64s(t: &HashMap<String, Tensor>, name: &str) -> Vec<f64> {
    t[name].flatten_all().unwrap().to_vec1::<f64>().unwrap()
}

fn load_robot(meta: &Meta) -> Robot {
    let mut files = RobotFiles::urdf(root().join(&meta.urdf));
    files.base_link = Some(meta.base.clone());
    files.tip_link = Some(meta.tip.clone());
    Robot::load(&files).unwrap()
}

fn check_fk(name: &str) {
    let metas: HashMap<String, Meta> = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/robot_fk.json")).unwrap(),
    )
    .unwrap();
    let meta = &metas[name];
    let t = tensors();
    let robot = load_robot(meta);
    assert_eq!(robot.joint_names(), meta.joints);
    let dof = robot.dof();
    let qs = f64s(&t, &format!("{name}/q"));
    let link_pos = f64s(&t, &format!("{name}/link_pos"));
    let tip_rot = f64s(&t, &format!("{name}/tip_rot"));
    let jac = f64s(&t, &format!("{name}/tip_jacobian"));
    let link_index: Vec<usize> = meta
        .links
        .iter()
        .map(|l| robot.link_index(l).unwrap_or_else(|| panic!("link {l}")))
        .collect();
    let nl = meta.links.len();
    let mut frames = robot.frames_scratch();
    let mut links = vec![diffusion_planner::robot::Frame::IDENTITY; robot.links.len()];
    let mut cols = vec![[0.0; 6]; dof];
    let (mut worst_pos, mut worst_rot, mut worst_jac) = (0.0f64, 0.0f64, 0.0f64);
    for n in 0..meta.n {
        let q = &qs[n * dof..(n + 1) * dof];
        robot.body_frames(q, &mut frames);
        robot.link_frames(&frames, &mut links);
        for (k, &li) in link_index.iter().enumerate() {
            for a in 0..3 {
                let want = link_pos[(n * nl + k) * 3 + a];
                worst_pos = worst_pos.max((links[li].translation[a] - want).abs());
            }
        }
        let tip = robot.tip_frame(&frames);
        for r in 0..3 {
            for c in 0..3 {
                worst_rot =
                    worst_rot.max((tip.rotation[(r, c)] - tip_rot[n * 9 + r * 3 + c]).abs());
            }
        }
        robot.tip_jacobian(&frames, &mut cols);
        for r in 0..6 {
            for (j, col) in cols.iter().enumerate() {
                let want = jac[(n * 6 + r) * dof + j];
                worst_jac = worst_jac.max((col[r] - want).abs());
            }
        }
    }
    println!("{name}: max |link position error| {worst_pos:.2e} m, tip rotation {worst_rot:.2e}, Jacobian {worst_jac:.2e}");
    assert!(
        worst_pos <= 1e-9,
        "{name}: link positions off by {worst_pos:e} m"
    );
    assert!(
        worst_rot <= 1e-9,
        "{name}: tip rotation off by {worst_rot:e}"
    );
    assert!(worst_jac <= 1e-9, "{name}: Jacobian off by {worst_jac:e}");
}

#[test]
fn panda_fk_and_jacobian_match_pinocchio() {
    check_fk("panda");
}

#[test]
fn planar_fk_and_jacobian_match_pinocchio() {
    check_fk("planar");
}

#[derive(Deserialize)]
struct DistanceCase {
    kind: String,
    scale: [f64; 3],
    position: [f64; 3],
    rotation: [[f64; 3]; 3],
    sphere_center: [f64; 3],
    sphere_radius: f64,
    distance: f64,
}

#[derive(Deserialize)]
struct DistanceFile {
    cases: Vec<DistanceCase>,
}

#[test]
fn sphere_primitive_distances_match_coal() {
    let file: DistanceFile = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/sphere_distances.json")).unwrap(),
    )
    .unwrap();
    let mut worst: HashMap<&str, f64> = HashMap::new();
    let mut inside = 0;
    for case in &file.cases {
        let m = case.rotation;
        let r = Matrix3::new(
            m[0][0], m[0][1], m[0][2], m[1][0], m[1][1], m[1][2], m[2][0], m[2][1], m[2][2],
        );
        let rotation = UnitQuaternion::from_matrix(&r);
        let pose =
            Isometry3::from_parts(Translation3::from(Vector3::from(case.position)), rotation);
        let kind = match case.kind.as_str() {
            "box" => MarkerKind::Cube,
            "cylinder" => MarkerKind::Cylinder,
            _ => MarkerKind::Sphere,
        };
        let obstacle = Obstacle::from_marker(kind, &pose, case.scale).unwrap();
        let world = World::new(vec![obstacle]);
        let (d, _, _) = world
            .sphere_clearance(&Vector3::from(case.sphere_center), case.sphere_radius)
            .unwrap();
        let err = (d - case.distance).abs();
        let w = worst.entry(case.kind.as_str()).or_insert(0.0);
        *w = w.max(err);
        inside += usize::from(case.distance < 0.0);
    }
    println!("max |signed distance - coal| by shape: {worst:?}; {inside} penetrating cases");
    assert!(
        inside >= 30,
        "the fixture must exercise penetration ({inside} cases)"
    );
    for (kind, err) in worst {
        assert!(err < 1e-9, "{kind}: off by {err:e} m");
    }
}

fn panda() -> Robot {
    let dir = root().join("urdf/panda");
    let mut files = RobotFiles::urdf(dir.join("panda.urdf"));
    files.base_link = Some("panda_link0".into());
    files.tip_link = Some("panda_hand".into());
    files.joint_limits = Some(dir.join("joint_limits.yaml"));
    files.spheres = Some(dir.join("spheres.yaml"));
    files.srdf = Some(dir.join("panda.srdf"));
    Robot::load(&files).unwrap()
}

#[test]
fn panda_ik_reaches_random_targets() {
    let robot = panda();
    let mut solver = IkSolver::new(&robot);
    let mut rng = ChaCha8Rng::seed_from_u64(20261203);
    let mut frames = robot.frames_scratch();
    let options = IkOptions::default();
    let (mut reached, mut worst, mut solutions) = (0, 0.0f64, 0);
    let n = 1000;
    let start = std::time::Instant::now();
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
        let result = solver.solve(&robot, &target, None, &options);
        if let Some(best) = result.solutions.first() {
            robot.body_frames(&best.q, &mut frames);
            let err = (robot.tip_frame(&frames).translation - target.position).norm();
            worst = worst.max(err);
            assert!(robot.within_limits(&best.q));
            reached += usize::from(err <= 1e-4);
            solutions += result.solutions.len();
        }
    }
    let per_call = start.elapsed().as_secs_f64() / n as f64;
    println!(
        "IK: {reached}/{n} reachable targets solved (FK(IK(x)) <= 1e-4 m, worst {worst:.1e} m), \
         {:.2} distinct solutions per target, {:.3} ms per call (test profile)",
        solutions as f64 / n as f64,
        per_call * 1e3
    );
    assert!(reached as f64 >= 0.99 * n as f64, "{reached}/{n}");
    assert!(worst <= 1e-4);
}

#[test]
fn panda_unreachable_target_is_reported() {
    let robot = panda();
    let mut solver = IkSolver::new(&robot);
    let target = IkTarget {
        position: Vector3::new(2.0, 0.0, 0.5),
        orientation: None,
    };
    let result = solver.solve(&robot, &target, None, &IkOptions::default());
    assert!(!result.reachable());
    assert!(
        result.best_position_error_m > 0.8,
        "{}",
        result.best_position_error_m
    );
}

#[test]
fn panda_ready_pose_is_free_and_checks_find_contact() {
    let robot = Arc::new(panda());
    let ready = [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785];
    let mut frames = robot.frames_scratch();
    robot.body_frames(&ready, &mut frames);
    let hand = robot.tip_frame(&frames).translation;
    // Pinocchio puts panda_hand at (0.307, 0, 0.5903) in the ready pose.
    assert!(
        (hand - Vector3::new(0.307, 0.0, 0.5903)).norm() < 1e-3,
        "{hand}"
    );
    let mut checker = Checker::new(robot.clone());
    let empty = World::default();
    let c = checker.check_config(&empty, &ready);
    assert!(c.self_clearance > 0.0, "ready pose self-collides: {c:?}");
    assert!(c.within_limits);
    let world = World::new(vec![Obstacle::sphere([hand.x, hand.y, hand.z], 0.05)]);
    let c = checker.check_config(&world, &ready);
    assert!(c.world_clearance < 0.0);
}

#[allow(dead_code)]
fn _path(_: &Path) {}
