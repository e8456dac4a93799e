//! Reference-task scenes (start configuration, goal point, circular obstacles), their YAML form,
//! and seeded scene sampling.

use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::planning::{
    ModeRequest, Observation, ObservationError, ObservationInput, ObservationStamps,
};
use crate::robot::{CircleObstacle, PlanarArm};
use crate::{Error, Result};

/// One planning problem. YAML:
/// ```yaml
/// description: obstacle in the way      # optional
/// start_rad: [-0.2, 0.8]               # robot joint order
/// goal_m: [-0.3, 0.6]
/// obstacles:                            # optional
///   - {center_m: [0.45, 0.45], radius_m: 0.08}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scene {
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Start joint positions, radians, in the robot's joint order.
    pub start_rad: Vec<f64>,
    /// End-effector goal in the base frame, metres.
    pub goal_m: [f64; 2],
    #[serde(default)]
    pub obstacles: Vec<CircleObstacle>,
}

impl Scene {
    /// Parses YAML; `origin` names the source in errors.
    pub fn from_yaml_str(text: &str, origin: &Path) -> Result<Self> {
        serde_yaml::from_str(text).map_err(|source| Error::Yaml {
            path: origin.to_path_buf(),
            source,
        })
    }

    /// Reads a scene file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_yaml_str(&text, path)
    }

    /// The scene as YAML.
    pub fn to_yaml(&self) -> Result<String> {
        serde_yaml::to_string(self).map_err(|source| Error::Yaml {
            path: "<scene>".into(),
            source,
        })
    }

    /// The raw observation of this scene for `arm` (joints named in robot order; extra start
    /// values get names that no robot has, so validation reports them), stamps 0.
    pub fn observation_input(&self, arm: &PlanarArm, mode: ModeRequest) -> ObservationInput {
        let names = arm.joint_names();
        let joints = self
            .start_rad
            .iter()
            .enumerate()
            .map(|(i, &q)| {
                let name = names
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("<start_rad[{i}] beyond the robot's joints>"));
                (name, q)
            })
            .collect();
        ObservationInput {
            joints,
            goal_m: self.goal_m,
            obstacles: self.obstacles.clone(),
            mode,
            stamps: ObservationStamps::default(),
            commanded: None,
        }
    }

    /// The validated observation of this scene (all of [`Observation::new`]'s checks).
    pub fn observation(
        &self,
        arm: &PlanarArm,
        mode: ModeRequest,
        mode_names: &[String],
    ) -> std::result::Result<Observation, ObservationError> {
        Observation::new(self.observation_input(arm, mode), arm, mode_names)
    }
}

/// Settings of [`sample_scene`]. Ranges are `[min, max]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SceneSamplerConfig {
    /// Obstacle radius range, metres. Default [0.05, 0.12].
    pub obstacle_radius_m: [f64; 2],
    /// Obstacle centre x range for free placement, metres. Default [-0.8, 0.8].
    pub obstacle_center_x_m: [f64; 2],
    /// Obstacle centre y range for free placement, metres. Default [-0.8, 0.8].
    pub obstacle_center_y_m: [f64; 2],
    /// Probability of placing the obstacle across the straight end-effector path instead of
    /// freely: centre at a uniform fraction in [0.3, 0.7] along the segment from the start end
    /// effector to the goal, shifted sideways by a uniform offset within ±half the radius.
    /// Default 0.8.
    pub blocking_probability: f64,
    /// Probability of a **route scene** instead (drawn before `blocking_probability`): start
    /// and goal configurations on opposite elbow branches, and the obstacle where the straight
    /// joint-space motion between them would swing the stretched arm through it — at the
    /// shoulder angle where that motion straightens the elbow (±0.05 rad), at a distance from
    /// the base where only the forearm reaches it. The arm can then pass it with the forearm
    /// leading or trailing (the `left` and `right` routes of [`crate::task::labels`]) toward
    /// the same goal configuration. 2-link arms only. Default 0 (off).
    pub route_probability: f64,
    /// Smallest distance between the start end effector and the goal, metres. Default 0.3.
    pub min_goal_distance_m: f64,
    /// Clearance required of the start configuration, of the goal point (beyond the obstacle
    /// radius plus the link radius) and of at least one goal IK solution, metres. Default 0.02.
    pub clearance_margin_m: f64,
    /// Draws before giving up. Default 1000.
    pub max_attempts: usize,
}

