//! `dplan bench`: how fast the denoiser runs on this machine's CPU, against its matrix-product
//! peak and against PyTorch on the same network and weights.
//!
//! Measured, for the shipped model's sizes ([`BenchNetwork::shipped`]) with random weights:
//! - the machine's sgemm peak: a 1024^3 product with the `gemm` crate (what candle uses) on 1
//!   and 2 threads, and candle's own `matmul` at its default threads;
//! - one U-Net forward at B = 1 / 32 / 64 / 128 on 1 and 2 threads (fused CPU kernels), p50, the
//!   achieved GFLOP/s (FLOPs counted analytically: convolutions and linear layers, 2 per
//!   multiply-add, see [`unet_flops_per_sample`]) and the fraction of the same-thread peak;
//!   also the generic candle ops for comparison;
//! - one planning call's sampling: K = 32 candidates, DDIM 10 steps, p50 / p99, without a mode
//!   request (batch K) and with one under classifier-free guidance (batch 2K);
//! - PyTorch (LeRobot's `DiffusionConditionalUnet1d`, diffusers' `DDIMScheduler`) on the same
//!   weights, from `tools/bench_torch.py`, when a Python with torch is found.
//!
//! With `--device D` (`cuda:0`, or `cpu` for comparison) it measures the network on that device
//! instead, at several candidate counts and with the training throughput: see [`device`].

pub mod device;
pub mod robot;
mod torch;

pub use device::run_device;

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use serde::Serialize;

use crate::device::DeviceSpec;
use crate::diffusion::{sample, SampleRequest, SamplerSettings, SchedulerConfig};
use crate::model::{
    CpuThreads, Denoiser, ForwardOptions, KernelChoice, ModeEmbeddingConfig, Precision, UnetConfig,
};
use crate::{Error, Result};

pub use torch::TorchReport;

/// Batch sizes of the forward-pass measurements: one sample, a planning call (K), a guided
/// planning call (2K), a large batch.
pub const BATCHES: &[usize] = &[1, 32, 64, 128];

/// `dplan bench` options.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "OUT")]
    pub json: Option<PathBuf>,
    /// Timed forward passes per batch size and thread count.
    #[arg(long, default_value_t = 30)]
    pub forward_iterations: usize,
    /// Timed planning calls per variant (p99 is the largest but one of 100).
    #[arg(long, default_value_t = 100)]
    pub plan_iterations: usize,
    /// Skip the PyTorch comparison.
    #[arg(long)]
    pub no_torch: bool,
    /// Only the robot layer's benchmarks (Panda: K x H scoring, IK), from urdf/panda/ of this
    /// source tree.
    #[arg(long)]
    pub robot: bool,
    /// Python with torch, lerobot and diffusers [default: $DPLAN_TORCH_PYTHON, else python3].
    #[arg(long, value_name = "PYTHON")]
    pub torch_python: Option<PathBuf>,
    /// The PyTorch benchmark script [default: tools/bench_torch.py of this source tree].
    #[arg(long, value_name = "SCRIPT")]
    pub torch_script: Option<PathBuf>,
    /// Measure on this device (`cuda:N`, `cpu`, `auto`) at the `--candidates` counts, with the
    /// training throughput, instead of the CPU report.
    #[arg(long)]
    pub device: Option<DeviceSpec>,
    /// With `--device`: candidate counts K of the planning calls.
    #[arg(long, value_delimiter = ',', default_value = "32,256,1024")]
    pub candidates: Vec<usize>,
    /// With `--device`: training batch size (0: skip the training measurement).
    #[arg(long, default_value_t = 256)]
    pub train_batch: usize,
    /// With `--device`: timed training steps.
    #[arg(long, default_value_t = 20)]
    pub train_steps: usize,
    /// With `--device`: the network's implementation (`auto`, `generic`, `tensor-ops`).
    #[arg(long, value_enum, default_value = "auto")]
    pub kernels: KernelChoice,
    /// With `--device`: the network's float type at inference (`f32`, `f16`, `bf16`).
    #[arg(long, value_enum, default_value = "f32")]
    pub precision: Precision,
}

/// The benchmarked network and planning call.
#[derive(Debug, Clone, Serialize)]
pub struct BenchNetwork {
    pub unet: UnetConfig,
    pub horizon: usize,
    /// Mode labels (the embedding has one more row, the null label).
    pub num_modes: usize,
    /// Size of the mode embedding, part of `unet.global_cond_dim`.
    pub mode_embed_dim: usize,
    /// Candidates per planning call (K).
    pub candidates: usize,
    /// DDIM steps per planning call.
    pub ddim_steps: usize,
    /// Guidance scale of the guided planning call (batch 2K).
    pub guidance_scale: f64,
}

