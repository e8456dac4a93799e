//! A candidate source without a network, for the reference 2-link arm: `model_path: synthetic`.
//! It runs the node end to end where no trained model is at hand (tests, demos, a first check
//! of a robot set-up) with the same scoring, modes and selection as the model.
//!
//! For the goal in the condition vector, analytic IK gives one end configuration per elbow
//! branch; each branch gets a bundle of straight joint-space paths from the start and bundles
//! of detours (via configurations with the shoulder swung either way, and the two corners where
//! one joint has moved and the other not yet), each candidate with
//! seeded smooth noise ([`SyntheticSource`]). Modes are the elbow branches at the goal
//! (`elbow_up`, `elbow_down`), the names of the geometric labeller's `elbow` scheme; a mode
//! request samples only that branch's bundles.

use crate::planning::{
    CandidateBatch, CandidateSource, ConditionTerm, SyntheticBundle, SyntheticSource,
};
use crate::robot::{ElbowBranch, PlanarArm, RobotDescription};
use crate::task::LabelScheme;
use crate::{Error, Result};

/// The `model_path` value that selects this source.
pub const SYNTHETIC_MODEL_PATH: &str = "synthetic";

/// Waypoints per candidate path.
const HORIZON: usize = 32;
/// Shoulder swings of the detours, radians.
const DETOUR_SWINGS_RAD: [f64; 4] = [-1.2, -0.6, 0.6, 1.2];
/// Joint-space distance to the goal from which on the detours swing fully, radians.
const FULL_SWING_DISTANCE_RAD: f64 = 1.5;
/// Standard deviation of each detour candidate's smooth offset, radians (the straight bundle
/// has none: its candidates are identical, which keeps the straight motion fast to time).
const NOISE_RAD: f64 = 0.003;

/// See the module docs.
#[derive(Debug, Clone)]
pub struct GeometricSource {
    arm: PlanarArm,
    terms: Vec<ConditionTerm>,
    mode_names: Vec<String>,
}

impl GeometricSource {
    /// A source for `arm` (2 joints).
    pub fn new(arm: PlanarArm) -> Result<Self> {
        if arm.dof() != 2 {
            return Err(Error::config(
                "model_path",
                format!(
                    "`{SYNTHETIC_MODEL_PATH}` plans for 2-link arms; this robot has {} joints",
                    arm.dof()
                ),
            ));
        }
        Ok(GeometricSource {
            arm,
            terms: vec![
                ConditionTerm::JointPositions,
                ConditionTerm::GoalPosition,
                ConditionTerm::Obstacle,
            ],
            mode_names: LabelScheme::Elbow.names(),
        })
    }

    /// The reference arm ([`RobotDescription::planar_2link`]).
    pub fn reference() -> Result<Self> {
        Self::new(PlanarArm::new(RobotDescription::planar_2link())?)
    }

    pub fn arm(&self) -> &PlanarArm {
        &self.arm
    }

    fn term(&self, condition: &[f32], wanted: ConditionTerm) -> Result<Vec<f64>> {
        let mut offset = 0;
        for term in &self.terms {
            let dim = term.dim(self.arm.dof());
            if *term == wanted {
                return condition
                    .get(offset..offset + dim)
                    .map(|v| v.iter().map(|&x| f64::from(x)).collect())
                    .ok_or_else(|| Error::Shape {
                        what: "geometric source condition".to_string(),
                        expected: vec![crate::planning::condition_dim(&self.terms, self.arm.dof())],
                        found: vec![condition.len()],
                    });
            }
            offset += dim;
        }
        Err(Error::Invalid(format!(
            "condition has no {}",
            wanted.name()
        )))
    }

    /// The bundles for one sampling call.
    fn bundles(&self, start: &[f64], goal_m: [f64; 2]) -> Vec<SyntheticBundle> {
        let mut bundles = Vec::new();
        for branch in ElbowBranch::ALL {
            let Ok(end) = self.arm.ik(goal_m, branch) else {
                continue;
            };
            let label = Some(branch.name().to_string());
            bundles.push(SyntheticBundle {
                via_rad: vec![],
                end_rad: end.to_vec(),
                weight: 4,
                noise_rad: 0.0,
                x0_variance: 0.0,
                label: label.clone(),
            });
            // The swing shrinks with the distance left, so that the detours of successive
            // receding-horizon calls continue each other instead of swinging out anew.
            let left_rad = crate::robot::distance(start, &end);
            let shrink = (left_rad / FULL_SWING_DISTANCE_RAD).min(1.0);
            let lower = self.arm.lower_limits_rad();
            let upper = self.arm.upper_limits_rad();
            for swing in DETOUR_SWINGS_RAD {
                // Only the shoulder (joint 0) swings; the via stays 0.05 rad inside the limits.
                let via: Vec<f64> = start
                    .iter()
                    .zip(&end)
                    .zip(lower.iter().zip(&upper))
                    .enumerate()
                    .map(|(j, ((s, e), (lo, hi)))| {
                        let offset = if j == 0 { swing * shrink } else { 0.0 };
                        (0.5 * (s + e) + offset).clamp(lo + 0.05, hi - 0.05)
                    })
                    .collect();
                bundles.push(SyntheticBundle {
                    via_rad: vec![via],
                    end_rad: end.to_vec(),
                    weight: 1,
                    noise_rad: NOISE_RAD,
                    x0_variance: 0.0,
                    label: label.clone(),
                });
            }
            // Corner detours: one joint moves first, then the other. They pass the island of
            // colliding configurations that a straight motion between elbow branches crosses
            // (the obstacle in the forearm's reach where the elbow straightens) on either side:
            // the two routes of `task::labels`.
            for via in [[end[0], start[1]], [start[0], end[1]]] {
                bundles.push(SyntheticBundle {
                    via_rad: vec![via.to_vec()],
                    end_rad: end.to_vec(),
                    weight: 1,
                    noise_rad: NOISE_RAD,
                    x0_variance: 0.0,
                    label: label.clone(),
                });
            }
        }
        bundles
    }
}

