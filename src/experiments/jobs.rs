//! The independent jobs of `dplan modes`: per data set, one for the GMMs and the unconditional
//! diffusion model (DDPM, filtered, DDIM draws) and one for the labelled model (conditional
//! draws); and one per point of the 1-D distance sweep. Each job derives all its seeds from the base seed and its own tags, so results do not
//! depend on which thread runs it or when.

use std::time::Instant;

use candle_core::Device;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::data::{DatasetKind, Mixture, Normaliser, Points};
use super::gmm::{Gmm, GmmConfig};
use super::metrics::{
    calibrate_threshold, classify_all, conditional_accuracy, filter_metrics, mode_metrics,
    wilson_interval_95, ConditionalAccuracy, FilterMetrics, ModeMetrics,
};
use super::sampling::{draw, DrawSettings};
use super::settings::{derive_seed, ModesSettings};
use super::toy_model::ToyDenoiser;
use super::toy_train::{train_toy, LossPoint, ToyTrainData, TrainedToy};
use crate::{Error, Result};

/// Conditional accuracy at one guidance scale.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConditionalResult {
    /// Classifier-free guidance scale (1 = plain conditional).
    pub guidance_scale: f64,
    /// The accuracies.
    #[serde(flatten)]
    pub accuracy: ConditionalAccuracy,
}

/// The measurements of one method on one data set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MethodResult {
    /// What produced the samples, in words.
    pub description: String,
    /// Coverage and interpolation.
    #[serde(flatten)]
    pub metrics: ModeMetrics,
    /// The x̂0-variance filter on these samples (DDPM rows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<FilterMetrics>,
    /// Sampling by mode label with classifier-free guidance (`diffusion_cfg_*` rows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditional: Option<ConditionalResult>,
}

/// Samples kept for the plots of one method.
#[derive(Debug, Clone)]
pub struct MethodSamples {
    /// The method's key (as in the JSON).
    pub method: String,
    /// The evaluated samples, data units.
    pub points: Points,
}

/// Everything one data-set job produced.
#[derive(Debug, Clone)]
pub struct DatasetOutcome {
    /// Which data set.
    pub kind: DatasetKind,
    /// (method key, result), in report order.
    pub methods: Vec<(String, MethodResult)>,
    /// Evaluated samples per method, for the plots.
    pub samples: Vec<MethodSamples>,
    /// x̂0 variance of the evaluated DDPM samples and whether each is in support.
    pub filter_scores: Vec<(f64, bool)>,
    /// The threshold chosen on the calibration draw.
    pub filter_threshold: Option<f64>,
    /// Training loss curve of the diffusion model.
    pub losses: Vec<LossPoint>,
    /// Seconds spent training / in the whole job.
    pub train_secs: f64,
    /// Wall seconds of the whole job.
    pub job_secs: f64,
}

fn rng(seed: u64, tag: &str) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(derive_seed(seed, tag))
}

