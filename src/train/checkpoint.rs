//! The training run's files besides the model folder: the resumable state
//! (`checkpoint.safetensors`: weights, EMA, optimiser moments, step, and the sha256 of the data
//! it was trained on) and the loss log (`loss.csv`).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use super::optim::{AdamW, Ema};
use super::trainer::sorted;
use crate::{Error, Result};

#[derive(Serialize, Deserialize)]
struct CheckpointInfo {
    step: u64,
    ema_updates: u64,
    data_sha256: String,
}

pub(super) fn save_checkpoint(
    path: &Path,
    vars: &HashMap<String, Var>,
    optimizer: &AdamW,
    ema: &Ema,
    step: u64,
    data_sha256: &str,
) -> Result<()> {
    let mut tensors: Vec<(String, Tensor)> = sorted(vars)
        .into_iter()
        .map(|(k, v)| (format!("model.{k}"), v.as_tensor().clone()))
        .collect();
    tensors.extend(
        ema.weights()
            .into_iter()
            .map(|(k, t)| (format!("ema.{k}"), t)),
    );
    tensors.extend(optimizer.state()?);
    let info = CheckpointInfo {
        step,
        ema_updates: ema.updates(),
        data_sha256: data_sha256.to_string(),
    };
    let info = serde_json::to_string(&info).map_err(|e| Error::Invalid(e.to_string()))?;
    let metadata = HashMap::from([("train_state".to_string(), info)]);
    let cpu: Vec<(String, Tensor)> = tensors
        .into_iter()
        .map(|(k, t)| Ok((k, t.to_device(&Device::Cpu)?.contiguous()?)))
        .collect::<Result<_>>()?;
    let tmp = path.with_extension("tmp");
    safetensors::serialize_to_file(
        cpu.iter().map(|(k, t)| (k.as_str(), t)),
        Some(metadata),
        &tmp,
    )
    .map_err(|e| Error::Invalid(format!("{}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

pub(super) fn load_checkpoint(
    path: &Path,
    vars: &HashMap<String, Var>,
    optimizer: &mut AdamW,
    ema: &mut Ema,
    data_sha256: &str,
) -> Result<u64> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bad = |msg: String| Error::Invalid(format!("{}: {msg}", path.display()));
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| bad(format!("not a checkpoint ({e})")))?;
    let info: CheckpointInfo = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("train_state"))
        .ok_or_else(|| bad("metadata `train_state` is missing".into()))
        .and_then(|s| serde_json::from_str(s).map_err(|e| bad(e.to_string())))?;
    if info.data_sha256 != data_sha256 {
        return Err(bad(format!(
            "was trained on data with sha256 {}, the data file now has {data_sha256}",
            info.data_sha256
        )));
    }
    let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)?;
    let mut model = HashMap::new();
    let mut averaged = HashMap::new();
    for (name, tensor) in &tensors {
        if let Some(k) = name.strip_prefix("model.") {
            model.insert(k.to_string(), tensor.clone());
        } else if let Some(k) = name.strip_prefix("ema.") {
            averaged.insert(k.to_string(), tensor.clone());
        }
    }
    for (name, var) in sorted(vars) {
        let t = model
            .get(&name)
            .ok_or_else(|| bad(format!("tensor `model.{name}` is missing")))?;
        if t.dims() != var.dims() {
            return Err(Error::TensorShape {
                path: path.to_path_buf(),
                name: format!("model.{name}"),
                expected: var.dims().to_vec(),
                found: t.dims().to_vec(),
            });
        }
        var.set(&t.to_device(var.device())?)?;
    }
    optimizer.load_state(&tensors)?;
    ema.load(&averaged, info.ema_updates)?;
    Ok(info.step)
}

/// `loss.csv`: `step,loss,learning_rate,grad_norm,elapsed_secs`; on resume, rows past the
/// checkpoint are dropped so the log matches the state.
pub(super) struct LossLog {
    file: std::fs::File,
    path: PathBuf,
}

impl LossLog {
    pub(super) fn open(path: &Path, resume_step: u64) -> Result<Self> {
        const HEADER: &str = "step,loss,learning_rate,grad_norm,elapsed_secs";
        let mut kept = vec![HEADER.to_string()];
        if resume_step > 0 {
            if let Ok(text) = std::fs::read_to_string(path) {
                kept.extend(
                    text.lines()
                        .skip(1)
                        .filter(|line| {
                            line.split(',')
                                .next()
                                .and_then(|s| s.parse::<u64>().ok())
                                .is_some_and(|s| s <= resume_step)
                        })
                        .map(str::to_string),
                );
            }
        }
        let mut file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
        for line in kept {
            writeln!(file, "{line}").map_err(|e| Error::io(path, e))?;
        }
        Ok(LossLog {
            file,
            path: path.to_path_buf(),
        })
    }

    pub(super) fn write(
        &mut self,
        step: u64,
        loss: f64,
        lr: f64,
        grad_norm: f64,
        elapsed: f64,
    ) -> Result<()> {
        writeln!(
            self.file,
            "{step},{loss:.6},{lr:.3e},{grad_norm:.4},{elapsed:.1}"
        )
        .and_then(|()| self.file.flush())
        .map_err(|e| Error::io(&self.path, e))
    }
}

/// The current UTC time as ISO 8601 (no time-zone crate needed for this one use).
pub(super) fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
