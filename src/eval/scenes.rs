//! Held-out scenes: drawn with the data config's scene sampler from the evaluation seed, each
//! with the expert's labelled paths (the ground-truth modes).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::robot::{JointPath, PlanarArm};
use crate::task::generate::{expert_paths, DataConfig};
use crate::task::{label_path, labelling_obstacle, sample_scene, LabelScheme, Scene};
use crate::{Error, Result};

/// Draws per requested scene before giving up (plus a constant), so that a config whose scenes
/// are almost never feasible fails instead of looping.
const MAX_DRAWS_PER_SCENE: usize = 20;

/// One expert path with its label.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExpertMode {
    /// Label index in the scheme's names.
    pub label: usize,
    pub path: JointPath,
}

/// A feasible held-out scene.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeldOutScene {
    /// Position in the sequence of draws from the seed (infeasible draws included).
    pub draw: usize,
    pub scene: Scene,
    /// The expert's labelled, collision-free paths (at least one).
    pub expert: Vec<ExpertMode>,
}

impl HeldOutScene {
    /// Expert paths per label index (`num_labels` entries).
    pub fn expert_counts(&self, num_labels: usize) -> Vec<usize> {
        let mut counts = vec![0; num_labels];
        for mode in &self.expert {
            if let Some(count) = counts.get_mut(mode.label) {
                *count += 1;
            }
        }
        counts
    }

    /// The expert's labels (named by `mode_names`) include a `left` and a `right` route.
    pub fn both_routes(&self, mode_names: &[String]) -> bool {
        let has = |side: &str| {
            self.expert.iter().any(|e| {
                mode_names
                    .get(e.label)
                    .is_some_and(|n| n == side || n.starts_with(&format!("{side}_")))
            })
        };
        has("left") && has("right")
    }
}

/// The held-out scenes and how many draws were infeasible.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldOutSet {
    pub scenes: Vec<HeldOutScene>,
    /// Draws where the expert found no labelled collision-free path (e.g. the obstacle blocks
    /// the shoulder's way within the joint limits), skipped.
    pub infeasible: usize,
}

/// The first `count` feasible scenes drawn (ChaCha8 from `seed`, [`sample_scene`] with the
/// config's robot and sampler) with their expert paths (the config's expert and clearance,
/// seeded from `seed` and the draw index; kept when collision-free at zero clearance and
/// labelled under `scheme`, as `dplan generate` keeps them). `progress` is called per draw.
pub fn held_out_scenes(
    config: &DataConfig,
    scheme: LabelScheme,
    seed: u64,
    count: usize,
    progress: &mut dyn FnMut(&HeldOutSet),
) -> Result<HeldOutSet> {
    config.validate()?;
    let arm = PlanarArm::new(config.robot.clone())?;
    let mut expert_config = config.clone();
    expert_config.seed = seed;
    let names = scheme.names();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut set = HeldOutSet {
        scenes: Vec::with_capacity(count),
        infeasible: 0,
    };
    let max_draws = count * MAX_DRAWS_PER_SCENE + 100;
    for draw in 0..max_draws {
        if set.scenes.len() == count {
            break;
        }
        let scene = sample_scene(&arm, &config.scene_sampler, &mut rng)?;
        let expert = labelled_expert_paths(&expert_config, &arm, &scene, draw, scheme, &names)?;
        if expert.is_empty() {
            set.infeasible += 1;
        } else {
            set.scenes.push(HeldOutScene {
                draw,
                scene,
                expert,
            });
        }
        progress(&set);
    }
    if set.scenes.len() < count {
        return Err(Error::Invalid(format!(
            "eval: only {} feasible scenes in {max_draws} draws ({} infeasible); check the data \
             config's scene_sampler",
            set.scenes.len(),
            set.infeasible
        )));
    }
    Ok(set)
}

fn labelled_expert_paths(
    config: &DataConfig,
    arm: &PlanarArm,
    scene: &Scene,
    draw: usize,
    scheme: LabelScheme,
    names: &[String],
) -> Result<Vec<ExpertMode>> {
    let Some(obstacle) = labelling_obstacle(arm, &scene.start_rad, scene.goal_m, &scene.obstacles)
    else {
        return Ok(Vec::new());
    };
    let mut modes = Vec::new();
    for expert in expert_paths(config, arm, scene, draw as u64)? {
        let waypoints: Vec<Vec<f64>> = expert.waypoints.iter().map(|q| q.to_vec()).collect();
        let path = JointPath::from_waypoints(&waypoints)?;
        if arm.path_collision(&path, &scene.obstacles).is_some() {
            continue;
        }
        let Some(label) = label_path(arm, &path, obstacle) else {
            continue;
        };
        let name = scheme.name_of(label);
        if let Some(label) = names.iter().position(|n| n == name) {
            modes.push(ExpertMode { label, path });
        }
    }
    Ok(modes)
}
