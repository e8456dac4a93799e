//! The denoiser: Diffusion Policy's 1-D conditional U-Net (Chi et al. 2023) with LeRobot 0.4.4's
//! tensor names, an optional mode-label embedding for classifier-free guidance, and the model
//! folder format (`model.yaml` + `model.safetensors`, see `docs/MODEL_FORMAT.md`).
//!
//! - [`UnetConfig`], [`ConditionalUnet1d`]: the network (`diffusion.unet.*` tensors).
//! - [`Denoiser`]: U-Net + `mode_embedding.weight`; predicts epsilon (or x0) for a noisy batch.
//! - [`ModelSpec`]: `model.yaml`, with the min/max normalisation of actions and conditions.
//! - [`LoadedModel::load`], [`save_model_folder`]: read and write a model folder with checks.

mod blocks;
mod config;
mod conv;
mod cpu;
mod denoiser;
mod folder;
mod ops;
mod spec;
mod train_ops;
mod unet;

pub use config::UnetConfig;
pub use cpu::{sgemm_square, CpuThreads, ForwardOptions, KernelChoice, Precision};
pub use denoiser::{Denoiser, ModeEmbeddingConfig, MODE_EMBEDDING_PREFIX};
pub use folder::{
    check_tensors, expected_tensors, mode_embedding_config, save_model_folder,
    save_model_folder_varmap, sha256_file, LoadedModel,
};
pub use spec::{
    ActionSpec, ConditionSpec, ConditionTerm, ModeSpec, ModelSpec, NetworkSpec, TrainingProvenance,
    WeightsSpec, ANY_MODE, MODEL_FORMAT_VERSION, MODEL_WEIGHTS, MODEL_YAML,
};
pub use unet::{ConditionalUnet1d, UNET_PREFIX};

#[cfg(test)]
pub(crate) mod test_util {
    use candle_core::Tensor;

    /// Max |a - b| over all elements.
    pub(crate) fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
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
}
