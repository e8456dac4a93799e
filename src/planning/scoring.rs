//! Scores of one candidate path and the reasons it is rejected. A candidate is valid iff it has
//! no [`RejectReason`].

use serde::{Deserialize, Serialize};

use crate::robot::{distance, CircleObstacle, JointPath, PlanarArm};

/// Weights of the selection cost `path_length * length_rad + smoothness * smoothness_rad2 +
/// goal_error * sampled_goal_error_m` (all >= 0).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CostWeights {
    /// Per radian of joint-space path length.
    pub path_length: f64,
    /// Per rad² of summed squared third differences.
    pub smoothness: f64,
    /// Per metre of end-effector distance to the goal at the last waypoint as sampled (before
    /// the path is bent onto the goal), so the candidates that needed less bending win.
    pub goal_error: f64,
}

impl Default for CostWeights {
    fn default() -> Self {
        CostWeights {
            path_length: 1.0,
            smoothness: 10.0,
            goal_error: 10.0,
        }
    }
}

/// Thresholds and weights used by [`score_candidate`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoringConfig {
    /// Largest end-effector distance to the goal at the last waypoint, metres.
    pub goal_tolerance_m: f64,
    /// Largest distance between a candidate's first waypoint and the start configuration, rad.
    pub max_start_error_rad: f64,
    /// Largest x̂0 variance; `None` disables the hallucination check.
    pub hallucination_threshold: Option<f64>,
    /// A path that passes closer than this to an obstacle (swept) is rejected
    /// ([`RejectReason::Clearance`]), metres; 0 rejects only collisions.
    pub min_clearance_m: f64,
    pub weights: CostWeights,
}

/// Everything measured about one candidate (NaN where a non-finite path made it meaningless).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CandidateScores {
    /// End-effector distance to the goal at the last waypoint, metres.
    pub goal_error_m: f64,
    /// Joint-space path length, radians.
    pub path_length_rad: f64,
    /// Sum over waypoints of the squared norm of the third difference, rad².
    pub smoothness_rad2: f64,
    /// End-effector distance to the goal at the last waypoint as sampled, before the path was
    /// bent onto the goal (`PlannerConfig::max_goal_projection_m`), metres.
    pub sampled_goal_error_m: f64,
    /// The sampler's x̂0 variance (hallucination score).
    pub x0_variance: f64,
    /// Distance from the sampled first waypoint to the start configuration, radians (the path
    /// is anchored at the start before everything else is measured).
    pub start_error_rad: f64,
    /// Smallest signed clearance at the waypoints, metres; `None` without obstacles.
    pub min_clearance_m: Option<f64>,
    /// The selection cost (see [`CostWeights`]).
    pub cost: f64,
}

/// Why a candidate cannot be executed.
#[derive(Debug, Clone, PartialEq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RejectReason {
    #[error("path has NaN or infinite positions")]
    NonFinite,
    #[error("first waypoint is {error_rad:.3} rad from the start (limit {limit_rad} rad)")]
    StartError { error_rad: f64, limit_rad: f64 },
    #[error("waypoint {waypoint}: joint {joint} at {value_rad:.3} rad is outside its limits")]
    JointLimit {
        waypoint: usize,
        joint: usize,
        value_rad: f64,
    },
    #[error("segment {segment} (at {fraction:.2}): link {link} hits obstacle {obstacle}")]
    Collision {
        segment: usize,
        fraction: f64,
        link: usize,
        obstacle: usize,
    },
    #[error(
        "{}link {link} passes closer than min_clearance_m = {min_clearance_m} m to obstacle \
         {obstacle}",
        .time_secs.map(|t| format!("timed plan at {t:.3} s: ")).unwrap_or_default()
    )]
    Clearance {
        /// On the timed plan (verification), else `None` (the candidate's path).
        time_secs: Option<f64>,
        link: usize,
        obstacle: usize,
        min_clearance_m: f64,
    },
    #[error("ends {error_m:.3} m from the goal (tolerance {tolerance_m} m)")]
    GoalError { error_m: f64, tolerance_m: f64 },
    #[error("x0 variance {x0_variance:.3e} above the threshold {threshold:.3e}")]
    Hallucination { x0_variance: f64, threshold: f64 },
    #[error("geometric mode {found:?} differs from the requested `{requested}`")]
    WrongMode {
        requested: String,
        found: Option<String>,
    },
    #[error(
        "timed plan at {time_secs:.3} s: joint {joint} at {value_rad:.3} rad is outside its limits"
    )]
    TimedPathJointLimit {
        time_secs: f64,
        joint: usize,
        value_rad: f64,
    },
    #[error("the timed plan could not be verified: {error}")]
    VerificationFailed { error: String },
    #[error("timed plan at {time_secs:.3} s: link {link} hits obstacle {obstacle}")]
    TimedPathCollision {
        time_secs: f64,
        link: usize,
        obstacle: usize,
    },
}

/// The obstacles with their radii grown by `margin_m`: a motion free of them keeps at least
/// that clearance from the originals.
pub fn inflated(obstacles: &[CircleObstacle], margin_m: f64) -> Vec<CircleObstacle> {
    obstacles
        .iter()
        .map(|o| CircleObstacle {
            radius_m: o.radius_m + margin_m,
            ..*o
        })
        .collect()
}

