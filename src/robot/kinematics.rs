//! Forward and inverse kinematics of a planar serial arm, and its joint limits.
//!
//! Joint `i` rotates link `i` about the z axis; the absolute angle of link `i` is the sum of the
//! joint positions `q[0] + ... + q[i]` (counter-clockwise from the planning frame's x axis).
//! Joint `0` sits at the base position.

use std::f64::consts::PI;

use serde::{Deserialize, Serialize};

use super::description::RobotDescription;
use crate::Result;

/// The two inverse-kinematics solutions of a 2-link arm.
///
/// `Up` means the elbow angle `q[1] < 0`: the elbow lies on the counter-clockwise (left) side of
/// the line from the base to the end effector (above it when reaching toward +x). `Down` means
/// `q[1] >= 0` (a stretched arm, `q[1] == 0`, counts as `Down`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ElbowBranch {
    Up,
    Down,
}

impl ElbowBranch {
    /// Both branches, `Up` first.
    pub const ALL: [ElbowBranch; 2] = [ElbowBranch::Up, ElbowBranch::Down];

    /// The branch of an elbow angle (rad): `Up` iff `elbow_rad < 0`.
    pub fn of_elbow_angle(elbow_rad: f64) -> Self {
        if elbow_rad < 0.0 {
            ElbowBranch::Up
        } else {
            ElbowBranch::Down
        }
    }

    /// `elbow_up` or `elbow_down`.
    pub fn name(self) -> &'static str {
        match self {
            ElbowBranch::Up => "elbow_up",
            ElbowBranch::Down => "elbow_down",
        }
    }
}

/// One inverse-kinematics solution within the joint limits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct IkSolution {
    pub branch: ElbowBranch,
    /// `[shoulder, elbow]`, radians, inside the joint limits.
    pub positions_rad: [f64; 2],
}

/// Why inverse kinematics has no solution.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IkError {
    /// Analytic IK exists only for 2-link arms.
    #[error("analytic inverse kinematics needs a 2-link arm, this arm has {dof} joints")]
    UnsupportedDof { dof: usize },
    /// The target has a NaN or infinite coordinate.
    #[error("IK target ({x_m}, {y_m}) is not finite")]
    NonFinite { x_m: f64, y_m: f64 },
    /// The target lies outside the annulus the arm can reach.
    #[error(
        "IK target at {distance_m:.4} m from the base is unreachable \
         (reach {min_reach_m:.4} .. {max_reach_m:.4} m)"
    )]
    Unreachable {
        distance_m: f64,
        min_reach_m: f64,
        max_reach_m: f64,
    },
    /// Geometrically reachable, but the requested branch (or every branch) violates the limits.
    #[error("IK target is reachable but {branches:?} violate the joint limits")]
    OutsideJointLimits { branches: Vec<ElbowBranch> },
}

/// A planar serial arm built from a validated [`RobotDescription`].
#[derive(Debug, Clone)]
pub struct PlanarArm {
    description: RobotDescription,
    /// `lever_m[j]`: the summed lengths of links `j..`, the largest distance from joint `j` to
    /// any point of the arm beyond it.
    lever_m: Vec<f64>,
}

impl PlanarArm {
    /// Validates the description and builds the arm.
    pub fn new(description: RobotDescription) -> Result<Self> {
        description.validate()?;
        let mut lever_m = description.link_lengths_m.clone();
        for j in (0..lever_m.len().saturating_sub(1)).rev() {
            lever_m[j] += lever_m[j + 1];
        }
        Ok(PlanarArm {
            description,
            lever_m,
        })
    }

    /// The description this arm was built from.
    pub fn description(&self) -> &RobotDescription {
        &self.description
    }

    /// Number of joints.
    pub fn dof(&self) -> usize {
        self.description.joints.len()
    }

    /// Joint names in order.
    pub fn joint_names(&self) -> Vec<String> {
        self.description.joint_names()
    }

