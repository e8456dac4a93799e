//! The geometric mode label of a joint-space path in the reference task: which side of the
//! obstacle the end effector passes, and the elbow branch at the goal.
//!
//! **Side.** Let `p_0 .. p_{T-1}` be the end-effector positions of the waypoints and `c` the
//! obstacle centre. The swept angle `θ = Σ_t atan2(a_t × a_{t+1}, a_t · a_{t+1})` with
//! `a_t = p_t - c` is the signed angle (counter-clockwise positive) that the ray from the centre
//! to the end effector turns along the path. The path passes **left** of the obstacle when
//! `θ < 0` (the end effector goes around it clockwise, keeping it on its right-hand side, i.e.
//! the obstacle is to the right of the direction of travel) and **right** when `θ > 0`; `θ = 0`
//! (a path that does not move or moves radially) has no side.
//!
//! Relation to the straight segment from `p_0` to `p_{T-1}`: that segment turns the ray by
//! `θ_s ∈ (-π, π)`, whose sign says on which side the straight motion would pass, and
//! `θ - θ_s = 2π n` where `n` is the winding number of the closed loop "path, then the segment
//! back" around the centre. A path homotopic to the straight segment (`n = 0`) has the
//! straight segment's side; one that goes around the obstacle the other way has `n = ±1` and the
//! other sign. (Each step must turn the ray by less than π, which holds for paths sampled
//! densely compared to their distance from the centre.)
//!
//! Note for a serial arm anchored at the base: the loop "arm chain at the start, end-effector
//! path, arm chain at the goal backwards" can never wind around the obstacle (the chain would
//! have to sweep through it), so for fixed start and goal *configurations* the side is fixed;
//! different sides come from different goal configurations (elbow branches) or start poses.
//!
//! **Elbow.** The branch of the elbow angle at the last waypoint ([`ElbowBranch::of_elbow_angle`]
//! of joint 1): `elbow_up` iff `q[1] < 0`.
//!
//! With several obstacles, the labelling obstacle is the one nearest to the straight segment
//! from the start end effector to the goal (as for the condition vector).

use serde::{Deserialize, Serialize};

use crate::planning::PathLabeller;
use crate::robot::{
    nearest_obstacle_to_segment, CircleObstacle, ElbowBranch, JointPath, PlanarArm,
};

/// Which side of the obstacle the end effector passes (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Left,
    Right,
}

impl Side {
    /// `left` or `right`.
    pub fn name(self) -> &'static str {
        match self {
            Side::Left => "left",
            Side::Right => "right",
        }
    }
}

/// The full geometric label of a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ModeLabel {
    pub side: Side,
    pub elbow: ElbowBranch,
}

impl ModeLabel {
    /// Every label in label-index order: `left_elbow_up`, `left_elbow_down`, `right_elbow_up`,
    /// `right_elbow_down`.
    pub fn all() -> [ModeLabel; 4] {
        [
            ModeLabel::new(Side::Left, ElbowBranch::Up),
            ModeLabel::new(Side::Left, ElbowBranch::Down),
            ModeLabel::new(Side::Right, ElbowBranch::Up),
            ModeLabel::new(Side::Right, ElbowBranch::Down),
        ]
    }

    pub fn new(side: Side, elbow: ElbowBranch) -> Self {
        ModeLabel { side, elbow }
    }

    /// E.g. `left_elbow_up`.
    pub fn name(self) -> &'static str {
        match (self.side, self.elbow) {
            (Side::Left, ElbowBranch::Up) => "left_elbow_up",
            (Side::Left, ElbowBranch::Down) => "left_elbow_down",
            (Side::Right, ElbowBranch::Up) => "right_elbow_up",
            (Side::Right, ElbowBranch::Down) => "right_elbow_down",
        }
    }

    /// Position in [`ModeLabel::all`].
    pub fn index(self) -> usize {
        let side = match self.side {
            Side::Left => 0,
            Side::Right => 2,
        };
        side + usize::from(self.elbow == ElbowBranch::Down)
    }

    /// The label with this name, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::all().into_iter().find(|l| l.name() == name)
    }
}

/// Which part of a [`ModeLabel`] a model is conditioned on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelScheme {
    /// `left`, `right`.
    Side,
    /// `elbow_up`, `elbow_down`.
    Elbow,
    /// `left_elbow_up`, `left_elbow_down`, `right_elbow_up`, `right_elbow_down`.
    #[default]
    SideElbow,
}

