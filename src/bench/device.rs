//! `dplan bench --device D`: the shipped network on one device (a GPU, or the CPU for
//! comparison) at the candidate counts of a planning call: the device's f32 matrix-product rate,
//! one forward pass per batch size, a planning call's sampling (DDIM) per K, and the training
//! throughput (forward, backward and AdamW at a batch size).
//!
//! On CUDA every timing ends with `Device::synchronize`, so it counts the device's work, not
//! only the launches. TFLOP/s use the analytic FLOP count of [`super::unet_flops_per_sample`]
//! (convolutions and linear layers; GroupNorm, Mish and elementwise ops not counted).

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::{time_ms, unet_flops_per_sample, BenchArgs, BenchNetwork, Percentiles};
use crate::device::DeviceSpec;
use crate::diffusion::{sample, standard_normal, SampleRequest, SamplerSettings, SchedulerConfig};
use crate::model::{Denoiser, ForwardOptions, KernelChoice, Precision};
use crate::train::optim::{clip_grad_norm, AdamW, AdamWConfig, Ema};
use crate::{Error, Result};

/// What `dplan bench --device` measures.
#[derive(Debug, Clone)]
pub struct DeviceBenchPlan {
    pub device: DeviceSpec,
    /// Candidate counts K of the planning calls (and the forward batch sizes).
    pub candidates: Vec<usize>,
    /// Timed planning calls per K.
    pub plan_iterations: usize,
    /// Timed forward passes per batch size.
    pub forward_iterations: usize,
    /// Training batch size (0: no training measurement).
    pub train_batch: usize,
    /// Timed training steps.
    pub train_steps: usize,
    /// The network's implementation (on CUDA every choice runs candle's tensor ops).
    pub kernels: KernelChoice,
    /// The network's float type at inference (training is f32).
    pub precision: Precision,
}

/// One K.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceCandidates {
    pub candidates: usize,
    /// One U-Net forward at batch K, p50 / p99 ms.
    pub forward_ms: Percentiles,
    /// Achieved by the forward p50.
    pub forward_tflops: f64,
    /// `forward_tflops` over the measured f32 matrix-product rate.
    pub fraction_of_matmul_peak: f64,
    /// A planning call's sampling without a mode request (batch K), p50 / p99 ms.
    pub plan_ms: Percentiles,
    /// The planning call's p50 over its forward passes (DDIM steps).
    pub plan_ms_per_forward: f64,
    /// Achieved over the whole unguided planning call (p50).
    pub plan_tflops: f64,
    /// With a mode request under classifier-free guidance (one batch of 2K), p50 / p99 ms.
    pub guided_plan_ms: Percentiles,
}

/// Training throughput.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceTraining {
    pub batch: usize,
    pub steps_timed: usize,
    /// Per step (forward, backward, gradient clipping, AdamW, EMA), p50 / p99 ms.
    pub step_ms: Percentiles,
    /// 1000 / p50.
    pub steps_per_sec: f64,
    /// Forward + backward counted as 3 forwards.
    pub tflops: f64,
}

/// Everything `dplan bench --device` measured.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceBenchReport {
    /// As given (`cuda:0`, `cpu`).
    pub device: String,
    /// candle's name of the device location.
    pub location: String,
    pub kernels: String,
    pub precision: String,
    pub network: BenchNetwork,
    pub parameters: usize,
    pub flops_per_sample: u64,
    /// A 4096^3 f32 matrix product (cuBLAS on CUDA, gemm on the CPU) with candle, TFLOP/s.
    pub matmul_tflops: f64,
    pub per_k: Vec<DeviceCandidates>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub training: Option<DeviceTraining>,
}

/// Synchronises (CUDA) after `f`, so that a timing covers the device's work.
fn synced(device: &Device, mut f: impl FnMut() -> Result<()>) -> impl FnMut() -> Result<()> {
    let device = device.clone();
    move || {
        f()?;
        device.synchronize()?;
        Ok(())
    }
}

/// TFLOP/s of an `n^3` f32 product on `device` (best of `reps`).
fn matmul_tflops(device: &Device, n: usize, reps: usize) -> Result<f64> {
    let a = Tensor::randn(0f32, 1.0, (n, n), device)?;
    let mut best = f64::INFINITY;
    for _ in 0..reps.max(1) + 1 {
        let start = Instant::now();
        let c = a.matmul(&a)?;
        device.synchronize()?;
        std::hint::black_box(c);
        best = best.min(start.elapsed().as_secs_f64());
    }
    Ok(2.0 * (n as f64).powi(3) / best / 1e12)
}