impl BenchNetwork {
    /// The shipped model: down_dims [32, 64, 128], kernel 5, 8 groups, step embedding 64,
    /// horizon 32, 2 joints, condition 7 + a 16-value mode embedding (4 modes); K = 32, DDIM 10.
    pub fn shipped() -> Self {
        let modes = ModeEmbeddingConfig {
            num_modes: 4,
            embed_dim: 16,
        };
        BenchNetwork {
            unet: UnetConfig {
                action_dim: 2,
                global_cond_dim: 7 + modes.embed_dim,
                down_dims: vec![32, 64, 128],
                kernel_size: 5,
                n_groups: 8,
                diffusion_step_embed_dim: 64,
                use_film_scale_modulation: true,
            },
            horizon: 32,
            num_modes: modes.num_modes,
            mode_embed_dim: modes.embed_dim,
            candidates: 32,
            ddim_steps: 10,
            guidance_scale: 2.0,
        }
    }

    /// Size of the observation condition (without the mode embedding).
    pub fn condition_dim(&self) -> usize {
        self.unet.global_cond_dim - self.mode_embed_dim
    }

    /// The mode embedding's size.
    pub fn modes(&self) -> ModeEmbeddingConfig {
        ModeEmbeddingConfig {
            num_modes: self.num_modes,
            embed_dim: self.mode_embed_dim,
        }
    }
}

/// FLOPs of one U-Net forward for one sample of horizon `horizon`: 2 per multiply-add of the
/// convolutions (the upsample counted as the transposed convolution it is: 2 taps per output)
/// and linear layers; GroupNorm, Mish and the elementwise ops are not counted.
pub fn unet_flops_per_sample(config: &UnetConfig, horizon: usize) -> u64 {
    let k = config.kernel_size as u64;
    let e = config.diffusion_step_embed_dim as u64;
    let cond = e + config.global_cond_dim as u64;
    let film = if config.use_film_scale_modulation {
        2
    } else {
        1
    };
    let block = |c_in: u64, c_out: u64, l: u64| {
        let residual = if c_in == c_out { 0 } else { c_out * c_in * l };
        2 * (cond * film * c_out + c_out * c_in * k * l + c_out * c_out * k * l + residual)
    };
    let mut flops = 2 * (e * 4 * e + 4 * e * e);
    let dims: Vec<u64> = config.down_dims.iter().map(|&d| d as u64).collect();
    let mut in_out = vec![(config.action_dim as u64, dims[0])];
    in_out.extend(dims.windows(2).map(|w| (w[0], w[1])));
    let mut l = horizon as u64;
    for (i, &(c_in, c_out)) in in_out.iter().enumerate() {
        flops += block(c_in, c_out, l) + block(c_out, c_out, l);
        if i + 1 < in_out.len() {
            l /= 2;
            flops += 2 * c_out * c_out * 3 * l;
        }
    }
    let last = dims[dims.len() - 1];
    flops += 2 * block(last, last, l);
    for &(c_out, c_in) in in_out[1..].iter().rev() {
        flops += block(2 * c_in, c_out, l) + block(c_out, c_out, l);
        // ConvTranspose1d(k 4, stride 2): 2 taps per output position, 2L outputs.
        flops += 2 * c_out * c_out * 2 * (2 * l);
        l *= 2;
    }
    let d0 = dims[0];
    flops + 2 * (d0 * d0 * k * l + config.action_dim as u64 * d0 * l)
}

/// p50 and p99 of a set of durations in milliseconds (nearest rank).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p99: f64,
}

impl Percentiles {
    fn of(mut ms: Vec<f64>) -> Self {
        ms.sort_by(f64::total_cmp);
        let rank = |q: f64| {
            let i = ((q * ms.len() as f64).ceil() as usize).clamp(1, ms.len().max(1)) - 1;
            ms.get(i).copied().unwrap_or(f64::NAN)
        };
        Percentiles {
            p50: rank(0.5),
            p99: rank(0.99),
        }
    }
}

/// Times `f` `iterations` times after two warm-up calls.
fn time_ms(iterations: usize, mut f: impl FnMut() -> Result<()>) -> Result<Percentiles> {
    for _ in 0..2 {
        f()?;
    }
    let mut ms = Vec::with_capacity(iterations);
    for _ in 0..iterations.max(1) {
        let start = Instant::now();
        f()?;
        ms.push(start.elapsed().as_secs_f64() * 1e3);
    }
    Ok(Percentiles::of(ms))
}

