//! The diffusion model as a [`CandidateSource`]: a trained model folder (`model.yaml` +
//! weights, see `docs/MODEL_FORMAT.md`) sampled with [`crate::diffusion::sample`].
//!
//! One call of [`CandidateSource::sample`]:
//! 1. the raw condition vector (terms in the model's order, see [`ConditionTerm`]) is normalised
//!    with the model's min/max statistics (`ConditionSpec::normalize`);
//! 2. K paths of `(T, D)` are sampled in one batch with the source's [`SamplerSettings`]: with a
//!    label, classifier-free guidance at `settings.guidance_scale`; without one, the model's
//!    null label (or no label at all for a model without modes);
//! 3. the samples are denormalised to radians (`ActionSpec::denormalize`) and returned with
//!    each candidate's x̂0 variance over the last `settings.record_last_k` reverse steps.
//!
//! The x̂0 variance is in the model's **normalised** units (the network's [-1, 1] space,
//! squared), not in rad²: it measures how much the prediction still moves near the end of the
//! reverse process, independent of each joint's range. It is 0 for every candidate when
//! `record_last_k < 2`.
//!
//! Reproducible: all noise comes from the seed (see [`crate::diffusion::sampler`]), so on the
//! CPU the same model, settings, condition, label, K and seed give a byte-identical batch.

use std::path::Path;

use candle_core::{DType, Device, Tensor};

use super::condition::ConditionTerm;
use super::source::{CandidateBatch, CandidateSource};
use crate::device::DeviceSpec;
use crate::diffusion::{sample, SampleRequest, SamplerSettings};
use crate::model::{LoadedModel, ModelSpec, Precision};
use crate::{Error, Result};

/// A trained diffusion model that proposes candidate paths (see the module docs).
pub struct DiffusionSource {
    model: LoadedModel,
    settings: SamplerSettings,
    terms: Vec<ConditionTerm>,
    mode_names: Vec<String>,
}

impl std::fmt::Debug for DiffusionSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiffusionSource")
            .field("model", &self.model.spec().name)
            .field("dir", &self.model.dir())
            .field("settings", &self.settings)
            .field("terms", &self.terms)
            .field("mode_names", &self.mode_names)
            .finish()
    }
}

impl DiffusionSource {
    /// Loads the model folder `dir` onto `device` (every check of [`LoadedModel::load`]) and
    /// wraps it (see [`Self::from_model`]).
    pub fn load(dir: &Path, device: DeviceSpec, settings: SamplerSettings) -> Result<Self> {
        Self::load_with_precision(dir, device, settings, Precision::F32)
    }

    /// [`Self::load`] with the network's weights and activations in `precision`.
    pub fn load_with_precision(
        dir: &Path,
        device: DeviceSpec,
        settings: SamplerSettings,
        precision: Precision,
    ) -> Result<Self> {
        let device = device.open()?;
        let model = LoadedModel::load_with_precision(dir, &device, precision)?;
        Self::from_model(model, settings)
    }

    /// Wraps a loaded model. Errors: a condition term name in `model.yaml` that is not a
    /// [`ConditionTerm`] name (`joint_positions`, `goal_position`, `obstacle`), a term whose
    /// `dim` differs from what that term holds for the model's robot, and invalid `settings`
    /// (including more inference steps than the model's training timesteps).
    pub fn from_model(model: LoadedModel, settings: SamplerSettings) -> Result<Self> {
        let spec = model.spec();
        let dof = spec.action.dim();
        let mut terms = Vec::with_capacity(spec.condition.terms.len());
        for (i, term) in spec.condition.terms.iter().enumerate() {
            let key = format!("condition.terms[{i}]");
            let Some(known) = ConditionTerm::from_name(&term.name) else {
                let names: Vec<&str> = ConditionTerm::ALL.iter().map(|t| t.name()).collect();
                return Err(Error::config(
                    key,
                    format!(
                        "unknown condition term `{}` in {}; this planner builds {names:?}",
                        term.name,
                        model.dir().join(crate::model::MODEL_YAML).display()
                    ),
                ));
            };
            if known.dim(dof) != term.dim {
                return Err(Error::config(
                    format!("{key}.dim"),
                    format!(
                        "term `{}` holds {} values for a {dof}-joint robot, model.yaml says {}",
                        term.name,
                        known.dim(dof),
                        term.dim
                    ),
                ));
            }
            terms.push(known);
        }
        let mode_names = spec.modes.as_ref().map_or(Vec::new(), |m| m.names.clone());
        let source = DiffusionSource {
            model,
            settings,
            terms,
            mode_names,
        };
        source.check_settings()?;
        Ok(source)
    }

    /// The model's `model.yaml`.
    pub fn spec(&self) -> &ModelSpec {
        self.model.spec()
    }

    /// The folder the model was loaded from.
    pub fn dir(&self) -> &Path {
        self.model.dir()
    }

    /// The sampler settings used by every call.
    pub fn settings(&self) -> &SamplerSettings {
        &self.settings
    }