/// The shipped network with random weights, as plain tensors on `device` (inference).
fn inference_denoiser(
    net: &BenchNetwork,
    weights: &Path,
    device: &Device,
    kernels: KernelChoice,
    precision: Precision,
) -> Result<(Denoiser, usize)> {
    let varmap = VarMap::new();
    Denoiser::new(
        &net.unet,
        Some(net.modes()),
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )?;
    varmap.save(weights)?;
    let tensors = candle_core::safetensors::load(weights, device)?;
    let parameters = tensors.values().map(|t| t.elem_count()).sum();
    let vb = VarBuilder::from_tensors(tensors, precision.dtype(), device);
    let mut denoiser = Denoiser::new(&net.unet, Some(net.modes()), vb)?;
    denoiser.set_forward_options(ForwardOptions {
        kernels,
        ..ForwardOptions::default()
    });
    Ok((denoiser, parameters))
}

/// With `--device`: the device benchmark ([`run`]); prints a table on stdout and
/// writes the JSON if asked.
pub fn run_device(args: &BenchArgs, spec: DeviceSpec) -> Result<DeviceBenchReport> {
    let net = BenchNetwork::shipped();
    let dir = std::env::temp_dir().join(format!("dplan-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let plan = DeviceBenchPlan {
        device: spec,
        candidates: args.candidates.clone(),
        plan_iterations: args.plan_iterations,
        forward_iterations: args.forward_iterations,
        train_batch: args.train_batch,
        train_steps: args.train_steps,
        kernels: args.kernels,
        precision: args.precision,
    };
    let result = run(&plan, &net, &dir.join("weights.safetensors"));
    // Best effort: the directory holds only the random weights.
    let _ = std::fs::remove_dir_all(&dir);
    let report = result?;
    print_report(&report);
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report)
            .map_err(|e| Error::Invalid(format!("bench report as JSON: {e}")))?;
        crate::error::write_file(path, json + "\n")?;
    }
    Ok(report)
}

/// Runs the device benchmark; `weights` is a scratch file for the random weights.
pub fn run(
    plan: &DeviceBenchPlan,
    net: &BenchNetwork,
    weights: &Path,
) -> Result<DeviceBenchReport> {
    if plan.candidates.is_empty() || plan.candidates.contains(&0) {
        return Err(Error::Invalid(format!(
            "bench --candidates: expected counts >= 1, found {:?}",
            plan.candidates
        )));
    }
    let device = plan.device.open()?;
    let (denoiser, parameters) =
        inference_denoiser(net, weights, &device, plan.kernels, plan.precision)?;
    let flops_per_sample = unet_flops_per_sample(&net.unet, net.horizon);
    let matmul = matmul_tflops(&device, 4096, 5)?;
    eprintln!("{}: f32 matmul 4096^3 {matmul:.2} TFLOP/s", plan.device);
    let scheduler = SchedulerConfig::default();
    let mut per_k = Vec::with_capacity(plan.candidates.len());
    for &k in &plan.candidates {
        let x = Tensor::randn(0f32, 1.0, (k, net.horizon, net.unet.action_dim), &device)?;
        let t = Tensor::full(50u32, k, &device)?;
        let c = Tensor::randn(0f32, 1.0, (k, net.condition_dim()), &device)?;
        let forward_ms = time_ms(
            plan.forward_iterations,
            synced(&device, || {
                denoiser.denoise(&x, &t, Some(&c), None)?;
                Ok(())
            }),
        )?;
        let forward_tflops = flops_per_sample as f64 * k as f64 / (forward_ms.p50 * 1e-3) / 1e12;
        let cond = Tensor::randn(0f32, 1.0, (1, net.condition_dim()), &Device::Cpu)?;
        let call = |label: Option<u32>| {
            let settings = SamplerSettings {
                inference_steps: net.ddim_steps,
                guidance_scale: if label.is_some() {
                    net.guidance_scale
                } else {
                    1.0
                },
                record_last_k: 4,
                ..SamplerSettings::default()
            };
            let mut seed = 0u64;
            // A planning call as `DiffusionSource` makes it: the condition moved to the
            // device, the samples and the x̂0 variance back to the CPU.
            time_ms(plan.plan_iterations, || {
                seed += 1;
                let request = SampleRequest {
                    shape: vec![k, net.horizon, net.unet.action_dim],
                    global_cond: Some(cond.to_device(&device)?),
                    label,
                    seed,
                    device: device.clone(),
                };
                let out = sample(&denoiser, &scheduler, &settings, &request)?;
                out.sample.to_device(&Device::Cpu)?;
                out.x0_variance()?;
                Ok(())
            })
        };
        let plan_ms = call(None)?;
        let guided_plan_ms = call(Some(0))?;
        let plan_tflops =
            flops_per_sample as f64 * (k * net.ddim_steps) as f64 / (plan_ms.p50 * 1e-3) / 1e12;
        eprintln!(
            "K = {k}: forward p50 {:.3} ms ({forward_tflops:.3} TFLOP/s); planning call p50 {:.2} \
             ms, p99 {:.2} ms; guided p50 {:.2} ms",
            forward_ms.p50, plan_ms.p50, plan_ms.p99, guided_plan_ms.p50
        );
        per_k.push(DeviceCandidates {
            candidates: k,
            forward_ms,
            forward_tflops,
            fraction_of_matmul_peak: forward_tflops / matmul,
            plan_ms,
            plan_ms_per_forward: plan_ms.p50 / net.ddim_steps as f64,
            plan_tflops,
            guided_plan_ms,
        });
    }
    let training = if plan.train_batch > 0 {
        Some(training(net, &device, plan.train_batch, plan.train_steps)?)
    } else {
        None
    };
    Ok(DeviceBenchReport {
        device: plan.device.to_string(),
        location: format!("{:?}", device.location()),
        kernels: format!("{:?}", plan.kernels),
        precision: format!("{:?}", plan.precision),
        network: net.clone(),
        parameters,
        flops_per_sample,
        matmul_tflops: matmul,
        per_k,
        training,
    })
}