    /// Link lengths, metres.
    pub fn link_lengths_m(&self) -> &[f64] {
        &self.description.link_lengths_m
    }

    /// Link (capsule) radius, metres.
    pub fn link_radius_m(&self) -> f64 {
        self.description.link_radius_m
    }

    /// Base position in the planning frame, metres.
    pub fn base_m(&self) -> [f64; 2] {
        self.description.base_position_m
    }

    /// `lever_m()[j]`: summed length of links `j..`, metres (bounds how far joint `j` moves the
    /// arm per radian).
    pub fn lever_m(&self) -> &[f64] {
        &self.lever_m
    }

    /// Largest distance from the base the end effector reaches (arm stretched), metres.
    pub fn max_reach_m(&self) -> f64 {
        self.lever_m.first().copied().unwrap_or(0.0)
    }

    /// Smallest distance from the base the end effector reaches, ignoring joint limits, metres:
    /// `max(0, 2 * longest link - total length)`.
    pub fn min_reach_m(&self) -> f64 {
        let total = self.max_reach_m();
        let longest = self.link_lengths_m().iter().fold(0.0f64, |a, &b| a.max(b));
        (2.0 * longest - total).max(0.0)
    }

    /// Lower position limits, radians.
    pub fn lower_limits_rad(&self) -> Vec<f64> {
        self.description
            .joints
            .iter()
            .map(|j| j.lower_rad)
            .collect()
    }

    /// Upper position limits, radians.
    pub fn upper_limits_rad(&self) -> Vec<f64> {
        self.description
            .joints
            .iter()
            .map(|j| j.upper_rad)
            .collect()
    }

    /// Velocity limits, rad/s.
    pub fn max_velocities_rad_s(&self) -> Vec<f64> {
        self.description
            .joints
            .iter()
            .map(|j| j.max_velocity_rad_s)
            .collect()
    }

    /// Acceleration limits, rad/s².
    pub fn max_accelerations_rad_s2(&self) -> Vec<f64> {
        self.description
            .joints
            .iter()
            .map(|j| j.max_acceleration_rad_s2)
            .collect()
    }

    /// The first joint outside its position limits: `(joint index, value)`. NaN counts as
    /// outside. Extra or missing entries in `q` are ignored / not checked.
    pub fn limit_violation(&self, q_rad: &[f64]) -> Option<(usize, f64)> {
        self.description
            .joints
            .iter()
            .zip(q_rad)
            .enumerate()
            .find(|(_, (joint, &q))| !(q >= joint.lower_rad && q <= joint.upper_rad))
            .map(|(i, (_, &q))| (i, q))
    }

    /// True when `q` has one finite value per joint inside the limits.
    pub fn within_limits(&self, q_rad: &[f64]) -> bool {
        q_rad.len() == self.dof() && self.limit_violation(q_rad).is_none()
    }

    /// Forward kinematics of every link into `out` (cleared first): `dof + 1` points, the base,
    /// then the end of each link; the last one is the end effector. Metres.
    pub fn joint_points_into(&self, q_rad: &[f64], out: &mut Vec<[f64; 2]>) {
        out.clear();
        let mut point = self.base_m();
        out.push(point);
        let mut angle = 0.0;
        for (q, length) in q_rad.iter().zip(self.link_lengths_m()) {
            angle += q;
            point = [
                point[0] + length * angle.cos(),
                point[1] + length * angle.sin(),
            ];
            out.push(point);
        }
    }

    /// Forward kinematics of every link: the base, then the end of each link (metres).
    pub fn joint_points(&self, q_rad: &[f64]) -> Vec<[f64; 2]> {
        let mut out = Vec::with_capacity(self.dof() + 1);
        self.joint_points_into(q_rad, &mut out);
        out
    }

