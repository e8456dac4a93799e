//! The observation condition vector fed to the model: the model's ordered list of
//! [`ConditionTerm`]s, each contributing raw (un-normalised) values. The model side normalises.

use serde::{Deserialize, Serialize};

use super::observation::Observation;
use crate::robot::{nearest_obstacle_to_segment, PlanarArm};

/// One part of the condition vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConditionTerm {
    /// The start joint positions, radians, robot order (`dof` values): the commanded positions
    /// when a plan is executing, else the measured ones.
    JointPositions,
    /// The goal point `(x, y)` in the base frame, metres (2 values).
    GoalPosition,
    /// One obstacle `(cx, cy, r)`, metres (3 values). With several obstacles, the one nearest
    /// to the straight segment from the start end-effector position to the goal (smallest
    /// distance from the segment to the circle; ties to the lower index). With none, the
    /// placeholder `(base_x, base_y, 0)`: a zero-radius circle at the arm's base, which no path
    /// has to avoid.
    Obstacle,
}

impl ConditionTerm {
    /// Every term, in declaration order.
    pub const ALL: [ConditionTerm; 3] = [
        ConditionTerm::JointPositions,
        ConditionTerm::GoalPosition,
        ConditionTerm::Obstacle,
    ];

    /// The term with this `model.yaml` name (see [`Self::name`]), if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Number of values this term adds for an arm with `dof` joints.
    pub fn dim(self, dof: usize) -> usize {
        match self {
            ConditionTerm::JointPositions => dof,
            ConditionTerm::GoalPosition => 2,
            ConditionTerm::Obstacle => 3,
        }
    }

    /// The term's name as written in `model.yaml`.
    pub fn name(self) -> &'static str {
        match self {
            ConditionTerm::JointPositions => "joint_positions",
            ConditionTerm::GoalPosition => "goal_position",
            ConditionTerm::Obstacle => "obstacle",
        }
    }
}

/// Length of the condition vector for `terms`.
pub fn condition_dim(terms: &[ConditionTerm], dof: usize) -> usize {
    terms.iter().map(|t| t.dim(dof)).sum()
}

/// The index of the obstacle the condition describes (see [`ConditionTerm::Obstacle`]).
pub fn conditioned_obstacle(arm: &PlanarArm, observation: &Observation) -> Option<usize> {
    let start_m = arm.end_effector(observation.start_positions_rad());
    nearest_obstacle_to_segment(observation.obstacles(), start_m, observation.goal_m())
}

/// The raw condition vector, terms in the given order. Length
/// [`condition_dim`]`(terms, arm.dof())`.
pub fn condition_vector(
    terms: &[ConditionTerm],
    arm: &PlanarArm,
    observation: &Observation,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(condition_dim(terms, arm.dof()));
    for term in terms {
        match term {
            ConditionTerm::JointPositions => {
                out.extend(observation.start_positions_rad().iter().map(|&q| q as f32))
            }
            ConditionTerm::GoalPosition => {
                out.extend(observation.goal_m().iter().map(|&v| v as f32))
            }
            ConditionTerm::Obstacle => {
                let values = match conditioned_obstacle(arm, observation)
                    .and_then(|i| observation.obstacles().get(i))
                {
                    Some(o) => [o.center_m[0], o.center_m[1], o.radius_m],
                    None => [arm.base_m()[0], arm.base_m()[1], 0.0],
                };
                out.extend(values.iter().map(|&v| v as f32));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planning::{ModeRequest, ObservationInput};
    use crate::robot::{CircleObstacle, RobotDescription};

    #[test]
    fn terms_in_model_order_with_the_nearest_obstacle() {
        let arm = PlanarArm::new(RobotDescription::planar_2link()).unwrap();
        let input = ObservationInput {
            joints: vec![("elbow".into(), 0.5), ("shoulder".into(), 0.1)],
            goal_m: [0.0, 0.7],
            obstacles: vec![
                CircleObstacle {
                    center_m: [-0.6, -0.5],
                    radius_m: 0.1,
                },
                CircleObstacle {
                    center_m: [0.45, 0.45],
                    radius_m: 0.05,
                },
            ],
            mode: ModeRequest::Any,
            ..Default::default()
        };
        let observation = Observation::new(input, &arm, &[]).unwrap();
        let terms = [
            ConditionTerm::GoalPosition,
            ConditionTerm::Obstacle,
            ConditionTerm::JointPositions,
        ];
        let vector = condition_vector(&terms, &arm, &observation);
        assert_eq!(vector.len(), condition_dim(&terms, 2));
        assert_eq!(vector, vec![0.0, 0.7, 0.45, 0.45, 0.05, 0.1, 0.5]);
        let names: Vec<ConditionTerm> =
            serde_yaml::from_str("[joint_positions, goal_position, obstacle]").unwrap();
        assert_eq!(names[0].name(), "joint_positions");
        assert_eq!(names.len(), 3);
        for term in ConditionTerm::ALL {
            let parsed: ConditionTerm = serde_yaml::from_str(term.name()).unwrap();
            assert_eq!(
                (parsed, ConditionTerm::from_name(term.name())),
                (term, Some(term))
            );
        }
        assert_eq!(ConditionTerm::from_name("q_start"), None);
    }
}
