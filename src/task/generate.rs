//! `dplan generate`: random scenes of the reference task, the expert's path of every homotopy
//! class toward every goal configuration, each labelled geometrically, plus receding-horizon
//! copies (the rest of each path from intermediate states, so the node can replan mid-motion).
//!
//! Scenes are drawn from one seed; each scene's expert run has its own seed derived from the
//! scene index, and scenes are processed in parallel (rayon) but collected in order, so the data
//! file is the same for a seed whatever the number of threads.

use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::expert::{plan_all_classes, resample, Config2, ExpertConfig, ExpertPath, ExpertProblem};
use super::labels::{label_path, labelling_obstacle, LabelScheme, ModeLabel, Side};
use super::scene::{sample_scenes, Scene, SceneSamplerConfig};
use crate::planning::{condition_vector, ConditionTerm, ModeRequest};
use crate::robot::{JointPath, PlanarArm, RobotDescription};
use crate::train::{Dataset, DatasetInfo, TermInfo, DATASET_FORMAT_VERSION};
use crate::{Error, Result};

/// `config/data_*.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// The robot.
    pub robot: RobotDescription,
    /// Number of scenes.
    pub scenes: usize,
    /// Seed of the scene draw and of every expert run.
    pub seed: u64,
    /// Waypoints per path.
    pub horizon: usize,
    /// Scene distribution.
    #[serde(default)]
    pub scene_sampler: SceneSamplerConfig,
    /// Expert planner settings.
    #[serde(default)]
    pub expert: ExpertConfig,
    /// Clearance the expert keeps from obstacles (beyond the link radius), metres.
    pub clearance_m: f64,
    /// Which part of the geometric label becomes the mode label.
    #[serde(default)]
    pub label_scheme: LabelScheme,
    /// Fractions of each path's waypoints from which the rest is added again as a sample.
    #[serde(default)]
    pub receding_horizon_fractions: Vec<f64>,
    /// The condition vector's terms, in order.
    pub condition_terms: Vec<ConditionTerm>,
}

impl DataConfig {
    /// Reads and validates a YAML config (unknown keys are errors).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let config: DataConfig = serde_yaml::from_str(&text).map_err(|source| Error::Yaml {
            path: path.to_path_buf(),
            source,
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every value (NaN fails).
    pub fn validate(&self) -> Result<()> {
        self.robot.validate()?;
        self.scene_sampler.validate()?;
        self.expert.validate()?;
        if self.robot.joints.len() != 2 {
            return Err(Error::config(
                "robot.joints",
                "the reference task's expert plans for 2-joint arms",
            ));
        }
        if self.scenes == 0 {
            return Err(Error::config("scenes", "must be > 0"));
        }
        if self.horizon < 2 {
            return Err(Error::config("horizon", "must be >= 2"));
        }
        if !(self.clearance_m >= 0.0 && self.clearance_m < 1.0) {
            return Err(Error::config("clearance_m", "must be in [0, 1)"));
        }
        if let Some(f) = self
            .receding_horizon_fractions
            .iter()
            .find(|f| !(**f > 0.0 && **f < 1.0))
        {
            return Err(Error::config(
                "receding_horizon_fractions",
                format!("each must be in (0, 1), found {f}"),
            ));
        }
        if self.condition_terms.is_empty() {
            return Err(Error::config("condition_terms", "at least one term"));
        }
        Ok(())
    }
}

/// What the generator produced.
#[derive(Debug, Clone, Serialize)]
pub struct GenerateSummary {
    /// Scenes drawn.
    pub scenes: usize,
    /// Samples written (expert paths and their receding-horizon copies).
    pub samples: usize,
    /// Expert paths (before receding-horizon copies).
    pub expert_paths: usize,
    /// Samples per mode name.
    pub mode_counts: Vec<(String, usize)>,
    /// `scenes_by_class_count[k]`: scenes whose expert found `k` classes.
    pub scenes_by_class_count: Vec<usize>,
    /// Expert paths dropped (no label, or a collision at zero clearance).
    pub dropped_paths: usize,
    /// Scenes where one goal configuration is reached by expert paths of both routes (left and
    /// right around the obstacle).
    pub scenes_with_both_routes: usize,
}

/// One expert demonstration ready for the data set.
struct Sample {
    path: Vec<f32>,
    condition: Vec<f32>,
    label: u32,
}

/// The samples of one scene, and how many expert paths it had and dropped.
struct SceneSamples {
    samples: Vec<Sample>,
    classes: usize,
    dropped: usize,
    both_routes: bool,
}