    /// End-effector position, metres.
    pub fn end_effector(&self, q_rad: &[f64]) -> [f64; 2] {
        let mut point = self.base_m();
        let mut angle = 0.0;
        for (q, length) in q_rad.iter().zip(self.link_lengths_m()) {
            angle += q;
            point[0] += length * angle.cos();
            point[1] += length * angle.sin();
        }
        point
    }

    /// Analytic IK of a 2-link arm for one elbow branch, inside the joint limits (the shoulder
    /// angle is shifted by ±2π when that brings it inside its limits).
    pub fn ik(&self, target_m: [f64; 2], branch: ElbowBranch) -> Result<[f64; 2], IkError> {
        let raw = self.ik_raw(target_m, branch)?;
        self.fit_limits(raw).ok_or(IkError::OutsideJointLimits {
            branches: vec![branch],
        })
    }

    /// Both IK branches (`Up` first) that lie inside the joint limits; an error when the target
    /// is unreachable or no branch fits the limits. On the boundary of the workspace the two
    /// branches coincide and both are returned.
    pub fn ik_all(&self, target_m: [f64; 2]) -> Result<Vec<IkSolution>, IkError> {
        let mut solutions = Vec::with_capacity(2);
        for branch in ElbowBranch::ALL {
            let raw = self.ik_raw(target_m, branch)?;
            if let Some(positions_rad) = self.fit_limits(raw) {
                solutions.push(IkSolution {
                    branch,
                    positions_rad,
                });
            }
        }
        if solutions.is_empty() {
            return Err(IkError::OutsideJointLimits {
                branches: ElbowBranch::ALL.to_vec(),
            });
        }
        Ok(solutions)
    }

    /// The IK solution for `target_m` nearest (joint-space distance) to `near_rad`, over both
    /// branches and every ±2π shift of each joint that lies inside its limits; `None` when the
    /// target is unreachable or no solution fits the limits.
    pub fn ik_nearest(&self, target_m: [f64; 2], near_rad: &[f64]) -> Option<[f64; 2]> {
        if near_rad.len() != 2 {
            return None;
        }
        let mut best: Option<([f64; 2], f64)> = None;
        for branch in ElbowBranch::ALL {
            let Ok(raw) = self.ik_raw(target_m, branch) else {
                continue;
            };
            let mut q = [0.0; 2];
            let mut ok = true;
            for (i, value) in raw.iter().enumerate() {
                let joint = &self.description.joints[i];
                let fitted = [*value, *value - 2.0 * PI, *value + 2.0 * PI]
                    .into_iter()
                    .filter(|v| *v >= joint.lower_rad && *v <= joint.upper_rad)
                    .min_by(|a, b| (a - near_rad[i]).abs().total_cmp(&(b - near_rad[i]).abs()));
                match fitted {
                    Some(v) => q[i] = v,
                    None => ok = false,
                }
            }
            if !ok {
                continue;
            }
            let d = (q[0] - near_rad[0]).hypot(q[1] - near_rad[1]);
            if best.is_none_or(|(_, bd)| d < bd) {
                best = Some((q, d));
            }
        }
        best.map(|(q, _)| q)
    }

    /// IK without joint limits: shoulder in (-π, π], elbow in [-π, π].
    fn ik_raw(&self, target_m: [f64; 2], branch: ElbowBranch) -> Result<[f64; 2], IkError> {
        let &[l1, l2] = self.link_lengths_m() else {
            return Err(IkError::UnsupportedDof { dof: self.dof() });
        };
        if !(target_m[0].is_finite() && target_m[1].is_finite()) {
            return Err(IkError::NonFinite {
                x_m: target_m[0],
                y_m: target_m[1],
            });
        }
        let base = self.base_m();
        let (x, y) = (target_m[0] - base[0], target_m[1] - base[1]);
        let distance_m = x.hypot(y);
        let (min_reach_m, max_reach_m) = ((l1 - l2).abs(), l1 + l2);
        const EPS_M: f64 = 1e-12;
        if distance_m > max_reach_m + EPS_M || distance_m < min_reach_m - EPS_M {
            return Err(IkError::Unreachable {
                distance_m,
                min_reach_m,
                max_reach_m,
            });
        }
        let cos_elbow =
            ((distance_m * distance_m - l1 * l1 - l2 * l2) / (2.0 * l1 * l2)).clamp(-1.0, 1.0);
        let magnitude = cos_elbow.acos();
        let elbow = match branch {
            ElbowBranch::Up => -magnitude,
            ElbowBranch::Down => magnitude,
        };
        let shoulder = y.atan2(x) - (l2 * elbow.sin()).atan2(l1 + l2 * elbow.cos());
        Ok([wrap_angle(shoulder), elbow])
    }

