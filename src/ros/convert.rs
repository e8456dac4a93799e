//! Conversions between r2r messages and the node's plain types: inputs in
//! ([`super::inputs`]), trajectories, candidate markers and diagnostics out.

use r2r::builtin_interfaces::msg::{Duration as RosDuration, Time};
use r2r::diagnostic_msgs::msg::{DiagnosticArray, DiagnosticStatus, KeyValue};
use r2r::geometry_msgs::msg::{Point, PoseStamped};
use r2r::sensor_msgs::msg::JointState;
use r2r::std_msgs::msg::{ColorRGBA, Header};
use r2r::trajectory_msgs::msg::{JointTrajectory, JointTrajectoryPoint};
use r2r::visualization_msgs::msg::{Marker, MarkerArray};

use super::executor::CommandPoint;
use super::inputs::{marker, GoalIn, JointStateIn, MarkerIn};
use super::report::StatusReport;
use crate::planning::PlanOutcome;
use crate::robot::PlanarArm;
use crate::{Error, Result};

/// Namespace of the candidate markers.
pub const CANDIDATES_NS: &str = "candidates";
/// Line widths (m) of rejected, valid and chosen candidates.
pub const WIDTH_REJECTED_M: f64 = 0.003;
pub const WIDTH_VALID_M: f64 = 0.006;
pub const WIDTH_CHOSEN_M: f64 = 0.015;

/// Mode colours (matplotlib's tab10), RGB.
const PALETTE: [[f32; 3]; 10] = [
    [0.122, 0.467, 0.706],
    [1.000, 0.498, 0.055],
    [0.173, 0.627, 0.173],
    [0.839, 0.153, 0.157],
    [0.580, 0.404, 0.741],
    [0.549, 0.337, 0.294],
    [0.890, 0.467, 0.761],
    [0.498, 0.498, 0.498],
    [0.737, 0.741, 0.133],
    [0.090, 0.745, 0.812],
];
const REJECTED_RGB: [f32; 3] = [0.6, 0.6, 0.6];

/// Seconds as a ROS time (negative clamps to 0).
pub fn to_time(secs: f64) -> Time {
    let (sec, nanosec) = split_secs(secs.max(0.0));
    Time { sec, nanosec }
}

/// Seconds as a ROS duration (>= 0).
pub fn to_duration(secs: f64) -> RosDuration {
    let (sec, nanosec) = split_secs(secs.max(0.0));
    RosDuration { sec, nanosec }
}

fn split_secs(secs: f64) -> (i32, u32) {
    let total_ns = (secs * 1e9).round();
    let total_ns = if total_ns.is_finite() {
        total_ns.min(i32::MAX as f64 * 1e9)
    } else {
        0.0
    } as i64;
    (
        (total_ns / 1_000_000_000) as i32,
        (total_ns % 1_000_000_000) as u32,
    )
}

/// A ROS time in seconds.
pub fn time_secs(t: &Time) -> f64 {
    f64::from(t.sec) + f64::from(t.nanosec) * 1e-9
}

/// A ROS duration in seconds.
pub fn duration_secs(d: &RosDuration) -> f64 {
    f64::from(d.sec) + f64::from(d.nanosec) * 1e-9
}

/// A clock reading (`r2r::Clock::get_now`) in seconds.
pub fn clock_secs(now: std::time::Duration) -> f64 {
    now.as_secs_f64()
}

pub fn joint_state_in(msg: &JointState) -> JointStateIn {
    JointStateIn {
        stamp_secs: time_secs(&msg.header.stamp),
        names: msg.name.clone(),
        positions: msg.position.clone(),
        velocities_len: msg.velocity.len(),
        efforts_len: msg.effort.len(),
    }
}

pub fn goal_in(msg: &PoseStamped) -> GoalIn {
    let p = &msg.pose.position;
    GoalIn {
        frame_id: msg.header.frame_id.clone(),
        position_m: [p.x, p.y, p.z],
    }
}

pub fn markers_in(msg: &MarkerArray) -> Vec<MarkerIn> {
    msg.markers
        .iter()
        .map(|m| MarkerIn {
            ns: m.ns.clone(),
            id: m.id,
            kind: m.type_,
            action: m.action,
            frame_id: m.header.frame_id.clone(),
            position_m: [m.pose.position.x, m.pose.position.y, m.pose.position.z],
            scale_m: [m.scale.x, m.scale.y, m.scale.z],
            lifetime_secs: duration_secs(&m.lifetime),
        })
        .collect()
}

/// Maps robot-order values to the controller's joint order (`params.joints`).
#[derive(Debug, Clone, PartialEq)]
pub struct JointOrder {
    names: Vec<String>,
    /// For each controller joint, its index in robot order.
    robot_index: Vec<usize>,
}