/// Fits the GMMs, trains the unlabelled diffusion model and measures both on `kind`.
pub fn dataset_job(
    kind: DatasetKind,
    settings: &ModesSettings,
    device: &Device,
) -> Result<DatasetOutcome> {
    let started = Instant::now();
    let name = kind.name();
    let seed = settings.seed;
    let mixture = kind.mixture();
    let train = mixture.sample(
        settings.train_points,
        &mut rng(seed, &format!("{name}/train")),
    );
    let n_eval = settings.eval_samples;

    let mut methods = Vec::new();
    let mut samples = Vec::new();

    for k in ModesSettings::gmm_components(kind) {
        let key = format!("gmm_k{k}");
        let gmm = Gmm::fit(
            &train.points,
            &GmmConfig::new(k),
            &mut rng(seed, &format!("{name}/{key}/fit")),
        )?;
        let points = gmm.sample(n_eval, &mut rng(seed, &format!("{name}/{key}/sample")))?;
        tracing::info!(
            dataset = name,
            k,
            job_secs = started.elapsed().as_secs_f64(),
            "GMM fitted"
        );
        methods.push((
            key.clone(),
            MethodResult {
                description: format!(
                    "Gaussian mixture, K = {k}, diagonal covariance, EM ({} iterations, converged: {})",
                    gmm.iterations, gmm.converged
                ),
                metrics: mode_metrics(&points, &mixture),
                filter: None,
                conditional: None,
            },
        ));
        samples.push(MethodSamples {
            method: key,
            points,
        });
    }

    // Diffusion: an unlabelled network trained on the same points.
    let normaliser = Normaliser::for_mixture(&mixture);
    let trained = train_diffusion(
        &train.points,
        None,
        settings,
        &normaliser,
        derive_seed(seed, &format!("{name}/diffusion/train")),
        device,
    )?;
    let model = &trained.model;
    tracing::info!(
        dataset = name,
        train_secs = trained.train_secs,
        job_secs = started.elapsed().as_secs_f64(),
        "trained"
    );

    let ddpm = DrawSettings::ddpm(
        &settings.scheduler,
        settings.ddpm_steps,
        settings.x0_variance_last_k,
    );
    let eval = draw(
        model,
        &ddpm,
        n_eval,
        None,
        derive_seed(seed, &format!("{name}/ddpm/eval")),
        &normaliser,
    )?;
    let calibration = draw(
        model,
        &ddpm,
        n_eval,
        None,
        derive_seed(seed, &format!("{name}/ddpm/calibration")),
        &normaliser,
    )?;
    let eval_in: Vec<bool> = classify_all(&eval.points, &mixture)
        .into_iter()
        .map(|c| c.is_high_quality())
        .collect();
    let calibration_in: Vec<bool> = classify_all(&calibration.points, &mixture)
        .into_iter()
        .map(|c| c.is_high_quality())
        .collect();
    let threshold = calibrate_threshold(
        &calibration.x0_variance,
        &calibration_in,
        settings.filter_keep_in_support,
    );
    let filter = threshold.map(|t| filter_metrics(&eval.x0_variance, &eval_in, t));
    tracing::info!(
        dataset = name,
        job_secs = started.elapsed().as_secs_f64(),
        "sampled"
    );

    let ddpm_description = format!(
        "diffusion (MLP denoiser), DDPM {} steps",
        settings.ddpm_steps
    );
    methods.push((
        "diffusion_ddpm".into(),
        MethodResult {
            description: ddpm_description,
            metrics: mode_metrics(&eval.points, &mixture),
            filter: filter.clone(),
            conditional: None,
        },
    ));
    if let Some(t) = threshold {
        let kept_values: Vec<f64> = eval
            .points
            .rows()
            .zip(&eval.x0_variance)
            .filter(|(_, &v)| v <= t)
            .flat_map(|(row, _)| row.iter().copied())
            .collect();
        let kept = Points::new(mixture.dim(), kept_values)?;
        methods.push((
            "diffusion_ddpm_filtered".into(),
            MethodResult {
                description: format!(
                    "the DDPM samples with x̂0 variance (last {} steps) <= {t:.3e}; {} of {n_eval} kept",
                    settings.x0_variance_last_k,
                    kept.len()
                ),
                metrics: mode_metrics(&kept, &mixture),
                filter: None,
                conditional: None,
            },
        ));
    }
    samples.push(MethodSamples {
        method: "diffusion_ddpm".into(),
        points: eval.points.clone(),
    });
    // DDIM: the node's few-step default, as many steps as DDPM, and with noise (eta = 1).
    for &(steps, eta) in &settings.ddim_variants {
        let key = if eta == 0.0 {
            format!("diffusion_ddim_{steps}")
        } else {
            format!("diffusion_ddim_{steps}_eta{eta}")
        };
        let ddim = draw(
            model,
            &DrawSettings::ddim(&settings.scheduler, steps, eta),
            n_eval,
            None,
            derive_seed(seed, &format!("{name}/{key}/eval")),
            &normaliser,
        )?;
        methods.push((
            key.clone(),
            MethodResult {
                description: format!("the same network, DDIM {steps} steps, eta = {eta}"),
                metrics: mode_metrics(&ddim.points, &mixture),
                filter: None,
                conditional: None,
            },
        ));
        samples.push(MethodSamples {
            method: key,
            points: ddim.points,
        });
    }
    tracing::info!(
        dataset = name,
        job_secs = started.elapsed().as_secs_f64(),
        "done"
    );
    Ok(DatasetOutcome {
        kind,
        methods,
        samples,
        filter_scores: eval.x0_variance.iter().copied().zip(eval_in).collect(),
        filter_threshold: threshold,
        losses: trained.losses,
        train_secs: trained.train_secs,
        job_secs: started.elapsed().as_secs_f64(),
    })
}

