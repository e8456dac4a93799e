//! The demonstration data set: joint-space paths with their condition vectors and mode labels,
//! stored as one safetensors file.
//!
//! File layout (`data.safetensors`):
//! - `paths`: `(N, T, D)` f32, joint positions in radians, T = horizon, D = joints;
//! - `conditions`: `(N, C)` f32, the raw (not normalised) condition vector of each path, its
//!   terms in the order of `condition_terms`;
//! - `labels`: `(N,)` u32, index into `mode_names`;
//! - `scenes`: `(N,)` u32, the scene each path belongs to (paths of one scene share obstacles
//!   and goal; receding-horizon copies share the scene of their source path);
//! - metadata key `dataset`: [`DatasetInfo`] as JSON (format version, horizon, joint names,
//!   condition terms, mode names, generator settings and seed, counts).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::robot::RobotDescription;
use crate::{Error, Result};

/// Version of the data file layout written by this crate.
pub const DATASET_FORMAT_VERSION: u32 = 1;

/// One named block of the condition vector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TermInfo {
    /// Term name (e.g. `joint_positions`).
    pub name: String,
    /// Number of values.
    pub dim: usize,
}

/// Everything about a data set except the arrays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetInfo {
    /// Layout version ([`DATASET_FORMAT_VERSION`]).
    pub format_version: u32,
    /// Waypoints per path.
    pub horizon: usize,
    /// Joint names, in path column order.
    pub joints: Vec<String>,
    /// The robot the paths were planned for.
    pub robot: RobotDescription,
    /// Condition terms in vector order.
    pub condition_terms: Vec<TermInfo>,
    /// Mode label names; label `i` is `mode_names[i]`.
    pub mode_names: Vec<String>,
    /// Number of scenes.
    pub scenes: usize,
    /// Seed the generator ran with.
    pub seed: u64,
    /// The generator's settings, as it wrote them (free-form, for provenance).
    pub generator: serde_json::Value,
}

impl DatasetInfo {
    /// Length of the condition vector.
    pub fn condition_dim(&self) -> usize {
        self.condition_terms.iter().map(|t| t.dim).sum()
    }
}

/// A data set in memory.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Description and provenance.
    pub info: DatasetInfo,
    /// `N·T·D` path values, row-major `(N, T, D)`.
    pub paths: Vec<f32>,
    /// `N·C` condition values, row-major `(N, C)`.
    pub conditions: Vec<f32>,
    /// `N` mode labels.
    pub labels: Vec<u32>,
    /// `N` scene indices.
    pub scenes: Vec<u32>,
}

