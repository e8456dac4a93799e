//! The U-Net against LeRobot 0.4.4's `DiffusionConditionalUnet1d` run by PyTorch: weights saved
//! by `safetensors.torch.save_file` under LeRobot's own names, inputs and outputs from
//! `tools/gen_unet_fixtures.py` (see its header for the sizes and how to regenerate).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use diffusion_planner::model::{
    check_tensors, expected_tensors, ConditionalUnet1d, CpuThreads, ForwardOptions, KernelChoice,
    LoadedModel, UnetConfig, MODEL_YAML,
};

const TOLERANCE: f32 = 1e-4;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn load(name: &str) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixture(name), &Device::Cpu).unwrap()
}

fn unet_config() -> UnetConfig {
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

fn noscale_config() -> UnetConfig {
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

/// Builds the U-Net from a PyTorch-saved state dict, after checking that the file holds exactly
/// the tensors (names and shapes) the network expects.
fn build(config: &UnetConfig, weights: &str) -> ConditionalUnet1d {
    let tensors = load(weights);
    let found: BTreeMap<_, _> = tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.dims().to_vec()))
        .collect();
    let expected = expected_tensors(config, None).unwrap();
    check_tensors(&fixture(weights), &found, &expected).unwrap();
    ConditionalUnet1d::new(
        config,
        VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu),
    )
    .unwrap()
}