/// Trains a diffusion network on `points` (data units) with optional mode labels.
fn train_diffusion(
    points: &Points,
    labels: Option<(&[usize], usize)>,
    settings: &ModesSettings,
    normaliser: &Normaliser,
    seed: u64,
    device: &Device,
) -> Result<TrainedToy> {
    let train_norm = normaliser.forward(points);
    let schedule = crate::diffusion::NoiseSchedule::new(&settings.scheduler)?;
    let alphas: Vec<f64> = schedule
        .alphas_cumprod()
        .iter()
        .map(|&a| f64::from(a))
        .collect();
    let data = ToyTrainData {
        points: &train_norm,
        labels: labels.map(|(l, _)| l),
        alphas_cumprod: &alphas,
    };
    let mut config = settings.train.clone();
    if labels.is_none() {
        config.label_dropout = 0.0;
    }
    let mut no_checkpoint = |_: usize, _: &ToyDenoiser| Ok(());
    train_toy(
        &settings.model(points.dim(), labels.map(|(_, k)| k)),
        &data,
        &config,
        seed,
        device,
        &[],
        &mut no_checkpoint,
    )
}

/// What the conditional job of one data set produced.
#[derive(Debug, Clone)]
pub struct ConditionalOutcome {
    /// Which data set.
    pub kind: DatasetKind,
    /// (`diffusion_cfg_s<scale>`, result), one per guidance scale.
    pub methods: Vec<(String, MethodResult)>,
    /// The pooled conditional samples per scale, for the plots.
    pub samples: Vec<MethodSamples>,
    /// Training loss curve of the labelled model.
    pub losses: Vec<LossPoint>,
    /// Seconds of optimisation.
    pub train_secs: f64,
    /// Wall seconds of the whole job.
    pub job_secs: f64,
}

/// Trains the labelled network of `kind` (labels dropped to the null label with probability
/// `settings.train.label_dropout`) and samples every mode by its label at each guidance scale.
pub fn conditional_job(
    kind: DatasetKind,
    settings: &ModesSettings,
    device: &Device,
) -> Result<ConditionalOutcome> {
    let started = Instant::now();
    let name = kind.name();
    let seed = settings.seed;
    let mixture = kind.mixture();
    let k_true = mixture.num_modes();
    // The same training points as the unconditional model.
    let train = mixture.sample(
        settings.train_points,
        &mut rng(seed, &format!("{name}/train")),
    );
    let normaliser = Normaliser::for_mixture(&mixture);
    let trained = train_diffusion(
        &train.points,
        Some((&train.labels, k_true)),
        settings,
        &normaliser,
        derive_seed(seed, &format!("{name}/conditional/train")),
        device,
    )?;
    let per_label = settings.conditional_samples(kind);
    let ddpm = DrawSettings::ddpm(&settings.scheduler, settings.ddpm_steps, 0);
    let mut methods = Vec::new();
    let mut samples = Vec::new();
    for &scale in &settings.guidance_scales {
        let guided = ddpm.clone().with_guidance(scale);
        let per_mode = (0..k_true)
            .map(|label| {
                let tag = format!("{name}/conditional/s{scale}/label{label}");
                draw(
                    &trained.model,
                    &guided,
                    per_label,
                    Some(label as u32),
                    derive_seed(seed, &tag),
                    &normaliser,
                )
                .map(|d| d.points)
            })
            .collect::<Result<Vec<Points>>>()?;
        let pooled = Points::new(
            mixture.dim(),
            per_mode
                .iter()
                .flat_map(|p| p.values().iter().copied())
                .collect(),
        )?;
        let key = format!("diffusion_cfg_s{scale}");
        methods.push((
            key.clone(),
            MethodResult {
                description: format!(
                    "labelled network, DDPM {} steps, classifier-free guidance scale {scale}, \
                     {per_label} samples per requested mode (metrics over all of them)",
                    settings.ddpm_steps
                ),
                metrics: mode_metrics(&pooled, &mixture),
                filter: None,
                conditional: Some(ConditionalResult {
                    guidance_scale: scale,
                    accuracy: conditional_accuracy(&per_mode, &mixture),
                }),
            },
        ));
        samples.push(MethodSamples {
            method: key,
            points: pooled,
        });
    }
    tracing::info!(
        dataset = name,
        job_secs = started.elapsed().as_secs_f64(),
        "conditional done"
    );
    Ok(ConditionalOutcome {
        kind,
        methods,
        samples,
        losses: trained.losses,
        train_secs: trained.train_secs,
        job_secs: started.elapsed().as_secs_f64(),
    })
}

