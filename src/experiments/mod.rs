//! Seed experiments (issue 7): modes, GMM collapse and mode interpolation, measured with the
//! same diffusion engine the node uses (`dplan modes`).
//!
//! - [`data`]: the toy mixtures (1-D {1,2,3}; ring of 8; grid of 25) and their normalisation.
//! - [`gmm`]: Gaussian mixtures fitted by EM (k-means++ seeding, diagonal covariances).
//! - [`toy_model`], [`toy_train`]: the MLP denoiser (sinusoidal time embedding, optional
//!   mode-label embedding with a null label) and its ε-MSE training with AdamW.
//! - [`sampling`]: the denoiser behind [`crate::diffusion::Denoise`] and seeded draws.
//! - [`metrics`]: VEEGAN's modes captured and high-quality fraction, the interpolation
//!   fraction, conditional accuracy and the x̂0-variance filter's precision and recall.
//! - [`jobs`], [`run`]: the experiments; [`report`], [`plots`]: the Markdown page and PNGs.
//!
//! References: Aithal et al. 2024 (mode interpolation, x̂0-variance filter), Srivastava et al.
//! 2017 (VEEGAN protocol), Lin et al. 2018 (PacGAN), Ho & Salimans 2022 (guidance).

use std::path::PathBuf;

use crate::device::DeviceSpec;
use crate::Result;

pub mod data;
pub mod gmm;
pub mod jobs;
pub mod metrics;
pub mod plots;
pub mod published;
pub mod report;
pub mod run;
pub mod sampling;
pub mod settings;
pub mod toy_model;
pub mod toy_train;

pub use run::ModesReport;
pub use settings::ModesSettings;

/// Command-line arguments of `dplan modes`.
#[derive(Debug, Clone, clap::Args)]
pub struct ModesArgs {
    /// Short training (CI): the whole run in well under two minutes on 2 CPU cores.
    #[arg(long)]
    pub quick: bool,
    /// Write a Markdown report (README.md) with PNG plots into this directory.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Write every measured value as JSON to this file.
    #[arg(long, value_name = "OUT")]
    pub json: Option<PathBuf>,
    /// Base seed of every random draw (data, initialisation, training, sampling).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Compute device: cpu, cuda:N or auto.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceSpec,
}

/// Makes candle run element-wise CPU operations on the calling thread.
///
/// `dplan modes` runs independent jobs (data sets, sweep points) on [`ModesSettings::threads`]
/// workers. candle 0.11 splits element-wise operations on 64k elements or more over its own
/// spin-waiting thread pool, sized once from `CANDLE_NUM_THREADS` (default: every core); with
/// several workers, or on a busy machine, its threads wait on each other and a run becomes many
/// times slower. This sets `CANDLE_NUM_THREADS=1` unless the variable is already set. It only
/// works before candle's pool is first used, so call it at the start of the process (the
/// `dplan modes` command does), while no other thread reads the environment.
pub fn configure_cpu_threads() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
}

/// Runs the experiments and writes what `args` asks for.
pub fn run(args: &ModesArgs) -> Result<ModesReport> {
    let device = args.device.open()?;
    let settings = ModesSettings::new(args.quick, args.seed);
    let report = run::run_with(&settings, &device)?;
    if let Some(path) = &args.json {
        report.write_json(path)?;
    }
    if let Some(dir) = &args.report {
        report::write_report(&report, dir)?;
    }
    Ok(report)
}