impl Dataset {
    /// An empty data set for `info`.
    pub fn new(info: DatasetInfo) -> Self {
        Dataset {
            info,
            paths: Vec::new(),
            conditions: Vec::new(),
            labels: Vec::new(),
            scenes: Vec::new(),
        }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Values per path (`T·D`).
    pub fn path_len(&self) -> usize {
        self.info.horizon * self.info.joints.len()
    }

    /// Appends one sample, checking its sizes.
    pub fn push(&mut self, path: &[f32], condition: &[f32], label: u32, scene: u32) -> Result<()> {
        if path.len() != self.path_len() {
            return Err(Error::Shape {
                what: "dataset path".into(),
                expected: vec![self.info.horizon, self.info.joints.len()],
                found: vec![path.len()],
            });
        }
        if condition.len() != self.info.condition_dim() {
            return Err(Error::Shape {
                what: "dataset condition".into(),
                expected: vec![self.info.condition_dim()],
                found: vec![condition.len()],
            });
        }
        if label as usize >= self.info.mode_names.len() {
            return Err(Error::Invalid(format!(
                "dataset label {label} but only {} mode names",
                self.info.mode_names.len()
            )));
        }
        if !path.iter().chain(condition).all(|v| v.is_finite()) {
            return Err(Error::Invalid("dataset sample holds NaN or inf".into()));
        }
        self.paths.extend_from_slice(path);
        self.conditions.extend_from_slice(condition);
        self.labels.push(label);
        self.scenes.push(scene);
        Ok(())
    }

    /// Path `i` as `T·D` values.
    pub fn path(&self, i: usize) -> &[f32] {
        let n = self.path_len();
        &self.paths[i * n..(i + 1) * n]
    }

    /// Condition vector `i`.
    pub fn condition(&self, i: usize) -> &[f32] {
        let c = self.info.condition_dim();
        &self.conditions[i * c..(i + 1) * c]
    }

    /// Samples per mode label.
    pub fn label_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.info.mode_names.len()];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        counts
    }

    /// Writes the data set to `path` (safetensors with the info as metadata).
    pub fn save(&self, path: &Path) -> Result<()> {
        let n = self.len();
        let (t, d, c) = (
            self.info.horizon,
            self.info.joints.len(),
            self.info.condition_dim(),
        );
        let cpu = Device::Cpu;
        let tensors = [
            ("paths", Tensor::from_slice(&self.paths, (n, t, d), &cpu)?),
            (
                "conditions",
                Tensor::from_slice(&self.conditions, (n, c), &cpu)?,
            ),
            ("labels", Tensor::from_slice(&self.labels, n, &cpu)?),
            ("scenes", Tensor::from_slice(&self.scenes, n, &cpu)?),
        ];
        let info = serde_json::to_string(&self.info)
            .map_err(|e| Error::Invalid(format!("dataset info: {e}")))?;
        let metadata = HashMap::from([("dataset".to_string(), info)]);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        safetensors::serialize_to_file(tensors.iter().map(|(k, v)| (*k, v)), Some(metadata), path)
            .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))
    }

    /// Reads a data set written by [`Dataset::save`], checking every array's shape.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let bad = |msg: String| Error::Invalid(format!("{}: {msg}", path.display()));
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
            .map_err(|e| bad(format!("not a safetensors file ({e})")))?;
        let info_json = meta
            .metadata()
            .as_ref()
            .and_then(|m| m.get("dataset"))
            .ok_or_else(|| bad("metadata key `dataset` is missing".into()))?;
        let info: DatasetInfo =
            serde_json::from_str(info_json).map_err(|e| bad(format!("metadata `dataset`: {e}")))?;
        if info.format_version != DATASET_FORMAT_VERSION {
            return Err(bad(format!(
                "format_version {} (this build reads {DATASET_FORMAT_VERSION})",
                info.format_version
            )));
        }
        let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)?;
        let get = |name: &str| {
            tensors.get(name).ok_or_else(|| Error::MissingTensor {
                path: path.to_path_buf(),
                name: name.to_string(),
            })
        };
        let labels = get("labels")?.to_vec1::<u32>()?;
        let n = labels.len();
        let (t, d, c) = (info.horizon, info.joints.len(), info.condition_dim());
        let check = |name: &str, expected: Vec<usize>| -> Result<Tensor> {
            let tensor = get(name)?;
            if tensor.dims() != expected.as_slice() {
                return Err(Error::TensorShape {
                    path: path.to_path_buf(),
                    name: name.to_string(),
                    expected,
                    found: tensor.dims().to_vec(),
                });
            }
            Ok(tensor.clone())
        };
        let paths = check("paths", vec![n, t, d])?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let conditions = check("conditions", vec![n, c])?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let scenes = check("scenes", vec![n])?.to_vec1::<u32>()?;
        if let Some(l) = labels
            .iter()
            .find(|&&l| l as usize >= info.mode_names.len())
        {
            return Err(bad(format!(
                "label {l} but only {} mode names",
                info.mode_names.len()
            )));
        }
        Ok(Dataset {
            info,
            paths,
            conditions,
            labels,
            scenes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> DatasetInfo {
        DatasetInfo {
            format_version: DATASET_FORMAT_VERSION,
            horizon: 3,
            joints: vec!["shoulder".into(), "elbow".into()],
            robot: RobotDescription::planar_2link(),
            condition_terms: vec![TermInfo {
                name: "goal_position".into(),
                dim: 2,
            }],
            mode_names: vec!["left".into(), "right".into()],
            scenes: 1,
            seed: 4,
            generator: serde_json::json!({"note": "test"}),
        }
    }

    #[test]
    fn round_trips_and_counts() {
        let mut data = Dataset::new(info());
        data.push(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0], &[0.5, 0.6], 1, 0)
            .unwrap();
        data.push(&[1.0; 6], &[0.1, 0.2], 0, 0).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("d.safetensors");
        data.save(&file).unwrap();
        let back = Dataset::load(&file).unwrap();
        assert_eq!(back.info, data.info);
        assert_eq!(back.paths, data.paths);
        assert_eq!(back.condition(0), &[0.5, 0.6]);
        assert_eq!(back.label_counts(), vec![1, 1]);
    }

    #[test]
    fn rejects_bad_samples_and_files() {
        let mut data = Dataset::new(info());
        assert!(data.push(&[0.0; 5], &[0.0, 0.0], 0, 0).is_err());
        assert!(data.push(&[0.0; 6], &[0.0], 0, 0).is_err());
        assert!(data.push(&[0.0; 6], &[0.0, 0.0], 2, 0).is_err());
        assert!(data.push(&[f32::NAN; 6], &[0.0, 0.0], 0, 0).is_err());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.safetensors");
        std::fs::write(&file, b"not a tensor file").unwrap();
        let err = Dataset::load(&file).unwrap_err().to_string();
        assert!(err.contains("bad.safetensors"), "{err}");
    }
}
