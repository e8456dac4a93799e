//! Compute device selection: `cpu`, `cuda:N` or `auto` (CUDA 0 when compiled with `cuda` and a
//! GPU is present, else CPU).

use std::fmt;
use std::str::FromStr;

use candle_core::Device;

use crate::{Error, Result};

/// A device as written in configuration files and on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    /// The CPU.
    Cpu,
    /// CUDA device with this ordinal.
    Cuda(usize),
    /// CUDA 0 when available, otherwise the CPU.
    Auto,
}

impl FromStr for DeviceSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |reason: &str| Error::Device {
            spec: s.to_string(),
            reason: reason.to_string(),
        };
        match s.trim() {
            "cpu" => Ok(DeviceSpec::Cpu),
            "auto" => Ok(DeviceSpec::Auto),
            "cuda" => Ok(DeviceSpec::Cuda(0)),
            other => match other.strip_prefix("cuda:") {
                Some(n) => n
                    .parse()
                    .map(DeviceSpec::Cuda)
                    .map_err(|_| bad("expected `cuda:N` with N a device ordinal")),
                None => Err(bad("expected `cpu`, `cuda:N` or `auto`")),
            },
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Cpu => write!(f, "cpu"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
            DeviceSpec::Auto => write!(f, "auto"),
        }
    }
}

impl DeviceSpec {
    /// Opens the device. `cuda:N` fails with a clear error when the crate was built without the
    /// `cuda` feature or the GPU is missing; `auto` falls back to the CPU.
    pub fn open(self) -> Result<Device> {
        match self {
            DeviceSpec::Cpu => Ok(Device::Cpu),
            DeviceSpec::Cuda(n) => {
                if !candle_core::utils::cuda_is_available() {
                    return Err(Error::Device {
                        spec: self.to_string(),
                        reason: "this build has no CUDA support (build with `--features cuda`)"
                            .into(),
                    });
                }
                Device::new_cuda(n).map_err(|e| Error::Device {
                    spec: self.to_string(),
                    reason: e.to_string(),
                })
            }
            DeviceSpec::Auto => {
                if candle_core::utils::cuda_is_available() {
                    if let Ok(device) = Device::new_cuda(0) {
                        return Ok(device);
                    }
                }
                Ok(Device::Cpu)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        assert_eq!("cpu".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cpu);
        assert_eq!("auto".parse::<DeviceSpec>().unwrap(), DeviceSpec::Auto);
        assert_eq!("cuda:1".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(1));
        let err = "gpu".parse::<DeviceSpec>().unwrap_err().to_string();
        assert!(err.contains("gpu"), "{err}");
        assert!("cuda:x".parse::<DeviceSpec>().is_err());
    }

    #[test]
    fn auto_opens_something() {
        DeviceSpec::Auto.open().unwrap();
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_feature_is_a_clear_error() {
        let err = DeviceSpec::Cuda(0).open().unwrap_err().to_string();
        assert!(err.contains("--features cuda"), "{err}");
    }
}
