//! The CUDA code path, checked on the CPU: with `KernelChoice::TensorOps` the U-Net runs only
//! candle's tensor ops (none of the CPU's fused kernels or custom ops), which is exactly what
//! runs on a CUDA device. Against LeRobot's outputs and PyTorch's gradients (fixtures), against
//! the fused CPU kernels, and as a whole seeded planning call of the shipped model.
//! `tests/cuda.rs` runs the same checks on a GPU.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use candle_core::{Device, Tensor};
use candle_nn::VarBuilder;
use common::device_checks::{self as checks, load, options, unet_config};
use diffusion_planner::device::DeviceSpec;
use diffusion_planner::model::{ConditionalUnet1d, KernelChoice, Precision};

#[test]
fn tensor_ops_unet_matches_lerobot_and_is_batch_independent() {
    for (case, err) in checks::unet_forward_errors(&Device::Cpu, KernelChoice::TensorOps) {
        eprintln!("{case}: max abs error {err:e}");
        let bound = if case.ends_with("rows vs batch") {
            1e-5
        } else {
            1e-4
        };
        assert!(err <= bound, "{case}: {err} > {bound}");
    }
}

#[test]
fn tensor_ops_match_the_fused_cpu_kernels_at_batch_64() {
    let dev = Device::Cpu;
    let vb = VarBuilder::from_tensors(
        load("unet_weights.safetensors"),
        candle_core::DType::F32,
        &dev,
    );
    let mut unet = ConditionalUnet1d::new(&unet_config(), vb).unwrap();
    let x = (Tensor::randn(0f32, 1.0, (64, 16, 2), &dev).unwrap() * 1.5).unwrap();
    let t = Tensor::arange(0u32, 64, &dev).unwrap();
    let c = Tensor::randn(0f32, 1.0, (64, 8), &dev).unwrap();
    assert!(unet.uses_cpu_kernels(&x, Some(&c)));
    let fused = unet.forward(&x, &t, Some(&c)).unwrap();
    unet.set_forward_options(options(KernelChoice::TensorOps));
    assert!(!unet.uses_cpu_kernels(&x, Some(&c)));
    let tensor_ops = unet.forward(&x, &t, Some(&c)).unwrap();
    let err = common::max_abs_diff(&fused, &tensor_ops);
    assert!(err <= 1e-5, "fused vs tensor ops: {err}");
}

#[test]
fn tensor_ops_gradients_match_pytorch() {
    let (loss_err, worst, name) =
        checks::unet_gradient_errors(&Device::Cpu, KernelChoice::TensorOps);
    eprintln!("loss error {loss_err:e}; worst scaled gradient error {worst:e} ({name})");
    assert!(loss_err <= 1e-4, "loss differs by {loss_err}");
    assert!(worst <= 1e-4, "{name}: scaled gradient error {worst}");
}

#[test]
fn tensor_ops_planning_call_matches_the_fused_kernels() {
    // Unguided (batch K) and guided (batch 2K) calls of the shipped model.
    for mode in ["any", "left_elbow_down"] {
        let fused = checks::planning_call(
            DeviceSpec::Cpu,
            KernelChoice::Auto,
            "two_branches.yaml",
            mode,
        );
        let ops = checks::planning_call(
            DeviceSpec::Cpu,
            KernelChoice::TensorOps,
            "two_branches.yaml",
            mode,
        );
        let diff = checks::max_candidate_diff_rad(&fused, &ops);
        eprintln!("mode {mode}: candidates differ by at most {diff:e} rad");
        assert!(diff <= 1e-3, "mode {mode}: candidates differ by {diff} rad");
        assert_eq!(fused.chosen_mode, ops.chosen_mode, "mode {mode}");
        assert_eq!(fused.chosen, ops.chosen, "mode {mode}");
        if mode == "any" {
            assert!(fused.chosen.is_some(), "mode {mode}: no plan");
        }
    }
}

#[test]
fn half_precision_against_f32() {
    // f16 / bf16 inference (generic candle ops, GroupNorm statistics in f32) against LeRobot's
    // f32 outputs and against the f32 planning call of the shipped model. The bounds are the
    // accuracy measured here with a margin (README, GPU section): they catch a broken cast,
    // not rounding.
    for (precision, unet_bound, plan_bound) in
        [(Precision::F16, 5e-3, 2e-2), (Precision::Bf16, 5e-2, 1e-1)]
    {
        let worst =
            checks::unet_forward_errors_at(&Device::Cpu, KernelChoice::TensorOps, precision)
                .into_iter()
                .filter(|(case, _)| !case.ends_with("rows vs batch"))
                .map(|(_, err)| err)
                .fold(0f32, f32::max);
        eprintln!("{precision:?}: U-Net max abs error vs LeRobot {worst:e}");
        assert!(worst <= unet_bound, "{precision:?}: U-Net error {worst}");
        for mode in ["any", "left_elbow_down"] {
            let f32_call = checks::planning_call(
                DeviceSpec::Cpu,
                KernelChoice::Auto,
                "two_branches.yaml",
                mode,
            );
            let half = checks::planning_call_at(
                DeviceSpec::Cpu,
                KernelChoice::TensorOps,
                precision,
                "two_branches.yaml",
                mode,
            );
            let diff = checks::max_candidate_diff_rad(&f32_call, &half);
            eprintln!(
                "{precision:?}, mode {mode}: candidates differ from f32 by at most {diff:e} rad; \
                 chosen mode f32 {:?}, {precision:?} {:?}",
                f32_call.chosen_mode, half.chosen_mode
            );
            assert!(diff <= plan_bound, "{precision:?} {mode}: {diff} rad");
        }
    }
}
