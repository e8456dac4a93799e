//! A model folder: `model.yaml` (a [`ModelSpec`]) and the weights it names (safetensors, LeRobot
//! tensor names), loaded with every check, written with the weights' sha256.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{VarBuilder, VarMap};
use sha2::{Digest, Sha256};

use super::spec::{ModelSpec, MODEL_YAML};
use super::{Denoiser, ModeEmbeddingConfig, Precision, UnetConfig};
use crate::{Error, Result};

/// A model folder loaded onto a device: the validated spec and the denoiser built from weights
/// whose checksum, names and shapes were all checked.
#[derive(Debug, Clone)]
pub struct LoadedModel {
    spec: ModelSpec,
    denoiser: Denoiser,
    dir: PathBuf,
    device: Device,
}

impl LoadedModel {
    /// Loads `dir/model.yaml` and the weights file it names onto `device`.
    ///
    /// Errors: [`Error::Io`] / [`Error::Yaml`] / [`Error::Config`] for the YAML (naming the
    /// file and key), [`Error::Checksum`] when the weights' sha256 differs from
    /// `weights.sha256`, [`Error::Invalid`] for a file that is not safetensors or holds a
    /// non-float tensor, [`Error::MissingTensor`], [`Error::TensorShape`] and
    /// [`Error::UnexpectedTensors`] (all naming the tensor and the expected and found values).
    /// Float weights of any width are converted to f32.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        Self::load_with_precision(dir, device, Precision::F32)
    }

    /// [`Self::load`] with the weights converted to `precision` (f16 / bf16 inference).
    pub fn load_with_precision(dir: &Path, device: &Device, precision: Precision) -> Result<Self> {
        let spec = ModelSpec::load(&dir.join(MODEL_YAML))?;
        let path = dir.join(&spec.weights.file);
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let found = sha256_hex(&bytes);
        if found != spec.weights.sha256 {
            return Err(Error::Checksum {
                path,
                expected: spec.weights.sha256.clone(),
                found,
            });
        }
        let file = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| {
            Error::Invalid(format!(
                "weights {}: not a valid safetensors file: {e}",
                path.display()
            ))
        })?;
        let mut shapes = BTreeMap::new();
        for (name, view) in file.tensors() {
            let dtype = view.dtype();
            use safetensors::Dtype as D;
            if !matches!(dtype, D::F16 | D::BF16 | D::F32 | D::F64) {
                return Err(Error::Invalid(format!(
                    "weights {}: tensor `{name}` has dtype {dtype:?}, expected a float type",
                    path.display()
                )));
            }
            shapes.insert(name, view.shape().to_vec());
        }
        let expected = expected_tensors(&spec.unet_config(), mode_embedding_config(&spec))?;
        check_tensors(&path, &shapes, &expected)?;

        let mut tensors = HashMap::with_capacity(shapes.len());
        for (name, view) in file.tensors() {
            let tensor =
                candle_core::safetensors::Load::load(&view, device)?.to_dtype(DType::F32)?;
            tensors.insert(name, tensor);
        }
        let vb = VarBuilder::from_tensors(tensors, precision.dtype(), device);
        let denoiser = Denoiser::new(&spec.unet_config(), mode_embedding_config(&spec), vb)?;
        Ok(Self {
            spec,
            denoiser,
            dir: dir.to_path_buf(),
            device: device.clone(),
        })
    }

    /// The validated `model.yaml`.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// The network.
    pub fn denoiser(&self) -> &Denoiser {
        &self.denoiser
    }

    /// Sets how the network's forward pass computes (see [`crate::model::ForwardOptions`]).
    pub fn set_forward_options(&mut self, options: crate::model::ForwardOptions) {
        self.denoiser.set_forward_options(options);
    }

    /// The folder it was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }
}

/// The label embedding's size from `spec.modes`.
pub fn mode_embedding_config(spec: &ModelSpec) -> Option<ModeEmbeddingConfig> {
    spec.modes.as_ref().map(|m| ModeEmbeddingConfig {
        num_modes: m.names.len(),
        embed_dim: m.embed_dim,
    })
}

/// Every tensor a [`Denoiser`] of these sizes reads, with its shape, sorted by name. Derived by
/// building the network on a recording backend, so it is exactly what [`Denoiser::new`] asks for.
pub fn expected_tensors(
    unet_config: &UnetConfig,
    modes: Option<ModeEmbeddingConfig>,
) -> Result<BTreeMap<String, Vec<usize>>> {
    let seen = Arc::new(Mutex::new(BTreeMap::new()));
    let vb = VarBuilder::from_backend(
        Box::new(ShapeRecorder(seen.clone())),
        DType::F32,
        Device::Cpu,
    );
    Denoiser::new(unet_config, modes, vb)?;
    let seen = seen
        .lock()
        .map_err(|_| Error::Invalid("shape recorder poisoned".into()))?;
    Ok(seen.clone())
}

