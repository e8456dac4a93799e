//! The golden checks of the U-Net and of a planning call, on any device and forward options:
//! run on the CPU by `tests/unet_golden.rs`, `tests/unet_grad.rs` and `tests/tensor_ops_path.rs`
//! (with the tensor ops that CUDA runs), and on a GPU by `tests/cuda.rs`.
//!
//! Fixtures: `tests/fixtures/unet_*.safetensors` from LeRobot 0.4.4 + PyTorch
//! (`tools/gen_unet_fixtures.py`); the planning call uses the shipped model `models/planar_arm`.

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use diffusion_planner::device::DeviceSpec;
use diffusion_planner::model::{
    ConditionalUnet1d, ForwardOptions, KernelChoice, Precision, UnetConfig,
};
use diffusion_planner::sample_cli::{run_sample, SampleArgs, SampleReport};

/// The source tree: `$DP_TEST_ROOT` when set (a test binary run on another machine, see
/// `scripts/gpu-check`), else where it was compiled.
pub fn root() -> PathBuf {
    std::env::var_os("DP_TEST_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

pub fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures").join(name)
}

/// A fixture's tensors on the CPU.
pub fn load(name: &str) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixture(name), &Device::Cpu).unwrap()
}

/// The `unet` fixture network (film scale, 3 levels).
pub fn unet_config() -> UnetConfig {
    UnetConfig {
        action_dim: 2,
        global_cond_dim: 8,
        down_dims: vec![16, 32, 64],
        kernel_size: 5,
        n_groups: 8,
        diffusion_step_embed_dim: 32,
        use_film_scale_modulation: true,
    }
}

/// The `unet_noscale` fixture network (FiLM bias only, 2 levels).
pub fn noscale_config() -> UnetConfig {
    UnetConfig {
        action_dim: 3,
        global_cond_dim: 5,
        down_dims: vec![8, 16],
        kernel_size: 3,
        n_groups: 4,
        diffusion_step_embed_dim: 16,
        use_film_scale_modulation: false,
    }
}

pub fn options(kernels: KernelChoice) -> ForwardOptions {
    ForwardOptions {
        kernels,
        ..ForwardOptions::default()
    }
}

fn max_abs_diff_cpu(a: &Tensor, b: &Tensor) -> f32 {
    let a = a.to_device(&Device::Cpu).unwrap();
    let b = b.to_device(&Device::Cpu).unwrap();
    super::max_abs_diff(&a, &b)
}

/// Per fixture case (`b3`, `b1`, `t12` of the film-scale network, `noscale b3`, `noscale b1`):
/// the max abs error of the U-Net on `device` against LeRobot's output, and of each row of the
/// batch-3 forward against that row alone (batch independence).
pub fn unet_forward_errors(device: &Device, kernels: KernelChoice) -> Vec<(String, f32)> {
    unet_forward_errors_at(device, kernels, Precision::F32)
}

/// [`unet_forward_errors`] with the weights and activations in `precision`.
pub fn unet_forward_errors_at(
    device: &Device,
    kernels: KernelChoice,
    precision: Precision,
) -> Vec<(String, f32)> {
    let mut out = Vec::new();
    for (config, weights, golden, cases) in [
        (
            unet_config(),
            "unet_weights.safetensors",
            "unet_golden.safetensors",
            &["b3", "b1", "t12"][..],
        ),
        (
            noscale_config(),
            "unet_noscale_weights.safetensors",
            "unet_noscale_golden.safetensors",
            &["b3", "b1"][..],
        ),
    ] {
        let vb = VarBuilder::from_tensors(load(weights), precision.dtype(), device);
        let mut unet = ConditionalUnet1d::new(&config, vb).unwrap();
        unet.set_forward_options(options(kernels));
        let golden = load(golden);
        let on = |name: &str| golden[name].to_device(device).unwrap();
        for tag in cases {
            let x = on(&format!("x_{tag}"));
            // PyTorch's timesteps are int64; the network takes u32 (as the sampler passes them).
            let t = on(&format!("t_{tag}")).to_dtype(DType::U32).unwrap();
            let cond = on(&format!("cond_{tag}"));
            let got = unet.forward(&x, &t, Some(&cond)).unwrap();
            assert_eq!(got.dims(), golden[&format!("out_{tag}")].dims());
            let name = format!("{} {tag}", config.down_dims.len());
            out.push((
                name.clone(),
                max_abs_diff_cpu(&got, &golden[&format!("out_{tag}")]),
            ));
            if *tag == "b3" {
                let mut worst = 0f32;
                for i in 0..3 {
                    let row = |t: &Tensor| t.narrow(0, i, 1).unwrap();
                    let one = unet.forward(&row(&x), &row(&t), Some(&row(&cond))).unwrap();
                    worst = worst.max(max_abs_diff_cpu(&row(&got), &one));
                }
                out.push((format!("{name} rows vs batch"), worst));
            }
        }
    }
    out
}

