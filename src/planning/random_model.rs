//! Randomly initialised model folders, for tests, benchmarks and demos that need a real
//! [`super::DiffusionSource`] but no trained weights. The paths such a model proposes are noise;
//! what matters is that every stage (loading, normalisation, sampling, scoring, plotting) runs
//! on a genuine model folder.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use super::condition::ConditionTerm;
use crate::diffusion::SchedulerConfig;
use crate::model::{
    self, ActionSpec, ConditionSpec, ModeSpec, ModelSpec, NetworkSpec, TrainingProvenance,
    WeightsSpec, MODEL_FORMAT_VERSION, MODEL_WEIGHTS,
};
use crate::robot::RobotDescription;
use crate::Result;

/// A small valid `model.yaml` for the reference 2-link arm: the condition terms
/// `[joint_positions, goal_position, obstacle]` with ranges covering the reference task, a
/// 2-level U-Net (`down_dims [8, 16]`, kernel 3, 4 groups, step embedding 8), `horizon`
/// waypoints (even), and `mode_names` with an embedding of 4 (no modes when empty).
pub fn tiny_model_spec(horizon: usize, mode_names: &[String]) -> ModelSpec {
    let robot = RobotDescription::planar_2link();
    let lower: Vec<f64> = robot.joints.iter().map(|j| j.lower_rad).collect();
    let upper: Vec<f64> = robot.joints.iter().map(|j| j.upper_rad).collect();
    let terms = [
        ConditionTerm::JointPositions,
        ConditionTerm::GoalPosition,
        ConditionTerm::Obstacle,
    ];
    let reach_m = robot.link_lengths_m.iter().sum::<f64>();
    let mut cond_min = lower.clone();
    let mut cond_max = upper.clone();
    cond_min.extend([-reach_m, -reach_m, -reach_m, -reach_m, 0.0]);
    cond_max.extend([reach_m, reach_m, reach_m, reach_m, 0.15]);
    ModelSpec {
        format_version: MODEL_FORMAT_VERSION,
        name: "tiny_random".into(),
        description: "randomly initialised, for tests".into(),
        network: NetworkSpec {
            down_dims: vec![8, 16],
            kernel_size: 3,
            n_groups: 4,
            diffusion_step_embed_dim: 8,
            use_film_scale_modulation: true,
        },
        horizon,
        action: ActionSpec {
            joints: robot.joint_names(),
            min: lower.clone(),
            max: upper.clone(),
        },
        condition: ConditionSpec {
            terms: terms
                .iter()
                .map(|t| model::ConditionTerm {
                    name: t.name().to_string(),
                    dim: t.dim(robot.joints.len()),
                })
                .collect(),
            min: cond_min,
            max: cond_max,
        },
        modes: (!mode_names.is_empty()).then(|| ModeSpec {
            names: mode_names.to_vec(),
            embed_dim: 4,
        }),
        scheduler: SchedulerConfig::default(),
        robot,
        training: TrainingProvenance {
            steps: 0,
            data_seed: None,
            final_loss: None,
            data_sha256: None,
            date: None,
            notes: "random initialisation".into(),
        },
        weights: WeightsSpec {
            file: MODEL_WEIGHTS.into(),
            sha256: "0".repeat(64),
        },
    }
}

/// Writes a model folder for `spec` to `dir` with seeded random weights, initialised as
/// PyTorch initialises these layers: convolution and linear weights and their biases
/// ~ U(±1/sqrt(fan_in)), the label embedding ~ N(0, 1), normalisation weights 1 and biases 0.
/// Returns the spec as written (with the weights' sha256). The same seed writes the same bytes.
pub fn random_model_folder(dir: &Path, spec: &ModelSpec, seed: u64) -> Result<ModelSpec> {
    let shapes = model::expected_tensors(&spec.unet_config(), model::mode_embedding_config(spec))?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut tensors = HashMap::with_capacity(shapes.len());
    for (name, dims) in &shapes {
        let n: usize = dims.iter().product();
        let fan_in = |d: &[usize]| d.iter().skip(1).product::<usize>().max(1) as f32;
        let values: Vec<f32> = if name.starts_with(model::MODE_EMBEDDING_PREFIX) {
            (0..n).map(|_| rng.sample(StandardNormal)).collect()
        } else if dims.len() >= 2 {
            uniform(&mut rng, n, fan_in(dims))
        } else {
            let weight = name
                .strip_suffix(".bias")
                .and_then(|stem| shapes.get(&format!("{stem}.weight")))
                .filter(|w| w.len() >= 2);
            match weight {
                Some(w) => uniform(&mut rng, n, fan_in(w)),
                None if name.ends_with(".weight") => vec![1.0; n],
                None => vec![0.0; n],
            }
        };
        tensors.insert(
            name.clone(),
            Tensor::from_vec(values, dims.as_slice(), &Device::Cpu)?,
        );
    }
    model::save_model_folder(dir, spec, &tensors)
}

fn uniform(rng: &mut ChaCha8Rng, n: usize, fan_in: f32) -> Vec<f32> {
    let bound = 1.0 / fan_in.sqrt();
    (0..n).map(|_| rng.random_range(-bound..bound)).collect()
}