/// One forward-pass measurement.
#[derive(Debug, Clone, Serialize)]
pub struct ForwardTiming {
    pub batch: usize,
    pub threads: usize,
    /// Fused CPU kernels, p50.
    pub ms_p50: f64,
    pub gflops: f64,
    /// `gflops` over the sgemm peak on the same number of threads.
    pub fraction_of_sgemm_peak: f64,
    /// Generic candle ops (candle's threads, `RAYON_NUM_THREADS`), p50.
    pub generic_ms_p50: f64,
}

/// Everything `dplan bench` measured.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub machine: Machine,
    pub network: BenchNetwork,
    pub parameters: usize,
    pub flops_per_sample: u64,
    /// `gemm` crate, 1024^3, GFLOP/s.
    pub sgemm_peak_gflops_1_thread: f64,
    pub sgemm_peak_gflops_2_threads: f64,
    /// candle's `matmul`, 1024^3, at its default threads.
    pub candle_matmul_gflops: f64,
    pub forward: Vec<ForwardTiming>,
    /// One planning call's sampling (K candidates, no mode request), threads by batch size.
    pub plan_latency_ms_p50: f64,
    pub plan_latency_ms_p99: f64,
    /// The same on one thread.
    pub plan_1_thread_latency_ms_p50: f64,
    pub plan_1_thread_latency_ms_p99: f64,
    /// The same with a mode request under classifier-free guidance (batch 2K).
    pub plan_guided_latency_ms_p50: f64,
    pub plan_guided_latency_ms_p99: f64,
    /// The unguided planning call on the generic candle ops.
    pub plan_generic_latency_ms_p50: f64,
    /// PyTorch's fastest thread count (1 or 2) for the unguided planning call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub torch_plan_latency_ms_p50: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub torch_plan_latency_ms_p99: Option<f64>,
    /// `plan_latency_ms_p50 / torch_plan_latency_ms_p50` (below 1: faster than PyTorch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_latency_ratio_vs_torch: Option<f64>,
    /// PyTorch's full report, or why it is missing.
    pub torch: TorchReport,
}

/// Where the numbers came from.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpu_model: String,
    pub logical_cpus: usize,
    /// 1, 5 and 15 minute load averages before and after the run (Linux), empty elsewhere.
    pub load_average_before: Vec<f64>,
    pub load_average_after: Vec<f64>,
}

