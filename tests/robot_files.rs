//! Robot files: the chain, limits, spheres and self-collision pairs from URDF, MoveIt
//! joint_limits.yaml, cuRobo spheres and SRDF; every kind of bad file is an error that names the
//! file, the element and what was expected. Plus the checker's swept test on the planar arm.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::path::{Path, PathBuf};
use std::sync::Arc;

use diffusion_planner::robot::{
    Checker, JointKind, Obstacle, PlanarArm, Robot, RobotDescription, RobotFiles, UrdfSource, World,
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const URDF: &str = r#"<robot name="t">
  <link name="base"/><link name="l1"/><link name="l2"/><link name="hand"/><link name="finger"/>
  <joint name="j1" type="revolute"><parent link="base"/><child link="l1"/>
    <origin xyz="0 0 0.2"/><axis xyz="0 0 1"/><limit lower="-2" upper="2" velocity="1.5"/></joint>
  <joint name="j2" type="continuous"><parent link="l1"/><child link="l2"/>
    <origin xyz="0.3 0 0"/><axis xyz="0 1 0"/><limit velocity="2"/></joint>
  <joint name="flange" type="fixed"><parent link="l2"/><child link="hand"/><origin xyz="0.2 0 0"/></joint>
  <joint name="grip" type="prismatic"><parent link="hand"/><child link="finger"/>
    <axis xyz="0 1 0"/><limit lower="0" upper="0.04" velocity="0.2"/></joint>
</robot>"#;

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        Files {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

fn xml(text: &str) -> RobotFiles {
    RobotFiles {
        urdf: UrdfSource::Xml {
            xml: text.to_string(),
            name: "robot_description".into(),
        },
        tip_link: Some("hand".into()),
        ..RobotFiles::urdf("unused")
    }
}

fn err(files: &RobotFiles) -> String {
    Robot::load(files).unwrap_err().to_string()
}

#[test]
fn chain_limits_spheres_and_pairs() {
    let f = Files::new();
    let mut files = xml(URDF);
    files.joint_limits = Some(f.write(
        "limits.yaml",
        "joint_limits:\n  j1:\n    has_acceleration_limits: true\n    max_acceleration: 5.0\n  grip: {has_velocity_limits: true, max_velocity: 0.1}\n",
    ));
    files.spheres = Some(f.write(
        "spheres.yaml",
        "collision_spheres:\n  base:\n    - {center: [0, 0, 0.05], radius: 0.05}\n  l1:\n    - {center: [0.15, 0, 0], radius: 0.04}\n  hand:\n    - {center: [0.05, 0, 0], radius: 0.03}\n",
    ));
    let robot = Robot::load(&files).unwrap();
    assert_eq!(robot.joint_names(), ["j1", "j2"]);
    assert_eq!(robot.joints[1].kind, JointKind::Continuous);
    assert!(robot.joints[1].limits.upper.is_infinite());
    assert_eq!(robot.joints[0].limits.max_acceleration, Some(5.0));
    assert_eq!(robot.joints[0].limits.max_velocity, 1.5);
    // hand is fixed to l2 (body 2): its sphere moves with joint j2.
    assert_eq!(robot.spheres[2].body, 2);
    // base-l1 and l1-hand are one joint apart (skipped); base-hand is checked.
    assert_eq!(robot.self_pairs, vec![(0, 2)]);
    // With the pair disabled in an SRDF nothing is left.
    files.srdf = Some(f.write(
        "r.srdf",
        r#"<robot name="t"><disable_collisions link1="hand" link2="base" reason="Never"/></robot>"#,
    ));
    assert!(Robot::load(&files).unwrap().self_pairs.is_empty());
    // Without skipping adjacent links every pair of different links is checked.
    files.srdf = None;
    files.skip_adjacent = false;
    assert_eq!(Robot::load(&files).unwrap().self_pairs.len(), 3);
}

#[test]
fn missing_link_is_named() {
    let mut files = xml(URDF);
    files.tip_link = Some("gripper".into());
    let e = err(&files);
    assert!(
        e.contains("robot_description")
            && e.contains("tip link `gripper`")
            && e.contains("no such <link>"),
        "{e}"
    );
    let bad = URDF.replace("<child link=\"l2\"/>", "<child link=\"l9\"/>");
    let e = err(&xml(&bad));
    assert!(
        e.contains("<joint name=\"j2\">") && e.contains("`l9` is not a <link>"),
        "{e}"
    );
}

#[test]
fn joint_without_limits_is_named() {
    let bad = URDF.replace("<limit lower=\"-2\" upper=\"2\" velocity=\"1.5\"/>", "");
    let e = err(&xml(&bad));
    assert!(
        e.contains("<joint name=\"j1\"> (line 3)") && e.contains("needs <limit"),
        "{e}"
    );
    let bad = URDF.replace("<limit velocity=\"2\"/>", "");
    let e = err(&xml(&bad));
    assert!(
        e.contains("<joint name=\"j2\">") && e.contains("velocity limit"),
        "{e}"
    );
}

#[test]
fn sphere_on_unknown_or_off_chain_link_is_named() {
    let f = Files::new();
    let mut files = xml(URDF);
    files.spheres = Some(f.write(
        "s.yaml",
        "collision_spheres:\n  wrist:\n    - {center: [0, 0, 0], radius: 0.05}\n",
    ));
    let e = err(&files);
    assert!(
        e.contains("s.yaml")
            && e.contains("collision_spheres.wrist")
            && e.contains("no link `wrist`"),
        "{e}"
    );
    files.spheres = Some(f.write(
        "s.yaml",
        "collision_spheres:\n  finger:\n    - {center: [0, 0, 0], radius: 0.05}\n",
    ));
    let e = err(&files);
    assert!(e.contains("not on the chain"), "{e}");
}

#[test]
fn srdf_pair_of_unknown_links_is_named() {
    let f = Files::new();
    let mut files = xml(URDF);
    files.srdf = Some(f.write(
        "r.srdf",
        "<robot name=\"t\">\n<disable_collisions link1=\"l1\" link2=\"elbow\" reason=\"Never\"/>\n</robot>",
    ));
    let e = err(&files);
    assert!(
        e.contains("r.srdf")
            && e.contains("<disable_collisions> (line 2)")
            && e.contains("no link `elbow`"),
        "{e}"
    );
}

#[test]
fn non_finite_values_are_named() {
    let bad = URDF.replace("xyz=\"0.3 0 0\"", "xyz=\"0.3 inf 0\"");
    let e = err(&xml(&bad));
    assert!(e.contains("<origin>") && e.contains("finite"), "{e}");
    let f = Files::new();
    let mut files = xml(URDF);
    files.joint_limits = Some(f.write(
        "l.yaml",
        "joint_limits:\n  j1: {has_velocity_limits: true, max_velocity: .inf}\n",
    ));
    let e = err(&files);
    assert!(
        e.contains("l.yaml") && e.contains("joint_limits.j1.max_velocity"),
        "{e}"
    );
    files.joint_limits = None;
    files.spheres = Some(f.write(
        "s.yaml",
        "collision_spheres:\n  l1:\n    - {center: [0, .nan, 0], radius: 0.05}\n",
    ));
    let e = err(&files);
    assert!(
        e.contains("collision_spheres.l1[0]") && e.contains("finite"),
        "{e}"
    );
}

#[test]
fn mimic_and_floating_joints_are_refused() {
    let bad = URDF.replace(
        "<limit velocity=\"2\"/>",
        "<limit velocity=\"2\"/><mimic joint=\"j1\"/>",
    );
    let e = err(&xml(&bad));
    assert!(
        e.contains("<joint name=\"j2\">") && e.contains("mimic"),
        "{e}"
    );
    let bad = URDF.replace("type=\"revolute\"", "type=\"floating\"");
    let e = err(&xml(&bad));
    assert!(
        e.contains("<joint name=\"j1\">") && e.contains("floating"),
        "{e}"
    );
    // A mimic joint off the chain is fine (the Panda's second finger).
    let mut files = xml(&URDF.replace(
        "velocity=\"0.2\"/>",
        "velocity=\"0.2\"/><mimic joint=\"j1\"/>",
    ));
    files.tip_link = Some("hand".into());
    Robot::load(&files).unwrap();
    // ... unless the chain ends after it.
    files.tip_link = Some("finger".into());
    assert!(err(&files).contains("mimic"));
}

fn planar(dir: &Path) -> Robot {
    Robot::load(&RobotFiles {
        spheres: Some(dir.join("urdf/planar_arm/spheres.yaml")),
        joint_limits: Some(dir.join("urdf/planar_arm/joint_limits.yaml")),
        base_link: Some("base_link".into()),
        tip_link: Some("tool0".into()),
        ..RobotFiles::urdf(dir.join("urdf/planar_arm.urdf"))
    })
    .unwrap()
}

/// The plain URDF agrees with the planar description the shipped model was trained on: same
/// joints, limits and tip positions (in the plane z = 0.13 m).
#[test]
fn planar_urdf_matches_the_planar_description() {
    let robot = planar(&root());
    let description = RobotDescription::planar_2link();
    let arm = PlanarArm::new(description.clone()).unwrap();
    assert_eq!(robot.joint_names(), description.joint_names());
    for (j, d) in robot.joints.iter().zip(&description.joints) {
        assert_eq!(j.limits.lower, d.lower_rad);
        assert_eq!(j.limits.upper, d.upper_rad);
        assert_eq!(j.limits.max_velocity, d.max_velocity_rad_s);
        assert_eq!(j.limits.max_acceleration, Some(d.max_acceleration_rad_s2));
    }
    let mut frames = robot.frames_scratch();
    for q in [[0.0, 0.0], [0.7, -1.2], [-3.0, 2.5], [1.9, 0.3]] {
        robot.body_frames(&q, &mut frames);
        let tip = robot.tip_frame(&frames).translation;
        let want = arm.end_effector(&q);
        assert!((tip.x - want[0]).abs() < 1e-12 && (tip.y - want[1]).abs() < 1e-12);
        assert!((tip.z - 0.13).abs() < 1e-12);
    }
}

/// The swept check finds an obstacle that both waypoints miss (a fast swing through a small
/// sphere), and passes a segment that stays clear.
#[test]
fn swept_check_does_not_tunnel() {
    let robot = Arc::new(planar(&root()));
    let mut checker = Checker::new(robot.clone());
    // A small obstacle on the arc of the tip between q = 0 and q = 1.2 (tip radius 0.9 m).
    let a = 0.6f64;
    let world = World::new(vec![Obstacle::sphere(
        [0.9 * a.cos(), 0.9 * a.sin(), 0.13],
        0.02,
    )]);
    let start = [0.0, 0.0];
    let end = [1.2, 0.0];
    assert!(checker.check_config(&world, &start).world_clearance > 0.1);
    assert!(checker.check_config(&world, &end).world_clearance > 0.1);
    let traj = [start, end].concat();
    let result = checker.check_trajectory(&world, &traj, 0.0);
    assert!(!result.collision_free, "{result:?}");
    assert_eq!(result.first_contact, Some(0));
    // Away from the arc: free, with a proven clearance below the waypoints'.
    let world = World::new(vec![Obstacle::sphere([0.0, -0.5, 0.13], 0.05)]);
    let result = checker.check_trajectory(&world, &traj, 0.0);
    assert!(result.collision_free, "{result:?}");
    assert!(
        result.min_swept_clearance > 0.0
            && result.min_swept_clearance <= result.min_waypoint_clearance
    );
}

/// Soundness of the swept check on the Panda: over random segments among random obstacles,
/// whenever dense sampling (1,000 configurations per segment) finds a contact the swept check
/// reports one too (it never tunnels); and a proven clearance is never above a sampled one.
#[test]
fn swept_check_is_sound_on_the_panda() {
    use diffusion_planner::bench::robot::{bench_world, panda};
    use rand::{Rng, SeedableRng};
    let robot = Arc::new(panda(&root()).unwrap());
    let mut checker = Checker::new(robot.clone());
    let mut dense = Checker::new(robot.clone());
    dense.exact_below_m = f64::INFINITY; // exact clearances
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let (mut dense_hits, mut caught, mut free) = (0, 0, 0);
    for _ in 0..60 {
        let world = bench_world(&mut rng);
        let a: Vec<f64> = robot
            .joints
            .iter()
            .map(|j| rng.random_range(j.limits.lower..=j.limits.upper))
            .collect();
        let b: Vec<f64> = robot
            .joints
            .iter()
            .zip(&a)
            .map(|(j, v)| {
                (v + rng.random_range(-0.6f64..0.6)).clamp(j.limits.lower, j.limits.upper)
            })
            .collect();
        let traj = [a.clone(), b.clone()].concat();
        let verdict = checker.check_trajectory(&world, &traj, 0.0);
        let mut min_sampled = f64::INFINITY;
        for i in 0..=1000 {
            let t = i as f64 / 1000.0;
            let q: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x + t * (y - x)).collect();
            min_sampled = min_sampled.min(dense.check_config(&world, &q).clearance());
        }
        if min_sampled <= 0.0 {
            dense_hits += 1;
            assert!(
                !verdict.collision_free,
                "tunnelled: sampled clearance {min_sampled}"
            );
            caught += 1;
        } else if verdict.collision_free {
            free += 1;
            assert!(verdict.min_swept_clearance <= min_sampled + 1e-12);
        }
    }
    println!("{dense_hits} segments in contact (all caught: {caught}), {free} proven free");
    assert!(
        dense_hits > 0 && free > 0,
        "the test must see both outcomes"
    );
}
