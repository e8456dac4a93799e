#!/usr/bin/env python3
"""Golden values for `src/diffusion/` from diffusers' DDPMScheduler and DDIMScheduler.

Pinned versions (the values below were produced with exactly these):
    diffusers 0.42.1, torch 2.15.0 (CPU), numpy 2.4.6, safetensors 0.8.0

Writes, relative to the repository root:
    tests/fixtures/schedulers.safetensors   tensors (f32 values, i32 timesteps)
    tests/fixtures/schedulers.json          scheduler configs of the step cases (diffusers names)

Run from anywhere:  python tools/gen_scheduler_fixtures.py
The Rust test `tests/diffusion_golden.rs` reads both files; it needs no Python.

Tensor names:
    schedule/{beta_schedule}/N{num_train_timesteps}/{betas|alphas_cumprod}        (N,) f32
    timesteps_all/{spacing}/N100/{values|lengths}     every n in 1..=100 (offset 0): the
        concatenated `timesteps` after set_timesteps(n), and each n's length (diffusers' trailing
        spacing sometimes returns n + 1 timesteps, the last being -1; the test checks that too)
    timesteps/{spacing}/N{N}/n{n}/offset{o}           (n,) i32, selected combinations
    step/{case}/{timesteps|model_output|sample|noise|prev_sample|pred_original_sample}
        one independent `step` per timestep: inputs (S, 2, 3, 2), timesteps (S,) i32;
        `noise` is the variance noise used by that step (zeros where the step draws none)
    chain/{case}/{x_t|noise|prev_samples}   a full denoising loop with model_output = 0.5 * x_t
    add_noise/{case}/{x0|noise|timesteps|noisy}
"""

import json
import pathlib

import numpy as np
import torch
from diffusers import DDIMScheduler, DDPMScheduler
from safetensors.torch import save_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT_TENSORS = ROOT / "tests" / "fixtures" / "schedulers.safetensors"
OUT_JSON = ROOT / "tests" / "fixtures" / "schedulers.json"

# The keys of our `SchedulerConfig` (diffusers' names). Every other diffusers key must keep its
# default, which our implementation assumes.
OUR_KEYS = [
    "num_train_timesteps",
    "beta_start",
    "beta_end",
    "beta_schedule",
    "clip_sample",
    "clip_sample_range",
    "prediction_type",
    "variance_type",
    "set_alpha_to_one",
    "steps_offset",
    "timestep_spacing",
]
ASSUMED_DEFAULTS = {"trained_betas": None, "thresholding": False, "rescale_betas_zero_snr": False}

SHAPE = (2, 3, 2)
tensors = {}
cases = []


def our_config(sched):
    cfg = dict(sched.config)
    for key, value in ASSUMED_DEFAULTS.items():
        assert cfg.get(key) == value, (key, cfg.get(key))
    return {k: cfg[k] for k in OUR_KEYS if k in cfg}


def i32(values):
    return torch.tensor(np.asarray(values, dtype=np.int64), dtype=torch.int32)


# --- beta schedules and alphas_cumprod ---------------------------------------------------------
for schedule in ["linear", "scaled_linear", "squaredcos_cap_v2"]:
    for n_train in [100, 1000]:
        ddpm = DDPMScheduler(num_train_timesteps=n_train, beta_schedule=schedule)
        ddim = DDIMScheduler(num_train_timesteps=n_train, beta_schedule=schedule)
        assert torch.equal(ddpm.alphas_cumprod, ddim.alphas_cumprod)
        tensors[f"schedule/{schedule}/N{n_train}/betas"] = ddpm.betas.clone()
        tensors[f"schedule/{schedule}/N{n_train}/alphas_cumprod"] = ddpm.alphas_cumprod.clone()


# --- timesteps after set_timesteps -------------------------------------------------------------
def timesteps_of(n_train, n, spacing, offset):
    ddpm = DDPMScheduler(num_train_timesteps=n_train, timestep_spacing=spacing, steps_offset=offset)
    ddim = DDIMScheduler(num_train_timesteps=n_train, timestep_spacing=spacing, steps_offset=offset)
    ddpm.set_timesteps(n)
    ddim.set_timesteps(n)
    assert torch.equal(ddpm.timesteps, ddim.timesteps)
    return ddpm.timesteps.numpy()


