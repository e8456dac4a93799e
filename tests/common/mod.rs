//! Shared helpers for the model tests.
#![allow(dead_code, clippy::unwrap_used)]

use diffusion_planner::diffusion::SchedulerConfig;
use diffusion_planner::model::{
    ActionSpec, ConditionSpec, ConditionTerm, ModelSpec, NetworkSpec, TrainingProvenance,
    WeightsSpec, MODEL_FORMAT_VERSION, MODEL_WEIGHTS,
};
use diffusion_planner::robot::RobotDescription;

/// A valid spec for the planar 2-link arm: condition terms of 2 + 6 = 8 entries, the given
/// network sizes, horizon 16, no modes.
pub fn spec(
    down_dims: &[usize],
    kernel_size: usize,
    n_groups: usize,
    step_dim: usize,
) -> ModelSpec {
    ModelSpec {
        format_version: MODEL_FORMAT_VERSION,
        name: "test_model".into(),
        description: "unit test".into(),
        network: NetworkSpec {
            down_dims: down_dims.to_vec(),
            kernel_size,
            n_groups,
            diffusion_step_embed_dim: step_dim,
            use_film_scale_modulation: true,
        },
        horizon: 16,
        action: ActionSpec {
            joints: vec!["shoulder".into(), "elbow".into()],
            min: vec![-3.0, -2.5],
            max: vec![3.0, 2.5],
        },
        condition: ConditionSpec {
            terms: vec![
                ConditionTerm {
                    name: "q_start".into(),
                    dim: 2,
                },
                ConditionTerm {
                    name: "scene".into(),
                    dim: 6,
                },
            ],
            min: vec![-3.0, -2.5, -1.0, -1.0, -1.0, -1.0, 0.0, 0.2],
            max: vec![3.0, 2.5, 1.0, 1.0, 1.0, 1.0, 0.5, 0.2],
        },
        modes: None,
        scheduler: SchedulerConfig::default(),
        robot: RobotDescription::planar_2link(),
        training: TrainingProvenance {
            steps: 0,
            data_seed: Some(7),
            final_loss: None,
            data_sha256: None,
            date: None,
            notes: String::new(),
        },
        weights: WeightsSpec {
            file: MODEL_WEIGHTS.into(),
            sha256: String::new(),
        },
    }
}

/// Max |a - b| over all elements.
pub fn max_abs_diff(a: &candle_core::Tensor, b: &candle_core::Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

pub mod device_checks;
