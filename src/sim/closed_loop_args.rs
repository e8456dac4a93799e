//! `dplan closed-loop`'s arguments.

use std::path::PathBuf;

use clap::Args;

use crate::device::DeviceSpec;
use crate::{Error, Result};

/// `dplan closed-loop` arguments.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct ClosedLoopArgs {
    /// Model folder, or `synthetic` for the geometric source (no network).
    #[arg(long)]
    pub model: PathBuf,
    /// Feasible scenes to run.
    #[arg(long, default_value_t = 100)]
    pub scenes: usize,
    /// Seed of the scenes and of the planner; must differ from the training data's seed.
    #[arg(long)]
    pub seed: u64,
    /// Write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// The node's parameter file (`diffusion_planner: ros__parameters:`); `model_path` is
    /// replaced by `--model`, `seed` by `--seed`.
    #[arg(long, default_value = "config/planar_arm.yaml")]
    pub params: PathBuf,
    /// Data config whose robot and scene sampler define the task.
    #[arg(long, default_value = "config/data_planar_arm.yaml")]
    pub data_config: PathBuf,
    /// Planning latency in simulated time, milliseconds; default: each call's measured wall
    /// time.
    #[arg(long)]
    pub latency_ms: Option<f64>,
    /// Simulated seconds per scene before it counts as failed.
    #[arg(long, default_value_t = 20.0)]
    pub timeout_secs: f64,
    /// The simulated controller manager's update rate, Hz.
    #[arg(long, default_value_t = 100.0)]
    pub update_rate_hz: f64,
    /// The simulated joints' acceleration limits as a multiple of the robot description's
    /// (1: the planning limits are the physical ones).
    #[arg(long, default_value_t = 1.0)]
    pub acceleration_limit_scale: f64,
    /// What-if: publish every trajectory with stamp 0 ("start when received"), as the node does
    /// with `stamp_trajectories: false` (see docs/SIM.md).
    #[arg(long)]
    pub unstamped: bool,
    /// Device of the network: cpu, cuda:N or auto.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceSpec,
}

impl ClosedLoopArgs {
    /// `scenes` scenes of `model` from `seed`, every other argument at its default.
    pub fn new(model: impl Into<PathBuf>, scenes: usize, seed: u64) -> Self {
        ClosedLoopArgs {
            model: model.into(),
            scenes,
            seed,
            json: None,
            params: PathBuf::from("config/planar_arm.yaml"),
            data_config: PathBuf::from("config/data_planar_arm.yaml"),
            latency_ms: None,
            timeout_secs: 20.0,
            update_rate_hz: 100.0,
            acceleration_limit_scale: 1.0,
            unstamped: false,
            device: DeviceSpec::Cpu,
        }
    }

    pub(super) fn validate(&self) -> Result<()> {
        if self.scenes == 0 {
            return Err(Error::config("scenes", "must be >= 1, found 0"));
        }
        if let Some(ms) = self.latency_ms {
            if !(ms >= 0.0 && ms.is_finite()) {
                return Err(Error::config(
                    "latency_ms",
                    format!("must be finite and >= 0, found {ms}"),
                ));
            }
        }
        for (key, value) in [
            ("timeout_secs", self.timeout_secs),
            ("update_rate_hz", self.update_rate_hz),
            ("acceleration_limit_scale", self.acceleration_limit_scale),
        ] {
            if !(value > 0.0 && value.is_finite()) {
                return Err(Error::config(
                    key,
                    format!("must be finite and > 0, found {value}"),
                ));
            }
        }
        Ok(())
    }
}