impl LabelScheme {
    /// The mode names in label-index order.
    pub fn names(self) -> Vec<String> {
        match self {
            LabelScheme::Side => vec!["left".into(), "right".into()],
            LabelScheme::Elbow => vec!["elbow_up".into(), "elbow_down".into()],
            LabelScheme::SideElbow => ModeLabel::all().iter().map(|l| l.name().into()).collect(),
        }
    }

    /// The name of `label` under this scheme.
    pub fn name_of(self, label: ModeLabel) -> &'static str {
        match self {
            LabelScheme::Side => label.side.name(),
            LabelScheme::Elbow => label.elbow.name(),
            LabelScheme::SideElbow => label.name(),
        }
    }

    /// The label index of `label` under this scheme (its position in [`Self::names`]).
    pub fn index_of(self, label: ModeLabel) -> usize {
        match self {
            LabelScheme::Side => usize::from(label.side == Side::Right),
            LabelScheme::Elbow => usize::from(label.elbow == ElbowBranch::Down),
            LabelScheme::SideElbow => label.index(),
        }
    }
}

/// The side measurement of a path (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SideMeasure {
    pub side: Side,
    /// `θ`: signed angle swept by the ray from the centre to the end effector, radians.
    pub swept_angle_rad: f64,
    /// `θ_s`: the same for the straight segment between the path's end points, radians.
    pub straight_angle_rad: f64,
    /// `n = round((θ - θ_s) / 2π)`.
    pub winding_vs_straight: i64,
}

/// Signed angle (rad) from vector `a` to vector `b`, in (-π, π].
fn turn(a: [f64; 2], b: [f64; 2]) -> f64 {
    (a[0] * b[1] - a[1] * b[0]).atan2(a[0] * b[0] + a[1] * b[1])
}

/// The side of the end-effector path of `path` around `center_m`; `None` when the swept angle
/// is zero (within 1e-9 rad).
pub fn path_side(arm: &PlanarArm, path: &JointPath, center_m: [f64; 2]) -> Option<SideMeasure> {
    let relative = |q: &[f64]| {
        let p = arm.end_effector(q);
        [p[0] - center_m[0], p[1] - center_m[1]]
    };
    let points: Vec<[f64; 2]> = path.waypoints().map(relative).collect();
    let swept_angle_rad: f64 = points.windows(2).map(|w| turn(w[0], w[1])).sum();
    if swept_angle_rad.is_nan() || swept_angle_rad.abs() <= 1e-9 {
        return None;
    }
    let straight_angle_rad = turn(points[0], points[points.len() - 1]);
    let side = if swept_angle_rad < 0.0 {
        Side::Left
    } else {
        Side::Right
    };
    Some(SideMeasure {
        side,
        swept_angle_rad,
        straight_angle_rad,
        winding_vs_straight: ((swept_angle_rad - straight_angle_rad) / std::f64::consts::TAU)
            .round() as i64,
    })
}

/// The label of `path` relative to `obstacle`; `None` without a side or without an elbow joint.
pub fn label_path(
    arm: &PlanarArm,
    path: &JointPath,
    obstacle: &CircleObstacle,
) -> Option<ModeLabel> {
    let side = path_side(arm, path, obstacle.center_m)?.side;
    let elbow = ElbowBranch::of_elbow_angle(*path.last().get(1)?);
    Some(ModeLabel { side, elbow })
}

/// The obstacle a path is labelled against: the one nearest to the straight segment from the
/// end effector at `start_rad` to `goal_m`.
pub fn labelling_obstacle<'a>(
    arm: &PlanarArm,
    start_rad: &[f64],
    goal_m: [f64; 2],
    obstacles: &'a [CircleObstacle],
) -> Option<&'a CircleObstacle> {
    let start_m = arm.end_effector(start_rad);
    nearest_obstacle_to_segment(obstacles, start_m, goal_m).and_then(|i| obstacles.get(i))
}

/// The reference task's [`PathLabeller`]: names under a [`LabelScheme`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GeometricLabeller {
    pub scheme: LabelScheme,
}

