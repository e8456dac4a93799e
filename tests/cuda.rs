//! The golden checks on a CUDA device (feature `cuda`; run by `scripts/gpu-check`): the U-Net
//! against LeRobot's outputs (<= 1e-4) and PyTorch's gradients, and a seeded planning call of
//! the shipped model on CUDA against the same call on the CPU (candidates within 1e-3 rad, the
//! same chosen candidate and mode). They need a GPU: without one they fail, saying so.
#![cfg(feature = "cuda")]
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use candle_core::Device;
use common::device_checks as checks;
use diffusion_planner::device::DeviceSpec;
use diffusion_planner::model::KernelChoice;

fn gpu() -> Device {
    match Device::new_cuda(0) {
        Ok(device) => device,
        Err(e) => panic!("these tests need a CUDA device (cuda:0): {e}"),
    }
}

#[test]
fn cuda_unet_matches_lerobot_and_is_batch_independent() {
    let device = gpu();
    for (case, err) in checks::unet_forward_errors(&device, KernelChoice::Auto) {
        eprintln!("cuda {case}: max abs error {err:e}");
        let bound = if case.ends_with("rows vs batch") {
            1e-5
        } else {
            1e-4
        };
        assert!(err <= bound, "{case}: {err} > {bound}");
    }
}

#[test]
fn cuda_gradients_match_pytorch() {
    let (loss_err, worst, name) = checks::unet_gradient_errors(&gpu(), KernelChoice::Auto);
    eprintln!("cuda loss error {loss_err:e}; worst scaled gradient error {worst:e} ({name})");
    assert!(loss_err <= 1e-4, "loss differs by {loss_err}");
    assert!(worst <= 1e-4, "{name}: scaled gradient error {worst}");
}

#[test]
fn cuda_planning_call_matches_the_cpu() {
    gpu();
    for scene in ["two_branches.yaml", "blocked.yaml"] {
        for mode in ["any", "left_elbow_down"] {
            let cpu = checks::planning_call(DeviceSpec::Cpu, KernelChoice::Auto, scene, mode);
            let cuda = checks::planning_call(DeviceSpec::Cuda(0), KernelChoice::Auto, scene, mode);
            let diff = checks::max_candidate_diff_rad(&cpu, &cuda);
            eprintln!(
                "{scene}, mode {mode}: candidates differ by at most {diff:e} rad; chosen mode \
                 cpu {:?} cuda {:?}",
                cpu.chosen_mode, cuda.chosen_mode
            );
            assert!(
                diff <= 1e-3,
                "{scene} {mode}: candidates differ by {diff} rad"
            );
            assert_eq!(cpu.chosen_mode, cuda.chosen_mode, "{scene} {mode}");
            assert_eq!(cpu.chosen, cuda.chosen, "{scene} {mode}");
        }
    }
}