/// Compares the tensors of a weights file (`found`: name -> shape) with `expected`.
pub fn check_tensors(
    path: &Path,
    found: &BTreeMap<String, Vec<usize>>,
    expected: &BTreeMap<String, Vec<usize>>,
) -> Result<()> {
    for (name, shape) in expected {
        match found.get(name) {
            None => {
                return Err(Error::MissingTensor {
                    path: path.to_path_buf(),
                    name: name.clone(),
                })
            }
            Some(s) if s != shape => {
                return Err(Error::TensorShape {
                    path: path.to_path_buf(),
                    name: name.clone(),
                    expected: shape.clone(),
                    found: s.clone(),
                })
            }
            Some(_) => {}
        }
    }
    let extra: Vec<String> = found
        .keys()
        .filter(|n| !expected.contains_key(*n))
        .cloned()
        .collect();
    if !extra.is_empty() {
        return Err(Error::UnexpectedTensors {
            path: path.to_path_buf(),
            names: extra,
        });
    }
    Ok(())
}

/// Writes `dir/model.yaml` and the weights file `spec.weights.file` from `tensors` (any device
/// and float dtype; stored as f32), after checking the spec and that `tensors` holds exactly the
/// model's tensors with the right shapes. Fills in `weights.sha256` and returns the spec as
/// written. Both files are written to a temporary name first and renamed.
pub fn save_model_folder(
    dir: &Path,
    spec: &ModelSpec,
    tensors: &HashMap<String, Tensor>,
) -> Result<ModelSpec> {
    let mut spec = spec.clone();
    // Validate everything but the checksum, which is not known yet.
    spec.weights.sha256 = "0".repeat(64);
    spec.validate()?;
    let path = dir.join(&spec.weights.file);
    let found = tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.dims().to_vec()))
        .collect();
    let expected = expected_tensors(&spec.unet_config(), mode_embedding_config(&spec))?;
    check_tensors(&path, &found, &expected)?;

    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut cpu = HashMap::with_capacity(tensors.len());
    for (name, tensor) in tensors {
        let t = tensor
            .to_device(&Device::Cpu)?
            .to_dtype(DType::F32)?
            .contiguous()?;
        cpu.insert(name.clone(), t);
    }
    let tmp = temp_path(&path);
    candle_core::safetensors::save(&cpu, &tmp)?;
    let bytes = std::fs::read(&tmp).map_err(|e| Error::io(&tmp, e))?;
    spec.weights.sha256 = sha256_hex(&bytes);
    std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;

    let yaml_path = dir.join(MODEL_YAML);
    let tmp = temp_path(&yaml_path);
    std::fs::write(&tmp, spec.to_yaml_string()?).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, &yaml_path).map_err(|e| Error::io(&yaml_path, e))?;
    Ok(spec)
}

/// [`save_model_folder`] from the variables of a training `VarMap`.
pub fn save_model_folder_varmap(
    dir: &Path,
    spec: &ModelSpec,
    varmap: &VarMap,
) -> Result<ModelSpec> {
    let tensors = {
        let data = varmap
            .data()
            .lock()
            .map_err(|_| Error::Invalid("VarMap lock poisoned".into()))?;
        data.iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
            .collect::<HashMap<_, _>>()
    };
    save_model_folder(dir, spec, &tensors)
}

/// sha256 of a file, lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    Ok(sha256_hex(&bytes))
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// A `VarBuilder` backend that records the name and shape of every requested tensor and hands
/// out broadcast zeros (no allocation proportional to the model size).
struct ShapeRecorder(Arc<Mutex<BTreeMap<String, Vec<usize>>>>);

impl SimpleBackend for ShapeRecorder {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _h: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        match self.0.lock() {
            Ok(mut seen) => seen.insert(name.to_string(), s.dims().to_vec()),
            Err(_) => candle_core::bail!("shape recorder poisoned"),
        };
        Tensor::zeros((), dtype, dev)?.broadcast_as(s)
    }

    fn get_unchecked(
        &self,
        name: &str,
        _dtype: DType,
        _dev: &Device,
    ) -> candle_core::Result<Tensor> {
        candle_core::bail!("shape recorder: `{name}` requested without a shape")
    }

    fn contains_tensor(&self, _name: &str) -> bool {
        true
    }
}