/// Largest `|got - want| / max(1, |want|)` over all elements (both on the CPU).
fn scaled_error(got: &Tensor, want: &Tensor) -> f32 {
    assert_eq!(got.dims(), want.dims());
    let got = got.to_device(&Device::Cpu).unwrap();
    let scale = want.abs().unwrap().maximum(1f32).unwrap();
    ((got - want).unwrap().abs().unwrap() / scale)
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// The gradients of `loss = sum(unet(x, t, cond) * r)` on `device` against PyTorch autograd
/// (`unet_grads.safetensors`, batch 3): the loss error and the worst scaled gradient error with
/// its tensor's name, after checking that all 150 gradients (x, cond, 148 parameters) exist.
pub fn unet_gradient_errors(device: &Device, kernels: KernelChoice) -> (f32, f32, String) {
    let varmap = VarMap::new();
    {
        let mut data = varmap.data().lock().unwrap();
        for (name, t) in load("unet_weights.safetensors") {
            let t = t.to_device(device).unwrap();
            data.insert(name, Var::from_tensor(&t).unwrap());
        }
    }
    let mut unet = ConditionalUnet1d::new(
        &unet_config(),
        VarBuilder::from_varmap(&varmap, DType::F32, device),
    )
    .unwrap();
    unet.set_forward_options(options(kernels));
    let golden = load("unet_grads.safetensors");
    let on = |name: &str| golden[name].to_device(device).unwrap();
    let x = Var::from_tensor(&on("x")).unwrap();
    let cond = Var::from_tensor(&on("cond")).unwrap();
    let t = on("t").to_dtype(DType::U32).unwrap();
    // Var weights: the differentiable generic ops, never the forward-only CPU kernels.
    assert!(!unet.uses_cpu_kernels(x.as_tensor(), Some(cond.as_tensor())));
    let out = unet
        .forward(x.as_tensor(), &t, Some(cond.as_tensor()))
        .unwrap();
    let loss = (out * on("r")).unwrap().sum_all().unwrap();
    let loss_err =
        (loss.to_scalar::<f32>().unwrap() - golden["loss"].to_scalar::<f32>().unwrap()).abs();
    let grads = loss.backward().unwrap();
    let mut worst = (0f32, String::new());
    let mut checked = 0;
    let mut check = |name: &str, var: &Var, want: &Tensor| {
        let Some(got) = grads.get(var) else {
            panic!("no gradient for {name}");
        };
        let err = scaled_error(got, want);
        if !(err <= worst.0) {
            worst = (err, name.to_string());
        }
        checked += 1;
    };
    check("x", &x, &golden["grad.x"]);
    check("cond", &cond, &golden["grad.cond"]);
    let vars = varmap.data().lock().unwrap();
    for (name, var) in vars.iter() {
        check(name, var, &golden[&format!("grad.{name}")]);
    }
    // 148 parameters + x + cond: every parameter has a PyTorch gradient and was compared.
    assert_eq!(checked, 150);
    (loss_err, worst.0, worst.1)
}

/// One seeded planning call of the shipped model on `scene` (a file under config/scenes) with
/// the mode request `mode` (`any`: batch K; a mode name: guided, batch 2K).
pub fn planning_call(
    device: DeviceSpec,
    kernels: KernelChoice,
    scene: &str,
    mode: &str,
) -> SampleReport {
    planning_call_at(device, kernels, Precision::F32, scene, mode)
}

/// [`planning_call`] with the network in `precision`.
pub fn planning_call_at(
    device: DeviceSpec,
    kernels: KernelChoice,
    precision: Precision,
    scene: &str,
    mode: &str,
) -> SampleReport {
    let root = root();
    let mut args = SampleArgs::new(
        root.join("models/planar_arm"),
        root.join("config/scenes").join(scene),
    );
    args.mode = mode.to_string();
    args.seed = Some(20261203);
    args.device = device;
    args.kernels = kernels;
    args.precision = precision;
    args.omit_timings = true;
    run_sample(&args).unwrap()
}

/// Largest |a - b| (rad) over every candidate's waypoints; panics if the two reports have
/// different candidate counts or path sizes.
pub fn max_candidate_diff_rad(a: &SampleReport, b: &SampleReport) -> f64 {
    assert_eq!(a.candidates.len(), b.candidates.len());
    let mut worst = 0f64;
    for (ca, cb) in a.candidates.iter().zip(&b.candidates) {
        assert_eq!(ca.path_rad.len(), cb.path_rad.len());
        for (wa, wb) in ca.path_rad.iter().zip(&cb.path_rad) {
            assert_eq!(wa.len(), wb.len());
            for (qa, qb) in wa.iter().zip(wb) {
                let d = (qa - qb).abs();
                if !(d <= worst) {
                    worst = d;
                }
            }
        }
    }
    worst
}