    /// The sampler settings, to change between calls (checked at the next call).
    pub fn settings_mut(&mut self) -> &mut SamplerSettings {
        &mut self.settings
    }

    /// Sets how the network's forward pass computes (fused CPU kernels, generic or tensor ops).
    pub fn set_forward_options(&mut self, options: crate::model::ForwardOptions) {
        self.model.set_forward_options(options);
    }

    /// Whether the network runs on a CUDA device.
    pub fn is_cuda(&self) -> bool {
        self.model.device().is_cuda()
    }

    fn check_settings(&self) -> Result<()> {
        self.settings.validate()?;
        let n = self.spec().scheduler.num_train_timesteps;
        if self.settings.inference_steps > n {
            return Err(Error::config(
                "inference_steps",
                format!(
                    "must be <= the model's num_train_timesteps = {n}, found {}",
                    self.settings.inference_steps
                ),
            ));
        }
        Ok(())
    }

    /// The normalised condition as a (1, C) tensor on the model's device; `None` when C = 0.
    fn condition_tensor(&self, condition: &[f32]) -> Result<Option<Tensor>> {
        let spec = &self.spec().condition;
        if condition.len() != spec.dim() {
            return Err(Error::Shape {
                what: "diffusion source condition vector".to_string(),
                expected: vec![spec.dim()],
                found: vec![condition.len()],
            });
        }
        if let Some(i) = condition.iter().position(|v| !v.is_finite()) {
            return Err(Error::Invalid(format!(
                "diffusion source condition vector: entry {i} is {}",
                condition[i]
            )));
        }
        if condition.is_empty() {
            return Ok(None);
        }
        let mut normalised = condition.to_vec();
        spec.normalize(&mut normalised)?;
        let tensor = Tensor::from_vec(normalised, (1, condition.len()), self.model.device())?;
        Ok(Some(tensor))
    }

    fn label(&self, label: Option<usize>) -> Result<Option<u32>> {
        let Some(index) = label else { return Ok(None) };
        if index >= self.mode_names.len() {
            return Err(Error::Invalid(format!(
                "diffusion source: label {index} out of range; model `{}` has {} modes {:?}",
                self.spec().name,
                self.mode_names.len(),
                self.mode_names
            )));
        }
        u32::try_from(index)
            .map(Some)
            .map_err(|_| Error::Invalid(format!("label {index} does not fit in u32")))
    }
}

impl CandidateSource for DiffusionSource {
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
        self.check_settings()?;
        if num_samples == 0 {
            return Err(Error::Invalid(
                "diffusion source: num_samples must be >= 1, found 0".to_string(),
            ));
        }
        let spec = self.spec();
        let (horizon, dof) = (spec.horizon, spec.action.dim());
        let request = SampleRequest {
            shape: vec![num_samples, horizon, dof],
            global_cond: self.condition_tensor(condition)?,
            label: self.label(label)?,
            seed,
            device: self.model.device().clone(),
        };
        let output = sample(
            self.model.denoiser(),
            &spec.scheduler,
            &self.settings,
            &request,
        )?;
        let mut values = output
            .sample
            .to_device(&Device::Cpu)?
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        spec.action.denormalize(&mut values)?;
        let positions_rad = values.into_iter().map(f64::from).collect();
        let x0_variance = output.x0_variance()?.into_iter().map(f64::from).collect();
        CandidateBatch::new(num_samples, horizon, dof, positions_rad, x0_variance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diffusion::SamplerKind;
    use crate::model::MODEL_YAML;
    use crate::planning::{random_model_folder, tiny_model_spec};

    const HORIZON: usize = 8;

    fn modes() -> Vec<String> {
        vec!["left".into(), "right".into()]
    }

    fn settings() -> SamplerSettings {
        SamplerSettings {
            kind: SamplerKind::Ddim,
            inference_steps: 4,
            eta: 0.0,
            guidance_scale: 2.0,
            record_last_k: 3,
        }
    }

    /// start (2), goal (2), obstacle (3), raw units.
    const CONDITION: [f32; 7] = [-0.2, 0.8, -0.3, 0.6, 0.45, 0.45, 0.08];

    fn folder(spec: &ModelSpec) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        random_model_folder(dir.path(), spec, 3).unwrap();
        dir
    }