impl CandidateSource for GeometricSource {
    fn condition_terms(&self) -> &[ConditionTerm] {
        &self.terms
    }

    fn mode_names(&self) -> &[String] {
        &self.mode_names
    }

    fn sample(
        &mut self,
        condition: &[f32],
        label: Option<usize>,
        num_samples: usize,
        seed: u64,
    ) -> Result<CandidateBatch> {
        let start = self.term(condition, ConditionTerm::JointPositions)?;
        let goal = self.term(condition, ConditionTerm::GoalPosition)?;
        let (Some(&x), Some(&y)) = (goal.first(), goal.get(1)) else {
            return Err(Error::Invalid("condition goal has no (x, y)".into()));
        };
        let mut bundles = self.bundles(&start, [x, y]);
        if let Some(index) = label {
            let name = self.mode_names.get(index).cloned();
            let matching: Vec<SyntheticBundle> = bundles
                .iter()
                .filter(|b| b.label == name)
                .cloned()
                .collect();
            // A branch that cannot reach the goal: sample the others (all get rejected as the
            // wrong mode) rather than fail the call.
            if !matching.is_empty() {
                bundles = matching;
            }
        }
        if bundles.is_empty() {
            return Err(Error::Invalid(format!(
                "goal ({x}, {y}) has no inverse kinematics solution inside the joint limits"
            )));
        }
        let mut source = SyntheticSource::new(
            HORIZON,
            self.arm.dof(),
            self.terms.clone(),
            self.mode_names.clone(),
            bundles,
        )?;
        source.sample(condition, None, num_samples, seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planning::{ModeRequest, ObservationInput, Planner, PlannerConfig};
    use crate::robot::CircleObstacle;
    use crate::task::GeometricLabeller;

    #[test]
    fn candidates_start_at_the_start_and_end_at_the_goal_on_both_branches() {
        let mut source = GeometricSource::reference().unwrap();
        let arm = source.arm().clone();
        let condition = [0.2f32, 0.4, 0.3, 0.6, 0.0, 0.0, 0.0];
        let batch = source.sample(&condition, None, 20, 3).unwrap();
        assert_eq!(batch.num_candidates(), 20);
        let mut branches = std::collections::BTreeSet::new();
        for k in 0..20 {
            let path = batch.path(k).unwrap();
            assert!((path.first()[0] - 0.2).abs() < 1e-6 && (path.first()[1] - 0.4).abs() < 1e-6);
            let end = arm.end_effector(path.last());
            assert!(
                (end[0] - 0.3).abs() < 1e-4 && (end[1] - 0.6).abs() < 1e-4,
                "{end:?}"
            );
            branches.insert(ElbowBranch::of_elbow_angle(path.last()[1]));
        }
        assert_eq!(branches.len(), 2);
        let again = source.sample(&condition, None, 20, 3).unwrap();
        assert_eq!(batch, again, "seeded");
        let up = source.sample(&condition, Some(0), 10, 3).unwrap();
        for k in 0..10 {
            assert!(up.path(k).unwrap().last()[1] < 0.0, "elbow_up only");
        }
    }

    #[test]
    fn the_planner_finds_a_way_around_an_obstacle_in_the_requested_mode() {
        let source = GeometricSource::reference().unwrap();
        let arm = source.arm().clone();
        let config = PlannerConfig {
            num_samples: 32,
            ..PlannerConfig::default()
        };
        let mut planner = Planner::new(arm.clone(), Box::new(source), config)
            .unwrap()
            .with_labeller(Box::new(GeometricLabeller {
                scheme: LabelScheme::Elbow,
            }));
        let names = planner.mode_names().to_vec();
        for mode in ["elbow_up", "elbow_down"] {
            let input = ObservationInput {
                joints: vec![("shoulder".into(), -0.3), ("elbow".into(), 0.6)],
                goal_m: [0.1, 0.4],
                obstacles: vec![CircleObstacle {
                    center_m: [0.55, 0.45],
                    radius_m: 0.08,
                }],
                mode: ModeRequest::Named(mode.into()),
                ..Default::default()
            };
            let observation = planner.observation(input).unwrap();
            assert_eq!(observation.mode_names(), names.as_slice());
            let outcome = planner.plan(&observation).unwrap();
            let chosen = outcome.chosen.unwrap();
            assert_eq!(outcome.candidates[chosen].label.as_deref(), Some(mode));
            let plan = outcome.plan.unwrap();
            let end = arm.end_effector(&plan.points.last().unwrap().positions);
            assert!((end[0] - 0.1).hypot(end[1] - 0.4) < 0.01, "{end:?}");
        }
    }
}
