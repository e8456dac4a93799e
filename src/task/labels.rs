//! The geometric mode label of a joint-space path in the reference task: which way the arm goes
//! around the obstacle (the **route**, `left` or `right`), and the elbow branch at the goal.
//!
//! **Why not the end effector's side.** For a serial arm anchored at its base, the side on which
//! the end effector passes an obstacle is fixed by the start and goal *configurations*: the loop
//! "path A, then path B backwards" sweeps every point of the arm along a closed curve that is
//! homotopic (through the chain, which never crosses the obstacle) to the constant curve at the
//! base, so its winding number around the obstacle is 0 for every point of the arm. Labelling
//! the end effector's side therefore only separates goal elbow branches (the previous labels
//! did exactly that). What does differ between two collision-free paths to the *same* goal
//! configuration is how the arm is folded while it passes the obstacle: the workspace route.
//!
//! **Route.** For a 2-link arm, the configurations in which the straight arm points at the
//! obstacle centre `c` form the point `q* = (φ, 0)` with `φ = atan2(c - base)`; when the
//! obstacle is within the forearm's reach but clear of the upper arm, the colliding
//! configurations form an island around `q*` (symmetric under `(q1, q2) → (2φ − q1, −q2)`, the
//! mirror image across the line base–obstacle), and the two ways around that island are the two
//! routes. Let `v_t = q_t − q*` (first two joints). The swept angle
//! `θ = Σ_t atan2(v_t × v_{t+1}, v_t · v_{t+1})` is the signed angle the configuration turns
//! around `q*`; the path takes the **left** route when `θ < 0` (clockwise around `q*`) and the
//! **right** route when `θ > 0`; `θ = 0` has no route.
//!
//! In the workspace: a path that turns the shoulder counter-clockwise past the obstacle
//! (`q1` increasing through `φ`) is `left` when it passes with the elbow bent counter-clockwise
//! (`q2 > 0`: the end effector ahead of the elbow, the forearm leaning into the motion) and
//! `right` when it passes with the elbow bent the other way (the forearm trailing); turning
//! clockwise, the roles swap. So `left` = the forearm leads, `right` = the forearm trails, in
//! either direction, whatever the goal's elbow branch: a scene whose obstacle sits in the
//! forearm's reach offers both routes toward each goal configuration (the expert's two
//! homotopy classes around the island), and the same goal configuration can be reached by
//! both. When the obstacle also reaches the upper arm (its colliding set is a band across every
//! elbow angle) or lies out of reach, a path cannot go around it either way and every path of
//! a scene gets the route of the straight joint-space segment.
//!
//! Relation to the straight joint-space segment from `q_0` to `q_{T-1}`: it turns `v` by
//! `θ_s ∈ (−π, π)` and `θ − θ_s = 2π n` with `n` the winding number of the closed loop "path,
//! then the segment back" around `q*`; the two ways around the island differ by one turn, so
//! their `θ` have opposite signs. (Each step must turn `v` by less than π, which holds for
//! paths sampled densely compared to their distance from `q*`.)
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

/// Which way the arm goes around the obstacle: the route (see the module docs).
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

/// The route measurement of a path (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SideMeasure {
    pub side: Side,
    /// `θ`: signed angle the configuration turns around `q*`, radians.
    pub swept_angle_rad: f64,
    /// `θ_s`: the same for the straight joint-space segment between the path's end points.
    pub straight_angle_rad: f64,
    /// `n = round((θ - θ_s) / 2π)`.
    pub winding_vs_straight: i64,
}

/// Signed angle (rad) from vector `a` to vector `b`, in (-π, π].
fn turn(a: [f64; 2], b: [f64; 2]) -> f64 {
    (a[0] * b[1] - a[1] * b[0]).atan2(a[0] * b[0] + a[1] * b[1])
}

/// `q*` of the module docs: the straight arm (elbow 0) pointing at `center_m`.
pub fn route_center_rad(arm: &PlanarArm, center_m: [f64; 2]) -> [f64; 2] {
    let base = arm.base_m();
    [(center_m[1] - base[1]).atan2(center_m[0] - base[0]), 0.0]
}