impl Default for SceneSamplerConfig {
    fn default() -> Self {
        SceneSamplerConfig {
            obstacle_radius_m: [0.05, 0.12],
            obstacle_center_x_m: [-0.8, 0.8],
            obstacle_center_y_m: [-0.8, 0.8],
            blocking_probability: 0.8,
            route_probability: 0.0,
            min_goal_distance_m: 0.3,
            clearance_margin_m: 0.02,
            max_attempts: 1000,
        }
    }
}

impl SceneSamplerConfig {
    /// Checks the ranges (finite, min <= max, radius > 0, probability in [0, 1]).
    pub fn validate(&self) -> Result<()> {
        for (key, [lo, hi]) in [
            ("obstacle_radius_m", self.obstacle_radius_m),
            ("obstacle_center_x_m", self.obstacle_center_x_m),
            ("obstacle_center_y_m", self.obstacle_center_y_m),
        ] {
            if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
                return Err(Error::config(
                    format!("scene_sampler.{key}"),
                    format!("need finite min <= max, found [{lo}, {hi}]"),
                ));
            }
        }
        if self.obstacle_radius_m[0] <= 0.0 {
            return Err(Error::config(
                "scene_sampler.obstacle_radius_m",
                "minimum radius must be > 0",
            ));
        }
        for (key, p) in [
            ("blocking_probability", self.blocking_probability),
            ("route_probability", self.route_probability),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(Error::config(
                    format!("scene_sampler.{key}"),
                    format!("must be in [0, 1], found {p}"),
                ));
            }
        }
        for (key, value) in [
            ("min_goal_distance_m", self.min_goal_distance_m),
            ("clearance_margin_m", self.clearance_margin_m),
        ] {
            if !(value >= 0.0 && value.is_finite()) {
                return Err(Error::config(
                    format!("scene_sampler.{key}"),
                    format!("must be finite and >= 0, found {value}"),
                ));
            }
        }
        if self.max_attempts == 0 {
            return Err(Error::config("scene_sampler.max_attempts", "must be >= 1"));
        }
        Ok(())
    }
}

fn uniform(rng: &mut impl Rng, [lo, hi]: [f64; 2]) -> f64 {
    if hi > lo {
        rng.random_range(lo..=hi)
    } else {
        lo
    }
}