/// Generates the data set. `progress` is called once per finished scene (from worker threads).
pub fn generate(
    config: &DataConfig,
    progress: &(dyn Fn() + Sync),
) -> Result<(Dataset, GenerateSummary)> {
    config.validate()?;
    let arm = PlanarArm::new(config.robot.clone())?;
    let scenes = sample_scenes(&arm, &config.scene_sampler, config.seed, config.scenes)?;
    let mode_names = config.label_scheme.names();
    let per_scene: Vec<Result<SceneSamples>> = scenes
        .par_iter()
        .enumerate()
        .map(|(index, scene)| {
            let out = scene_samples(config, &arm, scene, index as u64, &mode_names);
            progress();
            out
        })
        .collect();

    let info = DatasetInfo {
        format_version: DATASET_FORMAT_VERSION,
        horizon: config.horizon,
        joints: config.robot.joint_names(),
        robot: config.robot.clone(),
        condition_terms: config
            .condition_terms
            .iter()
            .map(|t| TermInfo {
                name: t.name().to_string(),
                dim: t.dim(arm.dof()),
            })
            .collect(),
        mode_names: mode_names.clone(),
        scenes: config.scenes,
        seed: config.seed,
        generator: serde_json::to_value(config).map_err(|e| Error::Invalid(e.to_string()))?,
    };
    let mut data = Dataset::new(info);
    let mut by_count = Vec::new();
    let (mut expert_paths, mut dropped, mut both_routes) = (0, 0, 0);
    for (index, result) in per_scene.into_iter().enumerate() {
        let scene = result?;
        if by_count.len() <= scene.classes {
            by_count.resize(scene.classes + 1, 0);
        }
        by_count[scene.classes] += 1;
        expert_paths += scene.classes;
        dropped += scene.dropped;
        both_routes += usize::from(scene.both_routes);
        for s in scene.samples {
            data.push(&s.path, &s.condition, s.label, index as u32)?;
        }
    }
    let counts = data.label_counts();
    let summary = GenerateSummary {
        scenes: config.scenes,
        samples: data.len(),
        expert_paths,
        mode_counts: mode_names.into_iter().zip(counts).collect(),
        scenes_by_class_count: by_count,
        dropped_paths: dropped,
        scenes_with_both_routes: both_routes,
    };
    Ok((data, summary))
}

/// The expert's paths for `scene` (every homotopy class toward every goal configuration within
/// the length ratio), planned with the config's clearance; `index` seeds the shortcutting as in
/// [`generate`]. Empty when the start is within the clearance of the obstacle or no goal
/// configuration can be reached.
pub fn expert_paths(
    config: &DataConfig,
    arm: &PlanarArm,
    scene: &Scene,
    index: u64,
) -> Result<Vec<ExpertPath>> {
    let obstacles = &scene.obstacles;
    let clearance = config.clearance_m;
    let lower = arm.lower_limits_rad();
    let upper = arm.upper_limits_rad();
    let is_free = |q: Config2| {
        arm.within_limits(&q)
            && arm
                .clearance(&q, obstacles)
                .is_none_or(|c| c.clearance_m >= clearance)
    };
    let problem = ExpertProblem {
        limits: [[lower[0], upper[0]], [lower[1], upper[1]]],
        is_free: &is_free,
    };
    let goals: Vec<Config2> = arm
        .ik_all(scene.goal_m)
        .map(|solutions| solutions.into_iter().map(|s| s.positions_rad).collect())
        .unwrap_or_default();
    let (Some(&q0), Some(&q1)) = (scene.start_rad.first(), scene.start_rad.get(1)) else {
        return Err(Error::Invalid(
            "expert: the scene's start needs 2 joint values".into(),
        ));
    };
    let start: Config2 = [q0, q1];
    if !is_free(start) {
        return Ok(Vec::new());
    }
    let seed = config.seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    plan_all_classes(
        &problem,
        start,
        &goals,
        config.horizon,
        &config.expert,
        seed,
    )
}