/// One point of the 1-D sweep: two modes at ±distance/2, σ = 0.05.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepPoint {
    /// Distance between the two modes (data units).
    pub distance: f64,
    /// Training steps of the evaluated network.
    pub train_steps: usize,
    /// 95% Wilson interval of the interpolation fraction (low, high).
    pub interpolation_ci95: (f64, f64),
    /// Coverage and interpolation of its DDPM samples.
    #[serde(flatten)]
    pub metrics: ModeMetrics,
}

/// Everything one sweep job produced.
#[derive(Debug, Clone)]
pub struct SweepOutcome {
    /// Distance between the two modes.
    pub distance: f64,
    /// The evaluation after the whole training run.
    pub final_point: SweepPoint,
    /// Evaluations at intermediate steps (only for the steps-sweep distance), including the last.
    pub checkpoints: Vec<SweepPoint>,
    /// The final samples (data units), for the histogram.
    pub samples: Points,
    /// Seconds of the whole job.
    pub job_secs: f64,
}

/// The two-mode 1-D mixture of the sweep.
pub fn sweep_mixture(distance: f64) -> Mixture {
    Mixture::line(&[-distance / 2.0, distance / 2.0], 0.05)
}

/// Trains an unlabelled network on two 1-D modes `distance` apart and measures interpolation.
pub fn sweep_job(distance: f64, settings: &ModesSettings, device: &Device) -> Result<SweepOutcome> {
    let started = Instant::now();
    let seed = settings.seed;
    let tag = format!("sweep/d{distance}");
    let mixture = sweep_mixture(distance);
    let train = mixture.sample(
        settings.train_points,
        &mut rng(seed, &format!("{tag}/train")),
    );
    let normaliser = Normaliser::for_mixture(&mixture);
    let train_norm = normaliser.forward(&train.points);
    let schedule = crate::diffusion::NoiseSchedule::new(&settings.scheduler)?;
    let alphas: Vec<f64> = schedule
        .alphas_cumprod()
        .iter()
        .map(|&a| f64::from(a))
        .collect();
    let data = ToyTrainData {
        points: &train_norm,
        labels: None,
        alphas_cumprod: &alphas,
    };
    let ddpm = DrawSettings::ddpm(&settings.scheduler, settings.ddpm_steps, 0);
    // The same sampling seed at every checkpoint: only the network changes.
    let sample_seed = derive_seed(seed, &format!("{tag}/ddpm"));
    let n = settings.sweep_samples;
    let is_steps_sweep = (distance - settings.steps_sweep_distance).abs() < 1e-12;
    let checkpoints: Vec<usize> = if is_steps_sweep {
        settings.steps_sweep_checkpoints.clone()
    } else {
        vec![settings.sweep_train.steps]
    };
    let mut evaluated: Vec<(SweepPoint, Points)> = Vec::new();
    let mut on_checkpoint = |step: usize, model: &ToyDenoiser| -> Result<()> {
        let d = draw(model, &ddpm, n, None, sample_seed, &normaliser)?;
        evaluated.push((
            {
                let metrics = mode_metrics(&d.points, &mixture);
                let between = (metrics.interpolation_fraction * n as f64).round() as usize;
                SweepPoint {
                    distance,
                    train_steps: step,
                    interpolation_ci95: wilson_interval_95(between, n),
                    metrics,
                }
            },
            d.points,
        ));
        Ok(())
    };
    train_toy(
        &settings.model(1, None),
        &data,
        &settings.sweep_train,
        derive_seed(seed, &format!("{tag}/train_model")),
        device,
        &checkpoints,
        &mut on_checkpoint,
    )?;
    tracing::info!(
        distance,
        job_secs = started.elapsed().as_secs_f64(),
        "sweep point done"
    );
    let (final_point, samples) = evaluated.last().cloned().ok_or_else(|| {
        Error::Invalid(format!("sweep at distance {distance}: no evaluation ran"))
    })?;
    Ok(SweepOutcome {
        distance,
        final_point,
        checkpoints: if is_steps_sweep {
            evaluated.into_iter().map(|(p, _)| p).collect()
        } else {
            Vec::new()
        },
        samples,
        job_secs: started.elapsed().as_secs_f64(),
    })
}