    /// The IK solution shifted by multiples of 2π into the limits, if possible.
    fn fit_limits(&self, raw: [f64; 2]) -> Option<[f64; 2]> {
        let mut out = raw;
        for (i, value) in out.iter_mut().enumerate() {
            let joint = self.description.joints.get(i)?;
            let fitted = [*value, *value - 2.0 * PI, *value + 2.0 * PI]
                .into_iter()
                .find(|v| *v >= joint.lower_rad && *v <= joint.upper_rad)?;
            *value = fitted;
        }
        Some(out)
    }
}

/// An angle wrapped into (-π, π].
pub fn wrap_angle(angle_rad: f64) -> f64 {
    let wrapped = (angle_rad + PI).rem_euclid(2.0 * PI) - PI;
    if wrapped <= -PI {
        wrapped + 2.0 * PI
    } else {
        wrapped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arm() -> PlanarArm {
        PlanarArm::new(RobotDescription::planar_2link()).unwrap()
    }

    #[test]
    fn ik_nearest_picks_the_branch_and_wrap_nearest_to_a_hint() {
        let arm = PlanarArm::new(RobotDescription::planar_2link()).unwrap();
        let target = arm.end_effector(&[3.0, 1.0]);
        // Near the shoulder's upper limit: the unwrapped solution, same elbow sign.
        let q = arm.ik_nearest(target, &[2.9, 0.9]).unwrap();
        assert!(
            (q[0] - 3.0).abs() < 1e-9 && (q[1] - 1.0).abs() < 1e-9,
            "{q:?}"
        );
        // The other branch when the hint has the other elbow sign.
        let q = arm.ik_nearest(target, &[-2.0, -1.0]).unwrap();
        assert!(q[1] < 0.0, "{q:?}");
        let end = arm.end_effector(&q);
        assert!((end[0] - target[0]).hypot(end[1] - target[1]) < 1e-9);
        assert!(arm.ik_nearest([5.0, 0.0], &[0.0, 0.0]).is_none());
        assert!(arm.ik_nearest(target, &[0.0]).is_none());
    }

    #[test]
    fn forward_kinematics_of_known_poses() {
        let arm = arm();
        let points = arm.joint_points(&[0.0, 0.0]);
        assert_eq!(points.len(), 3);
        assert!((points[2][0] - 0.9).abs() < 1e-12 && points[2][1].abs() < 1e-12);
        let ee = arm.end_effector(&[PI / 2.0, -PI / 2.0]);
        assert!(
            (ee[0] - 0.4).abs() < 1e-12 && (ee[1] - 0.5).abs() < 1e-12,
            "{ee:?}"
        );
        assert_eq!(
            arm.joint_points(&[0.3, 0.2])[2],
            arm.end_effector(&[0.3, 0.2])
        );
        assert!((arm.max_reach_m() - 0.9).abs() < 1e-12);
        assert!((arm.min_reach_m() - 0.1).abs() < 1e-12);
    }

    #[test]
    fn both_branches_are_returned_and_labelled() {
        let arm = arm();
        let solutions = arm.ik_all([0.6, 0.2]).unwrap();
        assert_eq!(solutions.len(), 2);
        assert_eq!(solutions[0].branch, ElbowBranch::Up);
        assert!(solutions[0].positions_rad[1] < 0.0);
        assert!(solutions[1].positions_rad[1] > 0.0);
        // Reaching toward +x with elbow up puts the elbow above the base->target line.
        let elbow = arm.joint_points(&solutions[0].positions_rad)[1];
        assert!(elbow[1] > 0.2 / 0.6 * elbow[0]);
    }

    #[test]
    fn unreachable_targets_are_typed() {
        let arm = arm();
        let err = arm.ik([1.2, 0.0], ElbowBranch::Up).unwrap_err();
        assert!(
            matches!(err, IkError::Unreachable { max_reach_m, .. } if (max_reach_m - 0.9).abs() < 1e-12)
        );
        assert!(matches!(
            arm.ik_all([0.05, 0.0]),
            Err(IkError::Unreachable { .. })
        ));
        assert!(matches!(
            arm.ik([f64::NAN, 0.0], ElbowBranch::Down),
            Err(IkError::NonFinite { .. })
        ));
        let three = PlanarArm::new(RobotDescription {
            joints: vec![RobotDescription::planar_2link().joints[0].clone(); 3]
                .into_iter()
                .enumerate()
                .map(|(i, mut j)| {
                    j.name = format!("j{i}");
                    j
                })
                .collect(),
            link_lengths_m: vec![0.3; 3],
            ..RobotDescription::planar_2link()
        })
        .unwrap();
        assert_eq!(
            three.ik([0.3, 0.0], ElbowBranch::Up),
            Err(IkError::UnsupportedDof { dof: 3 })
        );
    }

    #[test]
    fn joint_limits_restrict_branches() {
        let mut description = RobotDescription::planar_2link();
        description.joints[1].lower_rad = 0.0;
        let arm = PlanarArm::new(description).unwrap();
        let solutions = arm.ik_all([0.6, 0.2]).unwrap();
        assert_eq!(solutions.len(), 1);
        assert_eq!(solutions[0].branch, ElbowBranch::Down);
        assert!(matches!(
            arm.ik([0.6, 0.2], ElbowBranch::Up),
            Err(IkError::OutsideJointLimits { .. })
        ));
        assert_eq!(arm.limit_violation(&[0.0, -0.1]), Some((1, -0.1)));
        assert_eq!(arm.limit_violation(&[f64::NAN, 0.1]).map(|v| v.0), Some(0));
        assert!(arm.within_limits(&[0.0, 0.1]));
        assert!(!arm.within_limits(&[0.0]));
    }

    proptest! {
        #[test]
        fn fk_ik_round_trip_both_branches(
            shoulder in -3.1f64..3.1, elbow in 0.05f64..2.75, up in any::<bool>()
        ) {
            let arm = arm();
            let q = [shoulder, if up { -elbow } else { elbow }];
            let target = arm.end_effector(&q);
            let branch = ElbowBranch::of_elbow_angle(q[1]);
            let solved = arm.ik(target, branch).unwrap();
            let back = arm.end_effector(&solved);
            prop_assert!((back[0] - target[0]).hypot(back[1] - target[1]) < 1e-9);
            prop_assert!((solved[1] - q[1]).abs() < 1e-7);
            prop_assert!((wrap_angle(solved[0] - q[0])).abs() < 1e-7);
            // The other branch reaches the same point too.
            let other = match branch { ElbowBranch::Up => ElbowBranch::Down, ElbowBranch::Down => ElbowBranch::Up };
            let mirrored = arm.ik(target, other).unwrap();
            let back = arm.end_effector(&mirrored);
            prop_assert!((back[0] - target[0]).hypot(back[1] - target[1]) < 1e-9);
            prop_assert_eq!(ElbowBranch::of_elbow_angle(mirrored[1]), other);
        }
    }
}