/// The expert paths of one scene toward each collision-free goal configuration, labelled, with
/// their receding-horizon copies.
fn scene_samples(
    config: &DataConfig,
    arm: &PlanarArm,
    scene: &Scene,
    index: u64,
    mode_names: &[String],
) -> Result<SceneSamples> {
    let obstacles = &scene.obstacles;
    let paths = expert_paths(config, arm, scene, index)?;
    let mut out = SceneSamples {
        samples: Vec::new(),
        classes: paths.len(),
        dropped: 0,
        both_routes: false,
    };
    let mut routes = std::collections::BTreeSet::new();
    for expert in &paths {
        let mut starts = vec![0usize];
        starts.extend(
            config
                .receding_horizon_fractions
                .iter()
                .map(|f| (f * (config.horizon - 1) as f64).round() as usize)
                .filter(|&k| k > 0 && k + 1 < config.horizon),
        );
        for k in starts {
            let rest = resample(&expert.waypoints[k..], config.horizon);
            let sub_scene = Scene {
                description: String::new(),
                start_rad: rest[0].to_vec(),
                goal_m: scene.goal_m,
                obstacles: obstacles.clone(),
            };
            match labelled_sample(config, arm, &sub_scene, &rest, mode_names) {
                Some((sample, label)) => {
                    if k == 0 {
                        routes.insert((expert.goal_index, label.side));
                    }
                    out.samples.push(sample);
                }
                None if k == 0 => out.dropped += 1,
                None => {}
            }
        }
    }
    out.both_routes = routes
        .iter()
        .any(|&(goal, side)| side == Side::Left && routes.contains(&(goal, Side::Right)));
    Ok(out)
}

/// The sample for `path` in `scene`: `None` when the path collides at zero clearance, has no
/// label, or the scene's observation is invalid (e.g. the start touches the obstacle).
fn labelled_sample(
    config: &DataConfig,
    arm: &PlanarArm,
    scene: &Scene,
    path: &[Config2],
    mode_names: &[String],
) -> Option<(Sample, ModeLabel)> {
    let waypoints: Vec<Vec<f64>> = path.iter().map(|q| q.to_vec()).collect();
    let joint_path = JointPath::from_waypoints(&waypoints).ok()?;
    if arm.path_collision(&joint_path, &scene.obstacles).is_some() {
        return None;
    }
    let obstacle = labelling_obstacle(arm, &scene.start_rad, scene.goal_m, &scene.obstacles)?;
    let mode = label_path(arm, &joint_path, obstacle)?;
    let name = config.label_scheme.name_of(mode);
    let label = mode_names.iter().position(|n| n == name)? as u32;
    let observation = scene.observation(arm, ModeRequest::Any, &[]).ok()?;
    let condition = condition_vector(&config.condition_terms, arm, &observation);
    let sample = Sample {
        path: path
            .iter()
            .flat_map(|q| [q[0] as f32, q[1] as f32])
            .collect(),
        condition,
        label,
    };
    Some((sample, mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(scenes: usize) -> DataConfig {
        DataConfig {
            robot: RobotDescription::planar_2link(),
            scenes,
            seed: 5,
            horizon: 16,
            scene_sampler: SceneSamplerConfig::default(),
            expert: ExpertConfig {
                grid_cells: 61,
                ..ExpertConfig::default()
            },
            clearance_m: 0.02,
            label_scheme: LabelScheme::SideElbow,
            receding_horizon_fractions: vec![0.5],
            condition_terms: vec![
                ConditionTerm::JointPositions,
                ConditionTerm::GoalPosition,
                ConditionTerm::Obstacle,
            ],
        }
    }

    #[test]
    fn generates_labelled_collision_free_multimodal_data() {
        let (data, summary) = generate(&config(12), &|| {}).unwrap();
        assert_eq!(summary.scenes, 12);
        assert_eq!(summary.samples, data.len());
        assert!(summary.expert_paths >= 12, "{summary:?}");
        // Several scenes have more than one class.
        let multi: usize = summary.scenes_by_class_count.iter().skip(2).sum();
        assert!(multi >= 2, "{summary:?}");
        let arm = PlanarArm::new(RobotDescription::planar_2link()).unwrap();
        for i in 0..data.len() {
            let path = data.path(i);
            assert_eq!(path.len(), 32);
            let waypoints: Vec<Vec<f64>> = path
                .chunks(2)
                .map(|q| vec![f64::from(q[0]), f64::from(q[1])])
                .collect();
            // The condition starts with the path's first waypoint.
            assert_eq!(&data.condition(i)[..2], &path[..2]);
            assert!(arm.within_limits(&waypoints[0]));
            assert_eq!(data.condition(i).len(), 7);
        }
        // Same seed, same data.
        let (again, _) = generate(&config(12), &|| {}).unwrap();
        assert_eq!(again.paths, data.paths);
        assert_eq!(again.labels, data.labels);
    }

    #[test]
    fn rejects_bad_config_by_key() {
        let mut c = config(1);
        c.receding_horizon_fractions = vec![1.5];
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("receding_horizon_fractions"), "{err}");
    }
}