/// The generic candle ops, and the fused CPU kernels on one and on two threads.
fn variants() -> [(&'static str, ForwardOptions); 3] {
    let fused = |threads| ForwardOptions {
        kernels: KernelChoice::Auto,
        cpu_threads: CpuThreads::Fixed(threads),
    };
    [
        (
            "generic",
            ForwardOptions {
                kernels: KernelChoice::Generic,
                cpu_threads: CpuThreads::Auto,
            },
        ),
        ("fused, 1 thread", fused(1)),
        ("fused, 2 threads", fused(2)),
    ]
}

fn check_case(unet: &ConditionalUnet1d, golden: &HashMap<String, Tensor>, tag: &str) {
    let x = &golden[&format!("x_{tag}")];
    // PyTorch's timesteps are int64; the network takes u32 (as the sampler passes them).
    let t = golden[&format!("t_{tag}")].to_dtype(DType::U32).unwrap();
    let cond = &golden[&format!("cond_{tag}")];
    let want = &golden[&format!("out_{tag}")];
    for (name, options) in variants() {
        let mut unet = unet.clone();
        unet.set_forward_options(options);
        let fused = options.kernels == KernelChoice::Auto;
        assert_eq!(unet.uses_cpu_kernels(x, Some(cond)), fused, "{name}");
        let got = unet.forward(x, &t, Some(cond)).unwrap();
        assert_eq!(got.dims(), want.dims(), "{tag}");
        let err = common::max_abs_diff(&got, want);
        eprintln!("{tag} ({name}): max abs error {err:e} vs LeRobot");
        assert!(
            err <= TOLERANCE,
            "{tag} ({name}): max abs error {err} vs LeRobot"
        );
    }
}

#[test]
fn lerobot_state_dict_has_exactly_the_expected_names() {
    let expected = expected_tensors(&unet_config(), None).unwrap();
    // LeRobot's 3-level U-Net has 148 tensors (reference/diffusion-policy.md).
    assert_eq!(expected.len(), 148);
    assert_eq!(
        expected["diffusion.unet.down_modules.0.0.conv1.block.0.weight"],
        vec![16, 2, 5]
    );
    assert_eq!(
        expected["diffusion.unet.down_modules.0.2.weight"],
        vec![16, 16, 3]
    );
    assert_eq!(
        expected["diffusion.unet.up_modules.0.2.weight"],
        vec![32, 32, 4]
    );
    assert_eq!(
        expected["diffusion.unet.up_modules.0.0.cond_encoder.1.weight"],
        vec![64, 40]
    );
    assert_eq!(
        expected["diffusion.unet.final_conv.1.weight"],
        vec![2, 16, 1]
    );
    assert!(!expected.contains_key("diffusion.unet.down_modules.2.2.weight"));
}

#[test]
fn matches_lerobot_with_film_scale_at_batch_3_and_1() {
    let unet = build(&unet_config(), "unet_weights.safetensors");
    let golden = load("unet_golden.safetensors");
    check_case(&unet, &golden, "b3");
    check_case(&unet, &golden, "b1");
    // Horizon 12: a multiple of 2^(levels-1) = 4 but not of LeRobot's 2^levels = 8.
    check_case(&unet, &golden, "t12");
}

#[test]
fn matches_lerobot_with_film_bias_only() {
    let unet = build(&noscale_config(), "unet_noscale_weights.safetensors");
    let golden = load("unet_noscale_golden.safetensors");
    check_case(&unet, &golden, "b3");
    check_case(&unet, &golden, "b1");
}

#[test]
fn batch_rows_are_independent() {
    // Each row of a B=3 forward equals the B=1 forward of that row (guards batch-dependent
    // kernels such as candle 0.11.1's conv_transpose1d with padding 0), on every path.
    let golden = load("unet_golden.safetensors");
    let x = &golden["x_b3"];
    let t = golden["t_b3"].to_dtype(DType::U32).unwrap();
    let c = &golden["cond_b3"];
    for (name, options) in variants() {
        let mut unet = build(&unet_config(), "unet_weights.safetensors");
        unet.set_forward_options(options);
        let all = unet.forward(x, &t, Some(c)).unwrap();
        for i in 0..3 {
            let one = unet
                .forward(
                    &x.narrow(0, i, 1).unwrap(),
                    &t.narrow(0, i, 1).unwrap(),
                    Some(&c.narrow(0, i, 1).unwrap()),
                )
                .unwrap();
            let err = common::max_abs_diff(&all.narrow(0, i, 1).unwrap(), &one);
            assert!(err <= 1e-5, "{name}, row {i}: {err}");
        }
    }
}

#[test]
fn fused_kernels_match_generic_ops_at_batch_64() {
    // The fused CPU kernels against the generic candle ops on a batch large enough for the
    // batch split over threads (Auto uses all of rayon's threads for B > 1), with
    // timesteps as int64 and a non-contiguous global condition.
    let dev = Device::Cpu;
    let mut unet = build(&unet_config(), "unet_weights.safetensors");
    let x = (Tensor::randn(0f32, 1.0, (64, 16, 2), &dev).unwrap() * 1.5).unwrap();
    let t = Tensor::arange(0i64, 64, &dev).unwrap();
    let c = Tensor::randn(0f32, 1.0, (8, 64), &dev)
        .unwrap()
        .t()
        .unwrap();
    assert!(unet.uses_cpu_kernels(&x, Some(&c)));
    let fused = unet.forward(&x, &t, Some(&c)).unwrap();
    unet.set_forward_options(ForwardOptions {
        kernels: KernelChoice::Generic,
        cpu_threads: CpuThreads::Auto,
    });
    let generic = unet.forward(&x, &t, Some(&c)).unwrap();
    let err = common::max_abs_diff(&fused, &generic);
    assert!(err <= 1e-5, "fused vs generic: {err}");
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let unet = build(&unet_config(), "unet_weights.safetensors");
    let dev = Device::Cpu;
    let t = Tensor::new(&[1u32, 2], &dev).unwrap();
    let c = Tensor::zeros((2, 8), DType::F32, &dev).unwrap();
    let x = Tensor::zeros((2, 10, 2), DType::F32, &dev).unwrap();
    let err = unet.forward(&x, &t, Some(&c)).unwrap_err().to_string();
    assert!(err.contains("multiple of 4") && err.contains("10"), "{err}");
    let x = Tensor::zeros((2, 16, 3), DType::F32, &dev).unwrap();
    assert!(unet
        .forward(&x, &t, Some(&c))
        .unwrap_err()
        .to_string()
        .contains("D = 2"));
    let x = Tensor::zeros((2, 16, 2), DType::F32, &dev).unwrap();
    let err = unet.forward(&x, &t, None).unwrap_err().to_string();
    assert!(
        err.contains("global_cond") && err.contains("(2, 8)"),
        "{err}"
    );
    let c7 = Tensor::zeros((2, 7), DType::F32, &dev).unwrap();
    assert!(unet
        .forward(&x, &t, Some(&c7))
        .unwrap_err()
        .to_string()
        .contains("[2, 7]"));
    let t3 = Tensor::new(&[1u32, 2, 3], &dev).unwrap();
    assert!(unet
        .forward(&x, &t3, Some(&c))
        .unwrap_err()
        .to_string()
        .contains("timesteps"));
}

#[test]
fn model_folder_with_pytorch_weights_loads_and_matches() {
    // A model folder whose weights file is the PyTorch-saved LeRobot state dict, unchanged.
    let dir = tempfile::tempdir().unwrap();
    let weights = std::fs::read(fixture("unet_weights.safetensors")).unwrap();
    std::fs::write(dir.path().join("model.safetensors"), &weights).unwrap();
    let mut spec = common::spec(&[16, 32, 64], 5, 8, 32);
    spec.weights.sha256 =
        diffusion_planner::model::sha256_file(&fixture("unet_weights.safetensors")).unwrap();
    std::fs::write(dir.path().join(MODEL_YAML), spec.to_yaml_string().unwrap()).unwrap();

    let model = LoadedModel::load(dir.path(), &Device::Cpu).unwrap();
    assert_eq!(model.spec(), &spec);
    let golden = load("unet_golden.safetensors");
    let t = golden["t_b3"].to_dtype(DType::U32).unwrap();
    let got = model
        .denoiser()
        .denoise(&golden["x_b3"], &t, Some(&golden["cond_b3"]), None)
        .unwrap();
    let err = common::max_abs_diff(&got, &golden["out_b3"]);
    assert!(err <= TOLERANCE, "{err}");
}
