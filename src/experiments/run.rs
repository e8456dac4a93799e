//! Runs every job of `dplan modes` on a small worker pool and assembles the report.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use candle_core::Device;
use serde::Serialize;

use super::data::DatasetKind;
use super::jobs::{
    conditional_job, dataset_job, sweep_job, ConditionalOutcome, DatasetOutcome, MethodResult,
    SweepOutcome, SweepPoint,
};
use super::published::{published_gan_rows, PublishedRow};
use super::settings::ModesSettings;
use crate::{Error, Result};

/// Training summary of one network.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainingSummary {
    /// Mean MSE over the last window (5%) of steps.
    pub final_loss: f64,
    /// Seconds of optimisation.
    pub train_secs: f64,
    /// Seconds of the whole job (training, GMMs, sampling, metrics).
    pub job_secs: f64,
}

/// Everything `dplan modes` measured; serialises to the `--json` file.
#[derive(Debug, Clone, Serialize)]
pub struct ModesReport {
    /// The settings of the run.
    pub settings: ModesSettings,
    /// `results[dataset][method]`: datasets `line3`, `ring8`, `grid25`; methods `gmm_k<K>`,
    /// `diffusion_ddpm`, `diffusion_ddpm_filtered`, `diffusion_ddim_<steps>[_eta<eta>]`,
    /// `diffusion_cfg_s<scale>`.
    pub results: BTreeMap<String, BTreeMap<String, MethodResult>>,
    /// Interpolation vs distance between two 1-D modes (end of training).
    pub sweep_distance: Vec<SweepPoint>,
    /// Interpolation vs training steps at `settings.steps_sweep_distance`.
    pub sweep_training_steps: Vec<SweepPoint>,
    /// Training of every main network: `<dataset>/unconditional`, `<dataset>/conditional`.
    pub training: BTreeMap<String, TrainingSummary>,
    /// Published GAN rows on ring and grid, for reference.
    pub published_gan: Vec<PublishedRow>,
    /// Wall seconds of the whole run.
    pub total_secs: f64,
    /// Logical cores of the machine.
    pub logical_cores: usize,
    /// The 1-minute load average at the end of the run (`/proc/loadavg`; `None` elsewhere):
    /// wall times mean little on a shared machine without it.
    pub load_average_1min: Option<f64>,
    /// The raw outcomes (samples for the plots); not serialised.
    #[serde(skip)]
    pub datasets: Vec<DatasetOutcome>,
    /// The raw sweep outcomes; not serialised.
    #[serde(skip)]
    pub sweeps: Vec<SweepOutcome>,
}

impl ModesReport {
    /// The result of `method` on `dataset`, if it was run.
    pub fn result(&self, dataset: DatasetKind, method: &str) -> Option<&MethodResult> {
        self.results.get(dataset.name())?.get(method)
    }

    /// Writes the JSON file.
    pub fn write_json(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| Error::Invalid(format!("cannot serialise the modes report: {e}")))?;
        crate::error::write_file(path, text + "\n")
    }
}

enum Job {
    Dataset(DatasetKind),
    Conditional(DatasetKind),
    Sweep(f64),
}

enum Outcome {
    Dataset(Box<DatasetOutcome>),
    Conditional(Box<ConditionalOutcome>),
    Sweep(SweepOutcome),
}

