//! `dplan robot`: what the planner sees of a robot, for people bringing their own arm.
//!
//! `dplan robot --urdf U [--spheres S] [--srdf X] [--joint-limits L] [--base B --tip T] CMD`
//! - `check`: validates the files; prints the chain, the limits and the sphere count;
//! - `fk Q...`: link frames, sphere centres and the tip Jacobian (JSON);
//! - `ik X Y Z [--rpy R P Y]`: the distinct IK solutions found (JSON);
//! - `spheres --propose --out FILE`: spheres from the URDF's collision geometry;
//! - `show --png OUT [--q Q...]`: the arm and its spheres in three views.

mod show;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Subcommand};
use nalgebra::{Rotation3, UnitQuaternion, Vector3};
use serde_json::json;

use crate::robot::propose::propose_spheres;
use crate::robot::spheres::spheres_to_yaml;
use crate::robot::urdf::Urdf;
use crate::robot::{
    Checker, Frame, IkOptions, IkSolver, IkTarget, JointKind, Robot, RobotFiles, World,
};
use crate::{Error, Result};

/// Arguments of `dplan robot`.
#[derive(Debug, Clone, Args)]
pub struct RobotArgs {
    /// The URDF file (plain XML; expand xacro first).
    #[arg(long)]
    pub urdf: PathBuf,
    /// Collision spheres (cuRobo `collision_spheres` layout).
    #[arg(long)]
    pub spheres: Option<PathBuf>,
    /// SRDF with `<disable_collisions>` pairs.
    #[arg(long)]
    pub srdf: Option<PathBuf>,
    /// MoveIt joint_limits.yaml.
    #[arg(long = "joint-limits")]
    pub joint_limits: Option<PathBuf>,
    /// Base link (default: the URDF's root link).
    #[arg(long)]
    pub base: Option<String>,
    /// Tip link (default: the only leaf link).
    #[arg(long)]
    pub tip: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: RobotCommand,
}