    #[test]
    fn samples_are_seeded_denormalised_and_guided() {
        let dir = folder(&tiny_model_spec(HORIZON, &modes()));
        let mut source = DiffusionSource::load(dir.path(), DeviceSpec::Cpu, settings()).unwrap();
        assert_eq!(source.mode_names(), modes().as_slice());
        assert_eq!(source.condition_terms(), ConditionTerm::ALL.as_slice());

        let batch = source.sample(&CONDITION, None, 5, 11).unwrap();
        assert_eq!(
            (batch.num_candidates(), batch.horizon(), batch.dof()),
            (5, HORIZON, 2)
        );
        assert!(batch.x0_variance().iter().all(|v| *v > 0.0));
        // Same seed: the same bytes; another seed, another label: other paths.
        assert_eq!(batch, source.sample(&CONDITION, None, 5, 11).unwrap());
        assert_ne!(
            batch.positions_rad(),
            source
                .sample(&CONDITION, None, 5, 12)
                .unwrap()
                .positions_rad()
        );
        let left = source.sample(&CONDITION, Some(0), 5, 11).unwrap();
        assert_ne!(batch.positions_rad(), left.positions_rad());

        // The same computation by hand: normalise, sample with the null label, denormalise.
        let model = LoadedModel::load(dir.path(), &Device::Cpu).unwrap();
        let spec = model.spec().clone();
        let mut cond = CONDITION.to_vec();
        spec.condition.normalize(&mut cond).unwrap();
        let request = SampleRequest {
            shape: vec![5, HORIZON, 2],
            global_cond: Some(Tensor::from_vec(cond, (1, 7), &Device::Cpu).unwrap()),
            label: None,
            seed: 11,
            device: Device::Cpu,
        };
        let out = sample(model.denoiser(), &spec.scheduler, &settings(), &request).unwrap();
        let mut want = out.sample.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        // Clipped x0 in [-1, 1]: inside the joint ranges only once denormalised.
        assert!(want.iter().all(|v| v.abs() <= 1.0 + 1e-6));
        spec.action.denormalize(&mut want).unwrap();
        let want: Vec<f64> = want.into_iter().map(f64::from).collect();
        assert_eq!(batch.positions_rad(), want.as_slice());
        let variance: Vec<f64> = out
            .x0_variance()
            .unwrap()
            .into_iter()
            .map(f64::from)
            .collect();
        assert_eq!(batch.x0_variance(), variance.as_slice());
        // The elbow's range is ±2.8 rad: some value beyond ±1 proves the denormalisation.
        assert!(want.iter().any(|v| v.abs() > 1.0));

        // Settings can change between calls; no recorded steps, no variance.
        source.settings_mut().record_last_k = 0;
        let plain = source.sample(&CONDITION, None, 5, 11).unwrap();
        assert_eq!(plain.positions_rad(), batch.positions_rad());
        assert!(plain.x0_variance().iter().all(|v| *v == 0.0));
    }

    #[test]
    fn bad_inputs_are_errors() {
        let dir = folder(&tiny_model_spec(HORIZON, &modes()));
        let mut source = DiffusionSource::load(dir.path(), DeviceSpec::Cpu, settings()).unwrap();
        let err = source.sample(&CONDITION, Some(2), 3, 0).unwrap_err();
        assert!(err.to_string().contains("label 2"), "{err}");
        let err = source.sample(&CONDITION[..6], None, 3, 0).unwrap_err();
        assert!(err.to_string().contains("[7]"), "{err}");
        let mut nan = CONDITION;
        nan[3] = f32::NAN;
        assert!(source.sample(&nan, None, 3, 0).is_err());
        assert!(source.sample(&CONDITION, None, 0, 0).is_err());
        source.settings_mut().inference_steps = 101;
        let err = source.sample(&CONDITION, None, 3, 0).unwrap_err();
        assert!(err.to_string().contains("inference_steps"), "{err}");

        // A model without modes takes no label.
        let dir = folder(&tiny_model_spec(HORIZON, &[]));
        let mut source = DiffusionSource::load(dir.path(), DeviceSpec::Cpu, settings()).unwrap();
        assert!(source.mode_names().is_empty());
        assert!(source.sample(&CONDITION, None, 2, 0).is_ok());
        assert!(source.sample(&CONDITION, Some(0), 2, 0).is_err());
    }

    #[test]
    fn unknown_or_misshaped_condition_terms_are_load_errors() {
        let mut spec = tiny_model_spec(HORIZON, &modes());
        spec.condition.terms[1].name = "goal_xy_m".into();
        let dir = folder(&spec);
        let err = DiffusionSource::load(dir.path(), DeviceSpec::Cpu, settings())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("goal_xy_m") && err.contains("condition.terms[1]"),
            "{err}"
        );
        assert!(err.contains(MODEL_YAML), "{err}");

        // `obstacle` with 2 values instead of 3 (the spec stays consistent: 6 entries).
        let mut spec = tiny_model_spec(HORIZON, &modes());
        spec.condition.terms[2].dim = 2;
        spec.condition.min.pop();
        spec.condition.max.pop();
        let dir = folder(&spec);
        let err = DiffusionSource::load(dir.path(), DeviceSpec::Cpu, settings())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("condition.terms[2].dim") && err.contains("obstacle"),
            "{err}"
        );

        let dir = folder(&tiny_model_spec(HORIZON, &modes()));
        let bad = SamplerSettings {
            inference_steps: 200,
            ..settings()
        };
        assert!(DiffusionSource::load(dir.path(), DeviceSpec::Cpu, bad).is_err());
    }
}