/// Draws one scene with one obstacle: the start and a goal configuration uniformly inside the
/// joint limits (the goal point is the goal configuration's end effector, so it is reachable),
/// the obstacle across the straight end-effector path (with `blocking_probability`) or free;
/// accepted when the start configuration is clear of the obstacle, the goal point is outside it
/// (radius + link radius) and some IK solution of the goal is clear, all by
/// `clearance_margin_m`, and the goal is `min_goal_distance_m` from the start end effector.
pub fn sample_scene(
    arm: &PlanarArm,
    config: &SceneSamplerConfig,
    rng: &mut impl Rng,
) -> Result<Scene> {
    config.validate()?;
    let lower = arm.lower_limits_rad();
    let upper = arm.upper_limits_rad();
    let margin = config.clearance_margin_m;
    for _ in 0..config.max_attempts {
        let mut draw_q = || -> Vec<f64> {
            lower
                .iter()
                .zip(&upper)
                .map(|(&lo, &hi)| uniform(rng, [lo, hi]))
                .collect()
        };
        let start_rad = draw_q();
        let goal_q = draw_q();
        let goal_m = arm.end_effector(&goal_q);
        let start_m = arm.end_effector(&start_rad);
        if (goal_m[0] - start_m[0]).hypot(goal_m[1] - start_m[1]) < config.min_goal_distance_m {
            continue;
        }
        let radius_m = uniform(rng, config.obstacle_radius_m);
        let route = config.route_probability > 0.0 && rng.random_bool(config.route_probability);
        let center_m = if route {
            match route_obstacle(arm, &start_rad, &goal_q, radius_m, margin, rng) {
                Some(center) => center,
                None => continue,
            }
        } else if rng.random_bool(config.blocking_probability) {
            let s = uniform(rng, [0.3, 0.7]);
            let (dx, dy) = (goal_m[0] - start_m[0], goal_m[1] - start_m[1]);
            let length = dx.hypot(dy);
            let offset = uniform(rng, [-0.5 * radius_m, 0.5 * radius_m]);
            [
                start_m[0] + s * dx - offset * dy / length,
                start_m[1] + s * dy + offset * dx / length,
            ]
        } else {
            [
                uniform(rng, config.obstacle_center_x_m),
                uniform(rng, config.obstacle_center_y_m),
            ]
        };
        let obstacle = CircleObstacle { center_m, radius_m };
        let obstacles = [obstacle];
        let start_clear = arm
            .clearance(&start_rad, &obstacles)
            .is_some_and(|c| c.clearance_m >= margin);
        let goal_distance = (goal_m[0] - center_m[0]).hypot(goal_m[1] - center_m[1]);
        let goal_clear = goal_distance >= radius_m + arm.link_radius_m() + margin;
        let goal_configuration_clear = match arm.ik_all(goal_m) {
            Ok(solutions) => solutions.iter().any(|s| {
                arm.clearance(&s.positions_rad, &obstacles)
                    .is_some_and(|c| c.clearance_m >= margin)
            }),
            // Not a 2-link arm: the drawn goal configuration itself.
            Err(crate::robot::IkError::UnsupportedDof { .. }) => arm
                .clearance(&goal_q, &obstacles)
                .is_some_and(|c| c.clearance_m >= margin),
            Err(_) => false,
        };
        if start_clear && goal_clear && goal_configuration_clear {
            return Ok(Scene {
                description: String::new(),
                start_rad,
                goal_m,
                obstacles: obstacles.to_vec(),
            });
        }
    }
    Err(Error::Invalid(format!(
        "scene sampler: no valid scene in {} attempts (relax scene_sampler ranges or margins)",
        config.max_attempts
    )))
}

/// The obstacle centre of a route scene (see [`SceneSamplerConfig::route_probability`]), or
/// `None` when the draw does not make one (same elbow branch at both ends, not a 2-link arm,
/// no room for the forearm-only distance band).
fn route_obstacle(
    arm: &PlanarArm,
    start_rad: &[f64],
    goal_rad: &[f64],
    radius_m: f64,
    margin_m: f64,
    rng: &mut impl Rng,
) -> Option<[f64; 2]> {
    let (&[s0, s1], &[g0, g1], &[l1, l2]) = (start_rad, goal_rad, arm.link_lengths_m()) else {
        return None;
    };
    if s1 * g1 >= 0.0 {
        return None;
    }
    // Where the straight joint-space segment straightens the elbow.
    let t = s1 / (s1 - g1);
    let angle = s0 + t * (g0 - s0) + uniform(rng, [-0.05, 0.05]);
    let reach = radius_m + arm.link_radius_m();
    let near = l1 + reach + margin_m + 0.03;
    let far = l1 + l2 + reach - 0.03;
    if far <= near {
        return None;
    }
    let distance = uniform(rng, [near, far]);
    let base = arm.base_m();
    Some([
        base[0] + distance * angle.cos(),
        base[1] + distance * angle.sin(),
    ])
}