impl JointOrder {
    /// `controller`: the published names, in order; `robot`: the plan's order. Both must hold
    /// the same names.
    pub fn new(controller: &[String], robot: &[String]) -> Result<Self> {
        let robot_index = controller
            .iter()
            .map(|name| {
                robot.iter().position(|r| r == name).ok_or_else(|| {
                    Error::config(
                        "joints",
                        format!("`{name}` is not a robot joint (robot: {robot:?})"),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if controller.len() != robot.len() {
            return Err(Error::config(
                "joints",
                format!("lists {controller:?}, the robot has {robot:?}"),
            ));
        }
        Ok(JointOrder {
            names: controller.to_vec(),
            robot_index,
        })
    }

    fn reorder(&self, values: &[f64]) -> Vec<f64> {
        self.robot_index
            .iter()
            .map(|&i| values.get(i).copied().unwrap_or(f64::NAN))
            .collect()
    }
}

/// The trajectory message: `stamp_secs` (node clock; `None`: stamp 0, "start when received"),
/// every controller joint, positions and velocities.
pub fn trajectory(
    points: &[CommandPoint],
    order: &JointOrder,
    stamp_secs: Option<f64>,
) -> JointTrajectory {
    JointTrajectory {
        header: Header {
            stamp: stamp_secs.map(to_time).unwrap_or_default(),
            frame_id: String::new(),
        },
        joint_names: order.names.clone(),
        points: points
            .iter()
            .map(|p| JointTrajectoryPoint {
                positions: order.reorder(&p.positions),
                velocities: order.reorder(&p.velocities),
                accelerations: vec![],
                effort: vec![],
                time_from_start: to_duration(p.time_from_start_secs),
            })
            .collect(),
    }
}

fn color(rgb: [f32; 3], alpha: f32) -> ColorRGBA {
    ColorRGBA {
        r: rgb[0],
        g: rgb[1],
        b: rgb[2],
        a: alpha,
    }
}

/// The candidate markers of one planning outcome: DELETEALL (namespace `candidates`), then one
/// LINE_STRIP per candidate along its end-effector path (forward kinematics) in `frame_id`:
/// colour by mode (grey when rejected), the chosen one wider and opaque. A candidate with a
/// non-finite point gets no marker (RViz would reject the whole marker).
pub fn candidate_markers(outcome: &PlanOutcome, arm: &PlanarArm, frame_id: &str) -> MarkerArray {
    let header = Header {
        stamp: Time::default(),
        frame_id: frame_id.to_string(),
    };
    let mut markers = vec![Marker {
        header: header.clone(),
        ns: CANDIDATES_NS.to_string(),
        action: marker::DELETEALL,
        ..Default::default()
    }];
    for candidate in &outcome.candidates {
        let points: Vec<Point> = candidate
            .path
            .waypoints()
            .map(|q| {
                let p = arm.end_effector(q);
                Point {
                    x: p[0],
                    y: p[1],
                    z: 0.0,
                }
            })
            .collect();
        if points.iter().any(|p| !(p.x.is_finite() && p.y.is_finite())) {
            continue;
        }
        let chosen = outcome.chosen == Some(candidate.index);
        let rgb = match candidate.mode {
            Some(mode) if candidate.valid => PALETTE[mode % PALETTE.len()],
            _ => REJECTED_RGB,
        };
        let (width, alpha) = if chosen {
            (WIDTH_CHOSEN_M, 1.0)
        } else if candidate.valid {
            (WIDTH_VALID_M, 0.6)
        } else {
            (WIDTH_REJECTED_M, 0.3)
        };
        let mut m = Marker {
            header: header.clone(),
            ns: CANDIDATES_NS.to_string(),
            id: i32::try_from(candidate.index).unwrap_or(i32::MAX),
            type_: marker::LINE_STRIP,
            action: marker::ADD,
            color: color(rgb, alpha),
            points,
            ..Default::default()
        };
        m.pose.orientation.w = 1.0;
        m.scale.x = width;
        markers.push(m);
    }
    MarkerArray { markers }
}

/// The diagnostics message.
pub fn diagnostics(reports: &[StatusReport], hardware_id: &str, now_secs: f64) -> DiagnosticArray {
    DiagnosticArray {
        header: Header {
            stamp: to_time(now_secs),
            frame_id: String::new(),
        },
        status: reports
            .iter()
            .map(|r| DiagnosticStatus {
                level: r.level.as_byte(),
                name: r.name.clone(),
                message: r.message.clone(),
                hardware_id: hardware_id.to_string(),
                values: r
                    .values
                    .iter()
                    .map(|(key, value)| KeyValue {
                        key: key.clone(),
                        value: value.clone(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