for spacing in ["linspace", "trailing", "leading"]:
    values, lengths = [], []
    for n in range(1, 101):
        ts = timesteps_of(100, n, spacing, 0)
        values.extend(ts.tolist())
        lengths.append(len(ts))
    tensors[f"timesteps_all/{spacing}/N100/values"] = i32(values)
    tensors[f"timesteps_all/{spacing}/N100/lengths"] = i32(lengths)

SELECTED = {100: [1, 2, 3, 7, 8, 10, 16, 50, 100], 1000: [1, 3, 10, 16, 50, 100, 333]}
for n_train, ns in SELECTED.items():
    for spacing in ["linspace", "trailing", "leading"]:
        for offset in [0, 1]:
            for n in ns:
                if spacing == "leading" and offset == 1 and n == n_train:
                    continue  # the last timestep would be n_train itself: not a valid index
                ts = timesteps_of(n_train, n, spacing, offset)
                tensors[f"timesteps/{spacing}/N{n_train}/n{n}/offset{offset}"] = i32(ts)


# --- single steps ------------------------------------------------------------------------------
gen = torch.Generator().manual_seed(20240601)


def randn(*shape, scale=1.0):
    return torch.randn(shape, generator=gen, dtype=torch.float32) * scale


def add_step_case(name, kind, kwargs, n_inference, eta=0.0, step_ts=None, out_scale=1.0):
    sched = (DDPMScheduler if kind == "ddpm" else DDIMScheduler)(**kwargs)
    if n_inference is not None:
        sched.set_timesteps(n_inference)
    ts = [int(t) for t in (step_ts if step_ts is not None else sched.timesteps)]
    rows = {k: [] for k in ["model_output", "sample", "noise", "prev_sample", "pred_original_sample"]}
    for t in ts:
        model_output = randn(*SHAPE, scale=out_scale)
        sample = randn(*SHAPE)
        noise_seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
        if kind == "ddpm":
            # DDPM draws its variance noise from the generator (only when t > 0): draw the
            # same numbers here to record them.
            noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(noise_seed))
            out = sched.step(model_output, t, sample, generator=torch.Generator().manual_seed(noise_seed))
            if t == 0:
                noise = torch.zeros(SHAPE)
        else:
            if eta > 0:
                noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(noise_seed))
                out = sched.step(model_output, t, sample, eta=eta, variance_noise=noise)
            else:
                noise = torch.zeros(SHAPE)
                out = sched.step(model_output, t, sample, eta=eta)
        rows["model_output"].append(model_output)
        rows["sample"].append(sample)
        rows["noise"].append(noise)
        rows["prev_sample"].append(out.prev_sample)
        rows["pred_original_sample"].append(out.pred_original_sample)
    tensors[f"step/{name}/timesteps"] = i32(ts)
    for key, value in rows.items():
        tensors[f"step/{name}/{key}"] = torch.stack(value).contiguous()
    cases.append(
        {
            "name": name,
            "scheduler": kind,
            "config": our_config(sched),
            "num_inference_steps": n_inference,
            "eta": eta,
        }
    )