fn load_average() -> Vec<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| {
            s.split_whitespace()
                .take(3)
                .filter_map(|v| v.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// GFLOP/s of an `n^3` product with the `gemm` crate on `threads` threads (best of `reps`).
fn sgemm_gflops(n: usize, threads: usize, reps: usize) -> Result<f64> {
    let a: Vec<f32> = (0..n * n).map(|i| ((i % 13) as f32 - 6.0) * 0.1).collect();
    let mut c = vec![0f32; n * n];
    let mut best = f64::INFINITY;
    for _ in 0..reps.max(1) + 1 {
        let start = Instant::now();
        crate::model::sgemm_square(n, &a, &mut c, threads)?;
        best = best.min(start.elapsed().as_secs_f64());
    }
    Ok(2.0 * (n as f64).powi(3) / best / 1e9)
}

/// GFLOP/s of candle's `matmul` on an `n^3` product (best of `reps`).
fn candle_matmul_gflops(n: usize, reps: usize) -> Result<f64> {
    let a = Tensor::randn(0f32, 1.0, (n, n), &Device::Cpu)?;
    let mut best = f64::INFINITY;
    for _ in 0..reps.max(1) + 1 {
        let start = Instant::now();
        let c = a.matmul(&a)?;
        std::hint::black_box(c);
        best = best.min(start.elapsed().as_secs_f64());
    }
    Ok(2.0 * (n as f64).powi(3) / best / 1e9)
}

/// The denoiser with random weights (candle's initialisers), loaded back from `weights` as
/// plain tensors as a model folder would be, so that the CPU kernels apply.
fn random_denoiser(net: &BenchNetwork, weights: &Path) -> Result<(Denoiser, usize)> {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    Denoiser::new(&net.unet, Some(net.modes()), vb)?;
    varmap.save(weights)?;
    let tensors = candle_core::safetensors::load(weights, &Device::Cpu)?;
    let parameters = tensors.values().map(|t| t.elem_count()).sum();
    let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
    Ok((Denoiser::new(&net.unet, Some(net.modes()), vb)?, parameters))
}

fn with_options(denoiser: &Denoiser, options: ForwardOptions) -> Denoiser {
    let mut d = denoiser.clone();
    d.set_forward_options(options);
    d
}

/// Runs the whole benchmark; prints a table on stdout and writes the JSON if asked.
pub fn run(args: &BenchArgs) -> Result<BenchReport> {
    let net = BenchNetwork::shipped();
    let load_before = load_average();
    let dir = std::env::temp_dir().join(format!("dplan-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let weights = dir.join("weights.safetensors");
    let result = run_in(args, &net, &weights, load_before);
    // Best effort: the directory holds only the weights written above.
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

fn run_in(
    args: &BenchArgs,
    net: &BenchNetwork,
    weights: &Path,
    load_before: Vec<f64>,
) -> Result<BenchReport> {
    let (denoiser, parameters) = random_denoiser(net, weights)?;
    let flops_per_sample = unet_flops_per_sample(&net.unet, net.horizon);
    let peak1 = sgemm_gflops(1024, 1, 3)?;
    let peak2 = sgemm_gflops(1024, 2, 3)?;
    let candle_peak = candle_matmul_gflops(1024, 3)?;
    eprintln!("sgemm peak: {peak1:.1} GFLOP/s (1 thread), {peak2:.1} (2); candle {candle_peak:.1}");

    let dev = Device::Cpu;
    let mut forward = Vec::new();
    for &batch in BATCHES {
        let x = Tensor::randn(0f32, 1.0, (batch, net.horizon, net.unet.action_dim), &dev)?;
        let t = Tensor::full(50u32, batch, &dev)?;
        let c = Tensor::randn(0f32, 1.0, (batch, net.condition_dim()), &dev)?;
        let generic = with_options(
            &denoiser,
            ForwardOptions {
                kernels: KernelChoice::Generic,
                cpu_threads: CpuThreads::Auto,
            },
        );
        let generic_ms = time_ms(args.forward_iterations, || {
            generic.denoise(&x, &t, Some(&c), None)?;
            Ok(())
        })?;
        for threads in [1usize, 2] {
            let fused = with_options(
                &denoiser,
                ForwardOptions {
                    kernels: KernelChoice::Auto,
                    cpu_threads: CpuThreads::Fixed(threads),
                },
            );
            let ms = time_ms(args.forward_iterations, || {
                fused.denoise(&x, &t, Some(&c), None)?;
                Ok(())
            })?;
            let gflops = flops_per_sample as f64 * batch as f64 / (ms.p50 * 1e-3) / 1e9;
            let peak = if threads == 1 { peak1 } else { peak2 };
            eprintln!(
                "forward B = {batch}, {threads} thread(s): {:.3} ms ({gflops:.1} GFLOP/s); generic \
                 ops {:.3} ms",
                ms.p50, generic_ms.p50
            );
            forward.push(ForwardTiming {
                batch,
                threads,
                ms_p50: ms.p50,
                gflops,
                fraction_of_sgemm_peak: gflops / peak,
                generic_ms_p50: generic_ms.p50,
            });
        }
    }

    let plan = |denoiser: &Denoiser, label: Option<u32>, iterations: usize| {
        let scheduler = SchedulerConfig::default();
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
        let cond = Tensor::randn(0f32, 1.0, (1, net.condition_dim()), &dev)?;
        let mut seed = 0u64;
        time_ms(iterations, || {
            seed += 1;
            let request = SampleRequest {
                shape: vec![net.candidates, net.horizon, net.unet.action_dim],
                global_cond: Some(cond.clone()),
                label,
                seed,
                device: dev.clone(),
            };
            let out = sample(denoiser, &scheduler, &settings, &request)?;
            out.x0_variance()?;
            Ok(())
        })
    };
    let planned = plan(&denoiser, None, args.plan_iterations)?;
    eprintln!(
        "planning call: p50 {:.1} ms, p99 {:.1} ms",
        planned.p50, planned.p99
    );
    let one_thread = with_options(
        &denoiser,
        ForwardOptions {
            kernels: KernelChoice::Auto,
            cpu_threads: CpuThreads::Fixed(1),
        },
    );
    let planned_1 = plan(&one_thread, None, args.plan_iterations)?;
    let guided = plan(&denoiser, Some(0), args.plan_iterations)?;
    eprintln!(
        "guided planning call: p50 {:.1} ms, p99 {:.1} ms",
        guided.p50, guided.p99
    );
    let generic = with_options(
        &denoiser,
        ForwardOptions {
            kernels: KernelChoice::Generic,
            cpu_threads: CpuThreads::Auto,
        },
    );
    let planned_generic = plan(&generic, None, (args.plan_iterations / 5).max(5))?;

    let torch = if args.no_torch {
        TorchReport::skipped("--no-torch")
    } else {
        eprintln!("PyTorch ...");
        torch::run(args, net, weights)
    };
    let torch_plan = torch.best_plan();
    Ok(BenchReport {
        machine: Machine {
            cpu_model: cpu_model(),
            logical_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            load_average_before: load_before,
            load_average_after: load_average(),
        },
        network: net.clone(),
        parameters,
        flops_per_sample,
        sgemm_peak_gflops_1_thread: peak1,
        sgemm_peak_gflops_2_threads: peak2,
        candle_matmul_gflops: candle_peak,
        forward,
        plan_latency_ms_p50: planned.p50,
        plan_latency_ms_p99: planned.p99,
        plan_1_thread_latency_ms_p50: planned_1.p50,
        plan_1_thread_latency_ms_p99: planned_1.p99,
        plan_guided_latency_ms_p50: guided.p50,
        plan_guided_latency_ms_p99: guided.p99,
        plan_generic_latency_ms_p50: planned_generic.p50,
        torch_plan_latency_ms_p50: torch_plan.map(|p| p.p50),
        torch_plan_latency_ms_p99: torch_plan.map(|p| p.p99),
        plan_latency_ratio_vs_torch: torch_plan.map(|p| planned.p50 / p.p50),
        torch,
    })
}

fn print_report(r: &BenchReport) {
    println!(
        "machine: {} ({} logical CPUs), load average {:?} -> {:?}",
        r.machine.cpu_model,
        r.machine.logical_cpus,
        r.machine.load_average_before,
        r.machine.load_average_after
    );
    println!(
        "network: down_dims {:?}, kernel {}, horizon {}, {} parameters, {:.2} MFLOP per sample",
        r.network.unet.down_dims,
        r.network.unet.kernel_size,
        r.network.horizon,
        r.parameters,
        r.flops_per_sample as f64 / 1e6
    );
    println!(
        "sgemm peak (1024^3): {:.1} GFLOP/s on 1 thread, {:.1} on 2; candle matmul {:.1}",
        r.sgemm_peak_gflops_1_thread, r.sgemm_peak_gflops_2_threads, r.candle_matmul_gflops
    );
    println!("forward   batch threads   fused ms   GFLOP/s  of peak   generic ms");
    for f in &r.forward {
        println!(
            "          {:5} {:7} {:10.3} {:9.1} {:8.0}% {:12.3}",
            f.batch,
            f.threads,
            f.ms_p50,
            f.gflops,
            100.0 * f.fraction_of_sgemm_peak,
            f.generic_ms_p50
        );
    }
    println!(
        "planning call (K = {}, DDIM {}): p50 {:.1} ms, p99 {:.1} ms (1 thread: p50 {:.1}, p99 \
         {:.1}); guided (batch {}) p50 {:.1} ms, p99 {:.1} ms; generic ops p50 {:.1} ms",
        r.network.candidates,
        r.network.ddim_steps,
        r.plan_latency_ms_p50,
        r.plan_latency_ms_p99,
        r.plan_1_thread_latency_ms_p50,
        r.plan_1_thread_latency_ms_p99,
        2 * r.network.candidates,
        r.plan_guided_latency_ms_p50,
        r.plan_guided_latency_ms_p99,
        r.plan_generic_latency_ms_p50
    );
    match (r.torch_plan_latency_ms_p50, r.plan_latency_ratio_vs_torch) {
        (Some(t), Some(ratio)) => {
            println!("PyTorch planning call p50 {t:.1} ms: candle / PyTorch = {ratio:.2}")
        }
        _ => println!("PyTorch: {}", r.torch.summary()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flops_of_the_reference_network() {
        // reference/cpu-performance.md: down_dims [64, 128, 256], kernel 5, step embedding 64,
        // global condition 8, horizon 32: 73 MFLOP per sample.
        let config = UnetConfig {
            action_dim: 2,
            global_cond_dim: 8,
            down_dims: vec![64, 128, 256],
            kernel_size: 5,
            n_groups: 8,
            diffusion_step_embed_dim: 64,
            use_film_scale_modulation: true,
        };
        let mflop = unet_flops_per_sample(&config, 32) as f64 / 1e6;
        assert!((mflop - 73.0).abs() < 1.5, "{mflop}");
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let p = Percentiles::of((1..=100).rev().map(f64::from).collect());
        assert_eq!((p.p50, p.p99), (50.0, 99.0));
        let p = Percentiles::of(vec![3.0]);
        assert_eq!((p.p50, p.p99), (3.0, 3.0));
    }
}
