//! Training the U-Net with candle: gradients against LeRobot 0.4.4 + PyTorch autograd, and a few
//! optimiser steps that reduce the loss.
//!
//! `tests/fixtures/unet_grads.safetensors` (from `tools/gen_unet_fixtures.py`) holds, for the
//! `unet` fixture network at batch 3, the gradients of `loss = sum(unet(x, t, cond) * r)` with
//! respect to `x`, `cond` and every parameter. Batch 3 matters: candle-core 0.11.1's
//! `conv_transpose1d` (its conv1d backward for the input gradient) is wrong for batch > 1 with
//! padding 0, and has no backward of its own, so the U-Net's 1x1 convolutions and upsample avoid it.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use diffusion_planner::model::{ConditionalUnet1d, UnetConfig};
use diffusion_planner::train::optim::{AdamW, AdamWConfig};

/// Per element: |candle - PyTorch| <= TOLERANCE * max(1, |PyTorch|).
const TOLERANCE: f32 = 1e-4;

fn load(name: &str) -> HashMap<String, Tensor> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    candle_core::safetensors::load(path, &Device::Cpu).unwrap()
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

/// Every tensor of `tensors` as a trainable variable.
fn varmap_of(tensors: HashMap<String, Tensor>) -> VarMap {
    let varmap = VarMap::new();
    {
        let mut data = varmap.data().lock().unwrap();
        for (name, t) in tensors {
            data.insert(name, Var::from_tensor(&t).unwrap());
        }
    }
    varmap
}

/// Largest `|got - want| / max(1, |want|)` over all elements.
fn scaled_error(got: &Tensor, want: &Tensor) -> f32 {
    assert_eq!(got.dims(), want.dims());
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

#[test]
fn gradients_match_pytorch_at_batch_3() {
    let dev = Device::Cpu;
    let varmap = varmap_of(load("unet_weights.safetensors"));
    let unet = ConditionalUnet1d::new(
        &unet_config(),
        VarBuilder::from_varmap(&varmap, DType::F32, &dev),
    )
    .unwrap();
    let golden = load("unet_grads.safetensors");
    let x = Var::from_tensor(&golden["x"]).unwrap();
    let cond = Var::from_tensor(&golden["cond"]).unwrap();
    let t = golden["t"].to_dtype(DType::U32).unwrap();
    // Var weights: the differentiable generic ops, never the forward-only CPU kernels.
    assert!(!unet.uses_cpu_kernels(x.as_tensor(), Some(cond.as_tensor())));
    assert!(!unet.uses_cpu_kernels(&golden["x"], Some(&golden["cond"])));
    let out = unet
        .forward(x.as_tensor(), &t, Some(cond.as_tensor()))
        .unwrap();
    let loss = (out * &golden["r"]).unwrap().sum_all().unwrap();
    let loss_err =
        (loss.to_scalar::<f32>().unwrap() - golden["loss"].to_scalar::<f32>().unwrap()).abs();
    assert!(loss_err <= 1e-4, "loss differs by {loss_err}");
    let grads = loss.backward().unwrap();

    let mut checked = 0;
    let mut worst = (0f32, String::new());
    let mut check = |name: &str, var: &Var, want: &Tensor| {
        let Some(got) = grads.get(var) else {
            panic!("no gradient for {name}");
        };
        let err = scaled_error(got, want);
        assert!(err <= TOLERANCE, "{name}: scaled gradient error {err}");
        if err > worst.0 {
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
    eprintln!("worst scaled gradient error {:e} ({})", worst.0, worst.1);
}

#[test]
fn adamw_steps_on_a_tiny_batch_reduce_the_loss() {
    // Epsilon-prediction style regression of a fixed target on a batch of 4: the loss after 15
    // AdamW steps is well below the initial loss.
    let dev = Device::Cpu;
    let config = UnetConfig {
        action_dim: 2,
        global_cond_dim: 3,
        down_dims: vec![8, 16],
        kernel_size: 3,
        n_groups: 4,
        diffusion_step_embed_dim: 8,
        use_film_scale_modulation: true,
    };
    let varmap = VarMap::new();
    let unet = ConditionalUnet1d::new(&config, VarBuilder::from_varmap(&varmap, DType::F32, &dev))
        .unwrap();
    let x = Tensor::randn(0f32, 1.0, (4, 8, 2), &dev).unwrap();
    let t = Tensor::new(&[1u32, 20, 40, 90], &dev).unwrap();
    let cond = Tensor::randn(0f32, 1.0, (4, 3), &dev).unwrap();
    let target = Tensor::randn(0f32, 1.0, (4, 8, 2), &dev).unwrap();
    let vars: HashMap<String, Var> = varmap.data().lock().unwrap().clone();
    let mut opt = AdamW::new(
        &vars,
        AdamWConfig {
            learning_rate: 1e-2,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        },
    )
    .unwrap();
    let loss_of = || {
        let pred = unet.forward(&x, &t, Some(&cond)).unwrap();
        (pred - &target).unwrap().sqr().unwrap().mean_all().unwrap()
    };
    let first = loss_of().to_scalar::<f32>().unwrap();
    for _ in 0..15 {
        let grads = loss_of().backward().unwrap();
        opt.step(&grads).unwrap();
    }
    let last = loss_of().to_scalar::<f32>().unwrap();
    eprintln!("loss {first} -> {last}");
    assert!(
        last.is_finite() && last < 0.5 * first,
        "loss {first} -> {last}"
    );
}