/// The route of `path` around the obstacle centred at `center_m`; `None` when the path has
/// fewer than 2 joints or the swept angle is zero (within 1e-9 rad) or not finite.
pub fn path_side(arm: &PlanarArm, path: &JointPath, center_m: [f64; 2]) -> Option<SideMeasure> {
    if path.dof() < 2 {
        return None;
    }
    let q_star = route_center_rad(arm, center_m);
    let points: Vec<[f64; 2]> = path
        .waypoints()
        .map(|q| [q[0] - q_star[0], q[1] - q_star[1]])
        .collect();
    let swept_angle_rad: f64 = points.windows(2).map(|w| turn(w[0], w[1])).sum();
    if !swept_angle_rad.is_finite() || swept_angle_rad.abs() <= 1e-9 {
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

    /// A joint path through the configurations `corners`, densely (20 steps per segment).
    fn joint_polyline(corners: &[[f64; 2]]) -> JointPath {
        let mut waypoints = Vec::new();
        for pair in corners.windows(2) {
            for k in 0..20 {
                let s = k as f64 / 20.0;
                waypoints.push(vec![
                    pair[0][0] + s * (pair[1][0] - pair[0][0]),
                    pair[0][1] + s * (pair[1][1] - pair[0][1]),
                ]);
            }
        }
        waypoints.push(corners[corners.len() - 1].to_vec());
        JointPath::from_waypoints(&waypoints).unwrap()
    }

    /// An obstacle in the forearm's reach, clear of the upper arm.
    fn forearm_obstacle() -> CircleObstacle {
        CircleObstacle {
            center_m: [0.7, 0.0],
            radius_m: 0.05,
        }
    }

    #[test]
    fn both_routes_to_the_same_goal_configuration() {
        let arm = arm();
        let obstacle = forearm_obstacle();
        let obstacles = [obstacle];
        // Shoulder from -1 to 1 rad past the obstacle at angle 0, elbow bent +2 rad at both ends.
        let (start, goal) = ([-1.0, 2.0], [1.0, 2.0]);
        // Forearm leading all the way.
        let lead = joint_polyline(&[start, goal]);
        // Flip the elbow through straight (clear, 1 rad away), pass trailing, flip back.
        let trail = joint_polyline(&[start, [-1.0, -2.0], [1.0, -2.0], goal]);
        for path in [&lead, &trail] {
            assert!(arm.path_collision(path, &obstacles).is_none());
            // Same start, same goal configuration, same end-effector side of the obstacle.
            assert_eq!(path.last(), &goal[..]);
        }
        let l = path_side(&arm, &lead, obstacle.center_m).unwrap();
        let r = path_side(&arm, &trail, obstacle.center_m).unwrap();
        assert_eq!((l.side, r.side), (Side::Left, Side::Right));
        // The two routes differ by one turn around q*.
        let turns = (r.swept_angle_rad - l.swept_angle_rad) / std::f64::consts::TAU;
        assert!((turns - 1.0).abs() < 1e-9, "{turns}");
        assert_eq!(l.winding_vs_straight, 0);
        assert_eq!(r.winding_vs_straight, 1);
        assert_eq!(
            label_path(&arm, &lead, &obstacle).map(ModeLabel::name),
            Some("left_elbow_down")
        );
        assert_eq!(
            label_path(&arm, &trail, &obstacle).map(ModeLabel::name),
            Some("right_elbow_down")
        );
        // Reversed travel (shoulder turning clockwise) swaps the names.
        let back = joint_polyline(&[goal, start]);
        assert_eq!(
            path_side(&arm, &back, obstacle.center_m).unwrap().side,
            Side::Right
        );
        // The mirror image across the line base-obstacle (shoulder turning clockwise, elbow
        // bent clockwise: the forearm still leads) keeps the route.
        let mirrored = joint_polyline(&[[1.0, -2.0], [-1.0, -2.0]]);
        assert_eq!(
            path_side(&arm, &mirrored, obstacle.center_m).unwrap().side,
            Side::Left
        );
        // A path that does not move has no route.
        let still = JointPath::from_waypoints(&[vec![0.1, 0.2], vec![0.1, 0.2]]).unwrap();
        assert!(path_side(&arm, &still, obstacle.center_m).is_none());

        let labeller = GeometricLabeller {
            scheme: LabelScheme::Side,
        };
        let far = CircleObstacle {
            center_m: [-0.6, -0.6],
            radius_m: 0.05,
        };
        let goal_m = arm.end_effector(&goal);
        assert_eq!(
            labeller
                .label(&arm, &trail, goal_m, &[far, obstacle])
                .as_deref(),
            Some("right")
        );
    }

    #[test]
    fn the_experts_two_classes_to_one_goal_configuration_get_both_routes() {
        use crate::task::generate::expert_paths;
        let arm = arm();
        let obstacle = forearm_obstacle();
        let config: crate::task::generate::DataConfig = serde_yaml::from_str(
            &std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("config/data_planar_arm.yaml"),
            )
            .unwrap(),
        )
        .unwrap();
        // A route scene: start and goal on opposite elbow branches, so that the straight
        // joint-space motion swings the stretched arm through the obstacle (q* = (0, 0)).
        let goal = [1.0, -1.0];
        let scene = crate::task::Scene {
            description: String::new(),
            start_rad: vec![-1.0, 1.0],
            goal_m: arm.end_effector(&goal),
            obstacles: vec![obstacle],
        };
        let paths = expert_paths(&config, &arm, &scene, 0).unwrap();
        let mut sides = std::collections::BTreeMap::new();
        for p in &paths {
            let waypoints: Vec<Vec<f64>> = p.waypoints.iter().map(|q| q.to_vec()).collect();
            let path = JointPath::from_waypoints(&waypoints).unwrap();
            let label = label_path(&arm, &path, &obstacle).unwrap();
            sides
                .entry(p.goal_index)
                .or_insert_with(Vec::new)
                .push((p.signature.clone(), label));
        }
        // Toward each goal configuration: one class per way around the island, and the classes
        // have different routes (same elbow branch).
        let mut both = 0;
        for classes in sides.values() {
            let routes: std::collections::BTreeSet<Side> =
                classes.iter().map(|(_, l)| l.side).collect();
            let signatures: std::collections::BTreeSet<&Vec<i8>> =
                classes.iter().map(|(s, _)| s).collect();
            assert_eq!(routes.len(), signatures.len(), "{classes:?}");
            both += usize::from(routes.len() == 2);
        }
        assert!(both >= 1, "{sides:?}");
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