/// Runs all experiments with `settings` on `device`.
pub fn run_with(settings: &ModesSettings, device: &Device) -> Result<ModesReport> {
    let started = Instant::now();
    // Longest first, so the pool ends together.
    let mut jobs = vec![
        Job::Dataset(DatasetKind::Grid25),
        Job::Conditional(DatasetKind::Grid25),
        Job::Dataset(DatasetKind::Ring8),
        Job::Conditional(DatasetKind::Ring8),
        Job::Dataset(DatasetKind::Line3),
        Job::Conditional(DatasetKind::Line3),
    ];
    let mut distances = settings.sweep_distances.clone();
    distances.sort_by(|a, b| {
        let a_first = (*a - settings.steps_sweep_distance).abs() < 1e-12;
        let b_first = (*b - settings.steps_sweep_distance).abs() < 1e-12;
        b_first.cmp(&a_first).then(a.total_cmp(b))
    });
    jobs.extend(distances.into_iter().map(Job::Sweep));

    let next = AtomicUsize::new(0);
    let outcomes: Mutex<Vec<Option<Result<Outcome>>>> =
        Mutex::new((0..jobs.len()).map(|_| None).collect());
    let threads = settings.threads.clamp(1, jobs.len());
    // Each worker runs its jobs inside its own one-thread rayon pool: candle's matrix products
    // dispatch to rayon, and workers sharing the global pool contend badly on a small machine.
    let pools = (0..threads)
        .map(|_| rayon::ThreadPoolBuilder::new().num_threads(1).build())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Invalid(format!("cannot start a worker thread pool: {e}")))?;
    std::thread::scope(|scope| {
        for pool in &pools {
            scope.spawn(|| {
                pool.install(|| loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(job) = jobs.get(i) else { break };
                    let outcome = match job {
                        Job::Dataset(kind) => dataset_job(*kind, settings, device)
                            .map(|o| Outcome::Dataset(Box::new(o))),
                        Job::Conditional(kind) => conditional_job(*kind, settings, device)
                            .map(|o| Outcome::Conditional(Box::new(o))),
                        Job::Sweep(d) => sweep_job(*d, settings, device).map(Outcome::Sweep),
                    };
                    let failed = outcome.is_err();
                    if let Some(slot) = outcomes.lock().ok().as_mut().and_then(|s| s.get_mut(i)) {
                        *slot = Some(outcome);
                    }
                    if failed {
                        // Let the other workers finish their current job, start nothing new.
                        next.store(jobs.len(), Ordering::SeqCst);
                    }
                })
            });
        }
    });
    let slots = outcomes
        .into_inner()
        .map_err(|_| Error::Invalid("a worker thread panicked".into()))?;

    let mut datasets = Vec::new();
    let mut conditionals = Vec::new();
    let mut sweeps = Vec::new();
    for slot in slots {
        match slot {
            Some(Ok(Outcome::Dataset(d))) => datasets.push(*d),
            Some(Ok(Outcome::Conditional(c))) => conditionals.push(*c),
            Some(Ok(Outcome::Sweep(s))) => sweeps.push(s),
            Some(Err(e)) => return Err(e),
            None => {
                return Err(Error::Invalid(
                    "a job did not run (an earlier job failed)".into(),
                ))
            }
        }
    }
    datasets.sort_by_key(|d| d.kind);
    sweeps.sort_by(|a, b| a.distance.total_cmp(&b.distance));

    let mut training = BTreeMap::new();
    let mut summarise =
        |key: String, losses: &[super::toy_train::LossPoint], train_secs, job_secs| {
            let final_loss = losses.last().map_or(f64::NAN, |l| l.loss);
            training.insert(
                key,
                TrainingSummary {
                    final_loss,
                    train_secs,
                    job_secs,
                },
            );
        };
    for d in &datasets {
        summarise(
            format!("{}/unconditional", d.kind.name()),
            &d.losses,
            d.train_secs,
            d.job_secs,
        );
    }
    for c in conditionals {
        summarise(
            format!("{}/conditional", c.kind.name()),
            &c.losses,
            c.train_secs,
            c.job_secs,
        );
        if let Some(d) = datasets.iter_mut().find(|d| d.kind == c.kind) {
            d.methods.extend(c.methods);
            d.samples.extend(c.samples);
        }
    }
    let mut results = BTreeMap::new();
    for d in &datasets {
        let methods: BTreeMap<String, MethodResult> = d.methods.iter().cloned().collect();
        results.insert(d.kind.name().to_string(), methods);
    }
    let sweep_distance = sweeps.iter().map(|s| s.final_point.clone()).collect();
    let sweep_training_steps = sweeps
        .iter()
        .find(|s| !s.checkpoints.is_empty())
        .map(|s| s.checkpoints.clone())
        .unwrap_or_default();
    Ok(ModesReport {
        settings: settings.clone(),
        results,
        sweep_distance,
        sweep_training_steps,
        training,
        published_gan: published_gan_rows(),
        total_secs: started.elapsed().as_secs_f64(),
        logical_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_average_1min: std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok()),
        datasets,
        sweeps,
    })
}