impl PathLabeller for GeometricLabeller {
    fn label(
        &self,
        arm: &PlanarArm,
        path: &JointPath,
        goal_m: [f64; 2],
        obstacles: &[CircleObstacle],
    ) -> Option<String> {
        let obstacle = labelling_obstacle(arm, path.first(), goal_m, obstacles)?;
        label_path(arm, path, obstacle).map(|l| self.scheme.name_of(l).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::robot::RobotDescription;

    fn arm() -> PlanarArm {
        PlanarArm::new(RobotDescription::planar_2link()).unwrap()
    }

    /// A joint path whose end effector follows the polyline through `points` (densely), all on
    /// one elbow branch.
    fn path_through(arm: &PlanarArm, points: &[[f64; 2]], branch: ElbowBranch) -> JointPath {
        let mut waypoints = Vec::new();
        for pair in points.windows(2) {
            for k in 0..20 {
                let s = k as f64 / 20.0;
                let p = [
                    pair[0][0] + s * (pair[1][0] - pair[0][0]),
                    pair[0][1] + s * (pair[1][1] - pair[0][1]),
                ];
                waypoints.push(arm.ik(p, branch).unwrap().to_vec());
            }
        }
        waypoints.push(arm.ik(points[points.len() - 1], branch).unwrap().to_vec());
        JointPath::from_waypoints(&waypoints).unwrap()
    }

    #[test]
    fn synthetic_left_and_right_paths() {
        let arm = arm();
        let obstacle = CircleObstacle {
            center_m: [0.55, 0.0],
            radius_m: 0.05,
        };
        // Travelling +y past an obstacle at x = 0.55: inside (x = 0.35) keeps it on the right.
        let (start, goal) = ([0.5, -0.3], [0.5, 0.3]);
        let left = path_through(&arm, &[start, [0.35, 0.0], goal], ElbowBranch::Up);
        let right = path_through(&arm, &[start, [0.75, 0.0], goal], ElbowBranch::Down);
        let l = path_side(&arm, &left, obstacle.center_m).unwrap();
        assert_eq!(l.side, Side::Left);
        // The straight segment (x = 0.5) also passes left: homotopic, winding 0.
        assert!(l.straight_angle_rad < 0.0);
        assert_eq!(l.winding_vs_straight, 0);
        let r = path_side(&arm, &right, obstacle.center_m).unwrap();
        assert_eq!(r.side, Side::Right);
        assert_eq!(r.winding_vs_straight, 1);
        assert_eq!(
            label_path(&arm, &left, &obstacle),
            Some(ModeLabel::new(Side::Left, ElbowBranch::Up))
        );
        assert_eq!(
            label_path(&arm, &right, &obstacle).map(ModeLabel::name),
            Some("right_elbow_down")
        );
        // Reversed travel flips the side.
        let back = path_through(&arm, &[goal, [0.35, 0.0], start], ElbowBranch::Up);
        assert_eq!(
            path_side(&arm, &back, obstacle.center_m).unwrap().side,
            Side::Right
        );
        // A path that does not move has no side.
        let still = JointPath::from_waypoints(&[vec![0.1, 0.2], vec![0.1, 0.2]]).unwrap();
        assert!(path_side(&arm, &still, obstacle.center_m).is_none());

        let labeller = GeometricLabeller {
            scheme: LabelScheme::Side,
        };
        let far = CircleObstacle {
            center_m: [-0.6, -0.6],
            radius_m: 0.05,
        };
        assert_eq!(
            labeller
                .label(&arm, &right, [0.5, 0.3], &[far, obstacle])
                .as_deref(),
            Some("right")
        );
    }

    #[test]
    fn label_names_and_indices() {
        for (i, label) in ModeLabel::all().into_iter().enumerate() {
            assert_eq!(label.index(), i);
            assert_eq!(ModeLabel::from_name(label.name()), Some(label));
            for scheme in [
                LabelScheme::Side,
                LabelScheme::Elbow,
                LabelScheme::SideElbow,
            ] {
                assert_eq!(
                    scheme.names()[scheme.index_of(label)],
                    scheme.name_of(label)
                );
            }
        }
        assert_eq!(ModeLabel::from_name("left"), None);
        assert_eq!(LabelScheme::SideElbow.names()[0], "left_elbow_up");
        let scheme: LabelScheme = serde_yaml::from_str("side_elbow").unwrap();
        assert_eq!(scheme, LabelScheme::SideElbow);
    }
}