/// `count` scenes from one seed (ChaCha8): the same seed gives the same scenes.
pub fn sample_scenes(
    arm: &PlanarArm,
    config: &SceneSamplerConfig,
    seed: u64,
    count: usize,
) -> Result<Vec<Scene>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..count)
        .map(|_| sample_scene(arm, config, &mut rng))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::robot::RobotDescription;

    fn arm() -> PlanarArm {
        PlanarArm::new(RobotDescription::planar_2link()).unwrap()
    }

    #[test]
    fn sampled_scenes_are_valid_and_seeded() {
        let arm = arm();
        let config = SceneSamplerConfig::default();
        let scenes = sample_scenes(&arm, &config, 42, 50).unwrap();
        assert_eq!(scenes, sample_scenes(&arm, &config, 42, 50).unwrap());
        assert_ne!(scenes, sample_scenes(&arm, &config, 43, 50).unwrap());
        let mut blocked = 0;
        for scene in &scenes {
            scene.observation(&arm, ModeRequest::Any, &[]).unwrap();
            let o = scene.obstacles[0];
            assert!(o.radius_m >= 0.05 && o.radius_m <= 0.12);
            let start_m = arm.end_effector(&scene.start_rad);
            let gap = crate::robot::point_segment_distance(start_m, scene.goal_m, o.center_m);
            if gap < o.radius_m {
                blocked += 1;
            }
        }
        // Most obstacles lie across the straight end-effector path.
        assert!(blocked >= 25, "{blocked} of 50 blocking");
    }

    #[test]
    fn yaml_round_trip_and_unknown_keys() {
        let scene = Scene {
            description: "test".into(),
            start_rad: vec![0.1, 0.2],
            goal_m: [0.3, 0.4],
            obstacles: vec![CircleObstacle {
                center_m: [0.5, 0.5],
                radius_m: 0.1,
            }],
        };
        let text = scene.to_yaml().unwrap();
        assert_eq!(Scene::from_yaml_str(&text, Path::new("x")).unwrap(), scene);
        let err = Scene::from_yaml_str(
            "start_rad: [0, 0]\ngoal_m: [0.5, 0]\ngoals: 1\n",
            Path::new("s.yaml"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("s.yaml") && err.contains("goals"), "{err}");
        let bad = SceneSamplerConfig {
            blocking_probability: 1.5,
            ..SceneSamplerConfig::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("blocking_probability"));
    }

    #[test]
    fn example_scenes_have_their_properties() {
        let arm = arm();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/scenes");
        let straight_collides = |scene: &Scene, goal_q: [f64; 2]| {
            let path = crate::robot::JointPath::from_waypoints(&[
                scene.start_rad.clone(),
                goal_q.to_vec(),
            ])
            .unwrap();
            arm.path_collision(&path, &scene.obstacles).is_some()
        };

        let blocked = Scene::load(&dir.join("blocked.yaml")).unwrap();
        blocked.observation(&arm, ModeRequest::Any, &[]).unwrap();
        let solutions = arm.ik_all(blocked.goal_m).unwrap();
        assert_eq!(solutions.len(), 2);
        for s in &solutions {
            assert!(arm
                .collision(&s.positions_rad, &blocked.obstacles)
                .is_none());
            assert!(straight_collides(&blocked, s.positions_rad), "{s:?}");
        }

        let two = Scene::load(&dir.join("two_branches.yaml")).unwrap();
        two.observation(&arm, ModeRequest::Any, &[]).unwrap();
        let solutions = arm.ik_all(two.goal_m).unwrap();
        assert_eq!(solutions.len(), 2);
        for s in &solutions {
            assert!(!straight_collides(&two, s.positions_rad), "{s:?}");
        }

        let unreachable = Scene::load(&dir.join("unreachable.yaml")).unwrap();
        assert!(matches!(
            unreachable.observation(&arm, ModeRequest::Any, &[]),
            Err(ObservationError::GoalOutOfReach { .. })
        ));
    }
}
