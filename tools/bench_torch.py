#!/usr/bin/env python3
"""PyTorch side of `dplan bench`: the same network, weights and planning call, timed on the CPU.

The network is LeRobot 0.4.4's own `DiffusionConditionalUnet1d` (plus an `nn.Embedding` for the
mode label, concatenated after the observation condition as `src/model/denoiser.rs` does), with the
weights `dplan bench` wrote (LeRobot's state-dict names under `diffusion.unet.`, and
`mode_embedding.weight`); the sampler is diffusers' `DDIMScheduler` with Diffusion Policy's
settings (100 training steps, squaredcos_cap_v2, clip_sample, epsilon prediction).

Measured on 1 and 2 threads (`torch.set_num_threads`), in `torch.inference_mode()`:
  forward:     one U-Net forward at each batch size, p50 ms;
  plan:        one planning call: K candidates, DDIM steps, no mode request (null label), the
               last 4 predicted x0 kept and their variance computed, p50 / p99 ms;
  plan_guided: the same with a mode request under classifier-free guidance (batch 2K).
Each measurement stops early (after at least 10 calls) once it has taken 60 s.
Prints one JSON object on stdout, progress on stderr.

Usage (dplan bench runs it):
    python tools/bench_torch.py --weights W.safetensors --config '{"down_dims": [32, 64, 128], ...}'
Needs torch, diffusers, safetensors and lerobot 0.4.4 (see tools/gen_unet_fixtures.py for the
install).
"""

import argparse
import json
import math
import sys
import time

import torch
from safetensors.torch import load_file

PREFIX = "diffusion.unet."


def build(cfg):
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig
    from lerobot.policies.diffusion.modeling_diffusion import DiffusionConditionalUnet1d

    cond_dim = cfg["cond_dim"] + cfg["mode_embed_dim"]
    state_dim = 2
    dc = DiffusionConfig(
        down_dims=tuple(cfg["down_dims"]),
        diffusion_step_embed_dim=cfg["diffusion_step_embed_dim"],
        kernel_size=cfg["kernel_size"],
        n_groups=cfg["n_groups"],
        use_film_scale_modulation=cfg["use_film_scale_modulation"],
        horizon=cfg["horizon"],
        n_obs_steps=1,
        n_action_steps=cfg["horizon"] // 2,
        drop_n_last_frames=0,
        input_features={
            "observation.state": PolicyFeature(type=FeatureType.STATE, shape=(state_dim,)),
            "observation.environment_state": PolicyFeature(
                type=FeatureType.ENV, shape=(cond_dim - state_dim,)
            ),
        },
        output_features={
            "action": PolicyFeature(type=FeatureType.ACTION, shape=(cfg["action_dim"],))
        },
    )
    return DiffusionConditionalUnet1d(dc, global_cond_dim=cond_dim)


def load(cfg, weights):
    tensors = load_file(weights)
    unet = build(cfg)
    unet.load_state_dict({k[len(PREFIX):]: v for k, v in tensors.items() if k.startswith(PREFIX)})
    emb_w = tensors["mode_embedding.weight"]
    emb = torch.nn.Embedding(emb_w.shape[0], emb_w.shape[1])
    emb.load_state_dict({"weight": emb_w})
    return unet.eval(), emb.eval()


def scheduler(steps):
    from diffusers import DDIMScheduler

    s = DDIMScheduler(
        num_train_timesteps=100,
        beta_schedule="squaredcos_cap_v2",
        clip_sample=True,
        clip_sample_range=1.0,
        set_alpha_to_one=True,
        steps_offset=0,
        prediction_type="epsilon",
    )
    s.set_timesteps(steps)
    return s


def percentiles(ms):
    """p50 and p99 by nearest rank, as dplan bench computes them."""
    ms = sorted(ms)

    def rank(q):
        return ms[min(len(ms), max(1, math.ceil(q * len(ms)))) - 1]

    return {"ms_p50": rank(0.5), "ms_p99": rank(0.99)}


def time_ms(fn, iterations, budget_s=60.0):
    """`iterations` timed calls after two warm-up calls, fewer (at least 10) if they take more
    than `budget_s` in all (a loaded machine can make PyTorch's threads very slow)."""
    for _ in range(2):
        fn()
    out = []
    begin = time.perf_counter()
    for _ in range(iterations):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1e3)
        if len(out) >= 10 and time.perf_counter() - begin > budget_s:
            break
    return out


def plan_call(unet, emb, sched, cfg, cond, label, generator):
    k, t_len, d = cfg["candidates"], cfg["horizon"], cfg["action_dim"]
    null = emb.num_embeddings - 1
    x = torch.randn((k, t_len, d), generator=generator)
    if label is None:
        gc = torch.cat([cond.expand(k, -1), emb(torch.full((k,), null, dtype=torch.long))], 1)
    else:
        labels = torch.cat([torch.full((k,), label), torch.full((k,), null)]).long()
        gc = torch.cat([cond.expand(2 * k, -1), emb(labels)], 1)
    history = []
    for t in sched.timesteps:
        if label is None:
            out = unet(x, torch.full((k,), int(t), dtype=torch.long), global_cond=gc)
        else:
            both = unet(torch.cat([x, x]), torch.full((2 * k,), int(t), dtype=torch.long), global_cond=gc)
            out_l, out_null = both[:k], both[k:]
            out = out_null + cfg["guidance_scale"] * (out_l - out_null)
        step = sched.step(out, t, x, eta=0.0, generator=generator)
        history.append(step.pred_original_sample)
        x = step.prev_sample
    last = torch.stack(history[-4:])
    return x, last.var(dim=0, unbiased=False).mean(dim=(1, 2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", required=True)
    ap.add_argument("--config", required=True, help="JSON: network sizes and iteration counts")
    args = ap.parse_args()
    cfg = json.loads(args.config)
    unet, emb = load(cfg, args.weights)
    sched = scheduler(cfg["ddim_steps"])
    g = torch.Generator().manual_seed(0)
    cond = torch.randn((1, cfg["cond_dim"]), generator=g)
    report = {"torch_version": torch.__version__, "forward": [], "plan": [], "plan_guided": []}
    try:
        import lerobot

        report["lerobot_version"] = getattr(lerobot, "__version__", "unknown")
    except ImportError:
        pass
    with torch.inference_mode():
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for b in cfg["batches"]:
                x = torch.randn((b, cfg["horizon"], cfg["action_dim"]), generator=g)
                t = torch.full((b,), 50, dtype=torch.long)
                gc = torch.randn((b, cfg["cond_dim"] + cfg["mode_embed_dim"]), generator=g)
                ms = time_ms(lambda: unet(x, t, global_cond=gc), cfg["forward_iterations"])
                report["forward"].append({"batch": b, "threads": threads, "iterations": len(ms), **percentiles(ms)})
                print(f"torch forward B={b}, {threads} thread(s): {percentiles(ms)['ms_p50']:.3f} ms", file=sys.stderr)
            for key, label in (("plan", None), ("plan_guided", 0)):
                ms = time_ms(lambda: plan_call(unet, emb, sched, cfg, cond, label, g), cfg["plan_iterations"])
                report[key].append({"threads": threads, "iterations": len(ms), **percentiles(ms)})
                print(f"torch {key}, {threads} thread(s): {percentiles(ms)['ms_p50']:.1f} ms", file=sys.stderr)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