/// Training steps of the shipped network at `batch`: epsilon-prediction MSE on random data,
/// backward, gradient clipping at 1, AdamW and the EMA update, as the trainer's step does them
/// (without drawing the batch).
fn training(
    net: &BenchNetwork,
    device: &Device,
    batch: usize,
    steps: usize,
) -> Result<DeviceTraining> {
    let varmap = VarMap::new();
    let denoiser = Denoiser::new(
        &net.unet,
        Some(net.modes()),
        VarBuilder::from_varmap(&varmap, DType::F32, device),
    )?;
    let vars: HashMap<String, Var> = varmap
        .data()
        .lock()
        .map_err(|_| Error::Invalid("varmap lock poisoned".into()))?
        .clone();
    let var_list: Vec<Var> = vars.values().cloned().collect();
    let mut optimizer = AdamW::new(
        &vars,
        AdamWConfig {
            learning_rate: 1e-4,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-6,
        },
    )?;
    let mut ema = Ema::new(&vars, 0.75, 0.9999)?;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let shape = [batch, net.horizon, net.unet.action_dim];
    let x_t = standard_normal(&mut rng, &shape, device)?;
    let target = standard_normal(&mut rng, &shape, device)?;
    let cond = standard_normal(&mut rng, &[batch, net.condition_dim()], device)?;
    let labels: Vec<u32> = (0..batch)
        .map(|i| (i % (net.num_modes + 1)) as u32)
        .collect();
    let labels = Tensor::from_vec(labels, batch, device)?;
    let timesteps: Vec<u32> = (0..batch).map(|i| (i * 37 % 100) as u32).collect();
    let timesteps = Tensor::from_vec(timesteps, batch, device)?;
    let step_ms = time_ms(
        steps,
        synced(device, || {
            let pred = denoiser.denoise(&x_t, &timesteps, Some(&cond), Some(&labels))?;
            let loss = (pred - &target)?.sqr()?.mean_all()?;
            let mut grads = loss.backward()?;
            clip_grad_norm(&var_list, &mut grads, 1.0)?;
            optimizer.step(&grads)?;
            ema.update()?;
            Ok(())
        }),
    )?;
    let flops = 3.0 * unet_flops_per_sample(&net.unet, net.horizon) as f64 * batch as f64;
    let training = DeviceTraining {
        batch,
        steps_timed: steps,
        step_ms,
        steps_per_sec: 1e3 / step_ms.p50,
        tflops: flops / (step_ms.p50 * 1e-3) / 1e12,
    };
    eprintln!(
        "training, batch {batch}: {:.1} ms per step (p50), {:.2} steps/s",
        step_ms.p50, training.steps_per_sec
    );
    Ok(training)
}

/// Prints the device report as a table.
pub fn print_report(r: &DeviceBenchReport) {
    println!(
        "device {} ({}), kernels {}, {}; network down_dims {:?}, horizon {}, {} parameters, {:.2} \
         MFLOP per sample; f32 matmul {:.2} TFLOP/s",
        r.device,
        r.location,
        r.kernels,
        r.precision,
        r.network.unet.down_dims,
        r.network.horizon,
        r.parameters,
        r.flops_per_sample as f64 / 1e6,
        r.matmul_tflops
    );
    println!(
        "    K  forward p50 ms  TFLOP/s  of matmul   plan p50 ms  plan p99 ms  ms/forward  \
         guided p50 ms"
    );
    for k in &r.per_k {
        println!(
            "{:5} {:15.3} {:8.3} {:9.1}% {:13.2} {:12.2} {:11.3} {:14.2}",
            k.candidates,
            k.forward_ms.p50,
            k.forward_tflops,
            100.0 * k.fraction_of_matmul_peak,
            k.plan_ms.p50,
            k.plan_ms.p99,
            k.plan_ms_per_forward,
            k.guided_plan_ms.p50
        );
    }
    if let Some(t) = &r.training {
        println!(
            "training, batch {}: {:.2} ms per step (p50, p99 {:.2}), {:.2} steps/s, {:.3} TFLOP/s",
            t.batch, t.step_ms.p50, t.step_ms.p99, t.steps_per_sec, t.tflops
        );
    }
}