/// `dplan robot` commands.
#[derive(Debug, Clone, Subcommand)]
pub enum RobotCommand {
    /// Validate the files; print the chain, the limits and the sphere count.
    Check,
    /// Forward kinematics of one configuration (radians / metres, base to tip), as JSON.
    Fk {
        /// Joint positions.
        #[arg(allow_negative_numbers = true, required = true)]
        q: Vec<f64>,
    },
    /// Inverse kinematics of the tip position (metres, base frame), as JSON.
    Ik {
        /// Target x.
        #[arg(allow_negative_numbers = true)]
        x: f64,
        /// Target y.
        #[arg(allow_negative_numbers = true)]
        y: f64,
        /// Target z.
        #[arg(allow_negative_numbers = true)]
        z: f64,
        /// Target orientation of the tip frame as roll pitch yaw (URDF convention), radians.
        #[arg(long, num_args = 3, allow_negative_numbers = true)]
        rpy: Option<Vec<f64>>,
        /// Seeds to try.
        #[arg(long, default_value_t = 16)]
        seeds: usize,
    },
    /// Collision spheres.
    Spheres {
        /// Propose spheres from the URDF's collision geometry (boxes, cylinders, spheres, mesh
        /// bounding boxes) of the chain's links.
        #[arg(long, required = true)]
        propose: bool,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Draw the arm with its spheres in three views (top, front, side).
    Show {
        /// Output PNG.
        #[arg(long)]
        png: PathBuf,
        /// Joint positions (default: the middle of every range, 0 for continuous joints).
        #[arg(long, num_args = 1.., allow_negative_numbers = true)]
        q: Option<Vec<f64>>,
    },
}

impl RobotArgs {
    fn files(&self) -> RobotFiles {
        RobotFiles {
            spheres: self.spheres.clone(),
            srdf: self.srdf.clone(),
            joint_limits: self.joint_limits.clone(),
            base_link: self.base.clone(),
            tip_link: self.tip.clone(),
            ..RobotFiles::urdf(&self.urdf)
        }
    }
}

/// Runs `dplan robot`; returns what to print.
pub fn run(args: &RobotArgs) -> Result<String> {
    let load = || Robot::load(&args.files());
    match &args.command {
        RobotCommand::Spheres { out, .. } => propose(args, out),
        RobotCommand::Check => Ok(check_text(&load()?)),
        RobotCommand::Fk { q } => {
            let robot = load()?;
            check_q(&robot, q)?;
            Ok(serde_json::to_string_pretty(&fk_json(&robot, q)).unwrap_or_default() + "\n")
        }
        RobotCommand::Ik {
            x,
            y,
            z,
            rpy,
            seeds,
        } => {
            let orientation = rpy
                .as_ref()
                .map(|r| Rotation3::from_euler_angles(r[0], r[1], r[2]));
            let target = IkTarget {
                position: Vector3::new(*x, *y, *z),
                orientation,
            };
            if !target.position.iter().all(|v| v.is_finite()) {
                return Err(Error::Invalid(format!(
                    "ik: target must be finite, found {x} {y} {z}"
                )));
            }
            let robot = load()?;
            let options = IkOptions {
                seeds: *seeds,
                max_solutions: *seeds,
                ..IkOptions::default()
            };
            let mut solver = IkSolver::new(&robot);
            let start = std::time::Instant::now();
            let result = solver.solve(&robot, &target, None, &options);
            let elapsed = start.elapsed().as_secs_f64();
            let mut checker = Checker::new(Arc::new(robot.clone()));
            let solutions: Vec<_> = result
                .solutions
                .iter()
                .map(|s| {
                    let c = checker.check_config(&World::default(), &s.q);
                    json!({
                        "q": s.q,
                        "position_error_m": s.position_error_m,
                        "orientation_error_rad": s.orientation_error_rad,
                        "self_clearance_m": finite_or_null(c.self_clearance),
                    })
                })
                .collect();
            let out = json!({
                "joints": robot.joint_names(),
                "target_m": [x, y, z],
                "target_rpy": rpy,
                "reachable": result.reachable(),
                "best_position_error_m": result.best_position_error_m,
                "solutions": solutions,
                "seeds": seeds,
                "iterations": result.iterations,
                "time_ms": elapsed * 1e3,
            });
            Ok(serde_json::to_string_pretty(&out).unwrap_or_default() + "\n")
        }
        RobotCommand::Show { png, q } => {
            let robot = load()?;
            let q = match q {
                Some(q) => {
                    check_q(&robot, q)?;
                    q.clone()
                }
                None => middle(&robot),
            };
            show::draw(&robot, &q, png)?;
            Ok(format!("wrote {}\n", png.display()))
        }
    }
}

fn finite_or_null(v: f64) -> serde_json::Value {
    if v.is_finite() {
        json!(v)
    } else {
        serde_json::Value::Null
    }
}

fn check_q(robot: &Robot, q: &[f64]) -> Result<()> {
    if q.len() != robot.dof() {
        return Err(Error::Invalid(format!(
            "expected {} joint positions ({:?}), found {}",
            robot.dof(),
            robot.joint_names(),
            q.len()
        )));
    }
    if let Some(v) = q.iter().find(|v| !v.is_finite()) {
        return Err(Error::Invalid(format!(
            "joint positions must be finite, found {v}"
        )));
    }
    Ok(())
}

/// The middle of every joint range (0 for continuous joints).
pub fn middle(robot: &Robot) -> Vec<f64> {
    robot
        .joints
        .iter()
        .map(|j| match j.kind {
            JointKind::Continuous => 0.0,
            _ => 0.5 * (j.limits.lower + j.limits.upper),
        })
        .collect()
}

fn check_text(robot: &Robot) -> String {
    let mut s = format!(
        "robot `{}`: chain {} -> {}, {} joints, {} links, {} collision spheres, {} self-collision sphere pairs checked\n",
        robot.name,
        robot.base_link,
        robot.tip_link,
        robot.dof(),
        robot.links.len(),
        robot.spheres.len(),
        robot.self_pairs.len()
    );
    s.push_str("joints (base to tip):\n");
    for j in &robot.joints {
        let kind = match j.kind {
            JointKind::Revolute => "revolute",
            JointKind::Continuous => "continuous",
            JointKind::Prismatic => "prismatic",
        };
        let accel = j
            .limits
            .max_acceleration
            .map(|a| format!("{a}"))
            .unwrap_or_else(|| "none (add joint_limits.yaml)".into());
        s.push_str(&format!(
            "  {:<20} {:<10} [{}, {}]  max velocity {}  max acceleration {}\n",
            j.name, kind, j.limits.lower, j.limits.upper, j.limits.max_velocity, accel
        ));
    }
    s.push_str("links (body = moving joints before it):\n");
    for (i, l) in robot.links.iter().enumerate() {
        let n = robot.spheres.iter().filter(|s| s.link == i).count();
        s.push_str(&format!(
            "  {:<20} body {}  {} spheres\n",
            l.name, l.body, n
        ));
    }
    if robot.spheres.is_empty() {
        s.push_str(
            "no collision spheres: pass --spheres (or write one with `spheres --propose`)\n",
        );
    }
    s
}

fn frame_json(f: &Frame) -> serde_json::Value {
    let q = UnitQuaternion::from_matrix(&f.rotation);
    json!({
        "position": [f.translation.x, f.translation.y, f.translation.z],
        "quaternion_xyzw": [q.i, q.j, q.k, q.w],
    })
}

fn fk_json(robot: &Robot, q: &[f64]) -> serde_json::Value {
    let mut frames = robot.frames_scratch();
    robot.body_frames(q, &mut frames);
    let mut links = vec![Frame::IDENTITY; robot.links.len()];
    robot.link_frames(&frames, &mut links);
    let mut centers = vec![Vector3::zeros(); robot.spheres.len()];
    robot.sphere_centers(&frames, &mut centers);
    let mut cols = vec![[0.0; 6]; robot.dof()];
    robot.tip_jacobian(&frames, &mut cols);
    let jacobian: Vec<Vec<f64>> = (0..6)
        .map(|r| cols.iter().map(|c| c[r]).collect())
        .collect();
    let link_map: serde_json::Map<String, serde_json::Value> = robot
        .links
        .iter()
        .zip(&links)
        .map(|(l, f)| (l.name.clone(), frame_json(f)))
        .collect();
    let spheres: Vec<_> = robot
        .spheres
        .iter()
        .zip(&centers)
        .map(|(s, c)| json!({"link": robot.links[s.link].name, "center": [c.x, c.y, c.z], "radius": s.radius}))
        .collect();
    json!({
        "joints": robot.joint_names(),
        "q": q,
        "within_limits": robot.within_limits(q),
        "base_link": robot.base_link,
        "tip_link": robot.tip_link,
        "tip": frame_json(&robot.tip_frame(&frames)),
        "tip_jacobian": jacobian,
        "links": link_map,
        "spheres": spheres,
    })
}

fn propose(args: &RobotArgs, out: &Path) -> Result<String> {
    let urdf = Urdf::from_file(&args.urdf)?;
    // The chain's links (spheres elsewhere would be refused when loading).
    let robot = Robot::from_urdf(&urdf, args.base.as_deref(), args.tip.as_deref(), None)?;
    let links: Vec<String> = robot.links.iter().map(|l| l.name.clone()).collect();
    let dir = args.urdf.parent().unwrap_or(Path::new("."));
    let spheres = propose_spheres(&urdf, Some(&links), dir)?;
    let header = format!(
        "Collision spheres proposed by `dplan robot spheres --propose` from the collision geometry of\n{} (chain {} -> {}): each box, cylinder or mesh bounding box is cut into slabs\nalong its longest side, one sphere through each slab's corners (an over-approximation).\nReview with `dplan robot show` and tighten by hand where needed.",
        args.urdf.display(),
        robot.base_link,
        robot.tip_link
    );
    crate::error::write_file(out, spheres_to_yaml(&spheres, &header))?;
    Ok(format!(
        "wrote {} spheres on {} links to {}\n",
        spheres.len(),
        links.len(),
        out.display()
    ))
}