/// Sum of the squared norms of the third differences `q[t+3] - 3 q[t+2] + 3 q[t+1] - q[t]`, rad².
pub fn smoothness_rad2(path: &JointPath) -> f64 {
    let waypoints: Vec<&[f64]> = path.waypoints().collect();
    waypoints
        .windows(4)
        .map(|w| {
            (0..path.dof())
                .map(|j| {
                    let d = w[3][j] - 3.0 * w[2][j] + 3.0 * w[1][j] - w[0][j];
                    d * d
                })
                .sum::<f64>()
        })
        .sum()
}

/// Scores one candidate. `path` is already anchored (its first waypoint moved onto the start
/// configuration, its last maybe onto the goal, see `JointPath::anchor`); `sampled` is the
/// path as sampled, of the same shape. Returns the scores and
/// every reason to reject it (empty: valid). Checks joint limits at the waypoints (a straight
/// joint-space segment between two waypoints inside the limit box stays inside), the swept
/// collision along every segment, the goal error, the start error and the x̂0 variance.
pub fn score_candidate(
    arm: &PlanarArm,
    path: &JointPath,
    sampled: &JointPath,
    x0_variance: f64,
    goal_m: [f64; 2],
    obstacles: &[CircleObstacle],
    config: &ScoringConfig,
) -> (CandidateScores, Vec<RejectReason>) {
    let mut reasons = Vec::new();
    let start_error_rad = distance(sampled.first(), path.first());
    let sampled_end = arm.end_effector(sampled.last());
    let sampled_goal_error_m = (sampled_end[0] - goal_m[0]).hypot(sampled_end[1] - goal_m[1]);
    if !path.is_finite() || !sampled.is_finite() {
        let scores = CandidateScores {
            goal_error_m: f64::NAN,
            sampled_goal_error_m,
            path_length_rad: f64::NAN,
            smoothness_rad2: f64::NAN,
            x0_variance,
            start_error_rad,
            min_clearance_m: None,
            cost: f64::NAN,
        };
        return (scores, vec![RejectReason::NonFinite]);
    }
    if start_error_rad.is_nan() || start_error_rad > config.max_start_error_rad {
        reasons.push(RejectReason::StartError {
            error_rad: start_error_rad,
            limit_rad: config.max_start_error_rad,
        });
    }
    if let Some((waypoint, (joint, value_rad))) = path
        .waypoints()
        .enumerate()
        .find_map(|(t, q)| arm.limit_violation(q).map(|v| (t, v)))
    {
        reasons.push(RejectReason::JointLimit {
            waypoint,
            joint,
            value_rad,
        });
    }
    if let Some(hit) = arm.path_collision(path, obstacles) {
        reasons.push(RejectReason::Collision {
            segment: hit.segment,
            fraction: hit.fraction,
            link: hit.contact.link,
            obstacle: hit.contact.obstacle,
        });
    } else if config.min_clearance_m > 0.0 {
        let grown = inflated(obstacles, config.min_clearance_m);
        if let Some(hit) = arm.path_collision(path, &grown) {
            reasons.push(RejectReason::Clearance {
                time_secs: None,
                link: hit.contact.link,
                obstacle: hit.contact.obstacle,
                min_clearance_m: config.min_clearance_m,
            });
        }
    }
    let end = arm.end_effector(path.last());
    let goal_error_m = (end[0] - goal_m[0]).hypot(end[1] - goal_m[1]);
    if goal_error_m.is_nan() || goal_error_m > config.goal_tolerance_m {
        reasons.push(RejectReason::GoalError {
            error_m: goal_error_m,
            tolerance_m: config.goal_tolerance_m,
        });
    }
    if let Some(threshold) = config.hallucination_threshold {
        if x0_variance.is_nan() || x0_variance > threshold {
            reasons.push(RejectReason::Hallucination {
                x0_variance,
                threshold,
            });
        }
    }
    let min_clearance_m = path
        .waypoints()
        .filter_map(|q| arm.clearance(q, obstacles).map(|c| c.clearance_m))
        .reduce(f64::min);
    let path_length_rad = path.length_rad();
    let smoothness = smoothness_rad2(path);
    let w = &config.weights;
    let cost = w.path_length * path_length_rad
        + w.smoothness * smoothness
        + w.goal_error * sampled_goal_error_m;
    let scores = CandidateScores {
        goal_error_m,
        sampled_goal_error_m,
        path_length_rad,
        smoothness_rad2: smoothness,
        x0_variance,
        start_error_rad,
        min_clearance_m,
        cost,
    };
    (scores, reasons)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::robot::RobotDescription;

    fn config() -> ScoringConfig {
        ScoringConfig {
            goal_tolerance_m: 0.02,
            max_start_error_rad: 0.1,
            hallucination_threshold: Some(0.5),
            min_clearance_m: 0.0,
            weights: CostWeights::default(),
        }
    }

    #[test]
    fn paths_closer_than_the_minimum_clearance_are_rejected() {
        let arm = PlanarArm::new(RobotDescription::planar_2link()).unwrap();
        let path =
            JointPath::from_waypoints(&[vec![0.0, 0.0], vec![0.75, 0.0], vec![1.5, 0.0]]).unwrap();
        let goal = arm.end_effector(&[1.5, 0.0]);
        // Stretched out at 0.75 rad the arm points along that ray; an obstacle on the ray
        // beyond the tip's capsule, `gap_m` away (the closest the sweep comes).
        let tip = arm.end_effector(&[0.75, 0.0]);
        let norm = tip[0].hypot(tip[1]);
        let away = |gap_m: f64| {
            let radius = 0.05;
            let d = norm + arm.link_radius_m() + gap_m + radius;
            [CircleObstacle {
                center_m: [tip[0] / norm * d, tip[1] / norm * d],
                radius_m: radius,
            }]
        };
        let strict = ScoringConfig {
            min_clearance_m: 0.005,
            ..config()
        };
        let (scores, reasons) =
            score_candidate(&arm, &path, &path, 0.1, goal, &away(0.001), &strict);
        let c = scores.min_clearance_m.unwrap();
        assert!((c - 0.001).abs() < 1e-6, "clearance {c}");
        assert!(
            matches!(reasons[..], [RejectReason::Clearance { time_secs: None, min_clearance_m, .. }] if min_clearance_m == 0.005),
            "{reasons:?}"
        );
        let (_, reasons) = score_candidate(&arm, &path, &path, 0.1, goal, &away(0.001), &config());
        assert!(reasons.is_empty(), "0 rejects only collisions: {reasons:?}");
        let (_, reasons) = score_candidate(&arm, &path, &path, 0.1, goal, &away(0.02), &strict);
        assert!(reasons.is_empty(), "{reasons:?}");
    }

    #[test]
    fn every_reason_is_reported() {
        let arm = PlanarArm::new(RobotDescription::planar_2link()).unwrap();
        let straight = JointPath::from_waypoints(&[
            vec![0.0, 0.0],
            vec![0.5, 0.0],
            vec![1.0, 0.0],
            vec![1.5, 0.0],
        ])
        .unwrap();
        let goal = arm.end_effector(&[1.5, 0.0]);
        let (scores, reasons) =
            score_candidate(&arm, &straight, &straight, 0.1, goal, &[], &config());
        assert!(reasons.is_empty(), "{reasons:?}");
        assert!((scores.path_length_rad - 1.5).abs() < 1e-12);
        assert!(scores.smoothness_rad2.abs() < 1e-20);
        assert!((scores.cost - 1.5).abs() < 1e-9);
        assert_eq!(scores.min_clearance_m, None);

        // An obstacle on the arc at 45°, a far goal, a bad start, a high variance.
        let obstacle = [CircleObstacle {
            center_m: [0.9 * 0.75f64.cos(), 0.9 * 0.75f64.sin()],
            radius_m: 0.01,
        }];
        let mut sampled = straight.clone();
        sampled.anchor(&[0.3, 0.0], None).unwrap();
        let (_, reasons) = score_candidate(
            &arm,
            &straight,
            &sampled,
            0.9,
            [0.0, -0.5],
            &obstacle,
            &config(),
        );
        let kinds: Vec<&str> = reasons
            .iter()
            .map(|r| match r {
                RejectReason::StartError { .. } => "start",
                RejectReason::Collision { segment: 1, .. } => "collision",
                RejectReason::GoalError { .. } => "goal",
                RejectReason::Hallucination { .. } => "hallucination",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["start", "collision", "goal", "hallucination"]);

        let over = JointPath::from_waypoints(&[vec![0.0, 0.0], vec![0.0, 2.9]]).unwrap();
        let (_, reasons) = score_candidate(&arm, &over, &over, 0.0, goal, &[], &config());
        assert!(matches!(
            reasons[0],
            RejectReason::JointLimit {
                waypoint: 1,
                joint: 1,
                ..
            }
        ));

        let nan = JointPath::from_waypoints(&[vec![0.0, 0.0], vec![f64::NAN, 0.0]]).unwrap();
        let (_, reasons) = score_candidate(&arm, &nan, &nan, 0.0, goal, &[], &config());
        assert_eq!(reasons, vec![RejectReason::NonFinite]);
    }

    #[test]
    fn smoothness_is_zero_for_quadratic_paths_only() {
        let quadratic: Vec<Vec<f64>> = (0..6).map(|t| vec![(t * t) as f64 * 0.01]).collect();
        assert!(smoothness_rad2(&JointPath::from_waypoints(&quadratic).unwrap()) < 1e-20);
        let cubic: Vec<Vec<f64>> = (0..5).map(|t| vec![(t * t * t) as f64 * 0.01]).collect();
        // Third difference of t³ is 6 at every window: 2 windows of (0.06)².
        let s = smoothness_rad2(&JointPath::from_waypoints(&cubic).unwrap());
        assert!((s - 2.0 * 0.06 * 0.06).abs() < 1e-12, "{s}");
    }
}