DP = dict(num_train_timesteps=100, beta_schedule="squaredcos_cap_v2", clip_sample=True)
add_step_case("ddpm_eps_clip", "ddpm", DP, 10)
add_step_case("ddpm_eps_noclip", "ddpm", {**DP, "clip_sample": False}, 10)
add_step_case("ddpm_sample_clip", "ddpm", {**DP, "prediction_type": "sample"}, 10, out_scale=1.5)
add_step_case(
    "ddpm_sample_noclip", "ddpm", {**DP, "prediction_type": "sample", "clip_sample": False}, 10, out_scale=1.5
)
add_step_case("ddpm_eps_clip_range", "ddpm", {**DP, "clip_sample_range": 0.5}, 10)
add_step_case("ddpm_fixed_large", "ddpm", {**DP, "variance_type": "fixed_large"}, 10)
add_step_case("ddpm_fixed_small_log", "ddpm", {**DP, "variance_type": "fixed_small_log"}, 10)
add_step_case("ddpm_trailing", "ddpm", {**DP, "timestep_spacing": "trailing"}, 10)
add_step_case("ddpm_linspace", "ddpm", {**DP, "timestep_spacing": "linspace"}, 7)
add_step_case("ddpm_all_steps", "ddpm", DP, None, step_ts=[99, 98, 50, 1, 0])
add_step_case("ddpm_linear_1000", "ddpm", dict(num_train_timesteps=1000, beta_schedule="linear"), 10)
add_step_case(
    "ddpm_scaled_linear_offset",
    "ddpm",
    dict(num_train_timesteps=1000, beta_schedule="scaled_linear", steps_offset=1, clip_sample=False),
    10,
)
add_step_case("ddim_eps_clip", "ddim", DP, 10)
add_step_case("ddim_eps_clip_eta", "ddim", DP, 10, eta=0.5)
add_step_case("ddim_sample_noclip", "ddim", {**DP, "prediction_type": "sample", "clip_sample": False}, 10)
add_step_case("ddim_sample_clip_eta", "ddim", {**DP, "prediction_type": "sample"}, 10, eta=0.5, out_scale=1.5)
add_step_case("ddim_alpha_not_one", "ddim", {**DP, "set_alpha_to_one": False}, 10)
add_step_case("ddim_alpha_not_one_eta", "ddim", {**DP, "set_alpha_to_one": False}, 10, eta=0.5)
add_step_case("ddim_offset", "ddim", {**DP, "steps_offset": 1}, 10, eta=0.5)
add_step_case("ddim_trailing", "ddim", {**DP, "timestep_spacing": "trailing"}, 3, eta=0.5)
add_step_case("ddim_linspace", "ddim", {**DP, "timestep_spacing": "linspace"}, 7, eta=0.5)
add_step_case(
    "ddim_linear_1000", "ddim", dict(num_train_timesteps=1000, beta_schedule="linear", clip_sample=False), 16, eta=1.0
)


# --- full loops --------------------------------------------------------------------------------
def add_chain(name, kind, kwargs, n_inference, eta=0.0):
    sched = (DDPMScheduler if kind == "ddpm" else DDIMScheduler)(**kwargs)
    sched.set_timesteps(n_inference)
    x = randn(*SHAPE)
    x_t = x.clone()
    noises, prevs = [], []
    for t in sched.timesteps:
        t = int(t)
        eps = 0.5 * x
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
        noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed))
        if kind == "ddpm":
            x = sched.step(eps, t, x, generator=torch.Generator().manual_seed(seed)).prev_sample
            if t == 0:
                noise = torch.zeros(SHAPE)
        else:
            x = sched.step(eps, t, x, eta=eta, variance_noise=noise).prev_sample
        noises.append(noise)
        prevs.append(x)
    tensors[f"chain/{name}/x_t"] = x_t
    tensors[f"chain/{name}/noise"] = torch.stack(noises).contiguous()
    tensors[f"chain/{name}/prev_samples"] = torch.stack(prevs).contiguous()
    cases.append(
        {"name": name, "scheduler": kind, "config": our_config(sched), "num_inference_steps": n_inference, "eta": eta}
    )


add_chain("chain_ddpm", "ddpm", DP, 10)
add_chain("chain_ddim", "ddim", DP, 10, eta=0.5)


# --- add_noise ---------------------------------------------------------------------------------
def add_noise_case(name, kwargs, ts):
    sched = DDPMScheduler(**kwargs)
    x0 = randn(len(ts), *SHAPE[1:])
    noise = randn(len(ts), *SHAPE[1:])
    timesteps = torch.tensor(ts, dtype=torch.int64)
    tensors[f"add_noise/{name}/x0"] = x0
    tensors[f"add_noise/{name}/noise"] = noise
    tensors[f"add_noise/{name}/timesteps"] = i32(ts)
    tensors[f"add_noise/{name}/noisy"] = sched.add_noise(x0, noise, timesteps).contiguous()
    cases.append({"name": name, "scheduler": "ddpm", "config": our_config(sched), "num_inference_steps": None, "eta": 0.0})


add_noise_case("add_noise_dp", DP, [0, 17, 50, 99])
add_noise_case("add_noise_linear_1000", dict(num_train_timesteps=1000, beta_schedule="linear"), [0, 999, 500, 1])


# --- write -------------------------------------------------------------------------------------
OUT_TENSORS.parent.mkdir(parents=True, exist_ok=True)
save_file({k: v.contiguous() for k, v in sorted(tensors.items())}, str(OUT_TENSORS))
OUT_JSON.write_text(json.dumps({"generator": "tools/gen_scheduler_fixtures.py", "cases": cases}, indent=1) + "\n")
print(f"{len(tensors)} tensors, {OUT_TENSORS.stat().st_size} bytes; {len(cases)} cases")
