#!/usr/bin/env python3
"""Golden fixtures for the U-Net: LeRobot's own `DiffusionConditionalUnet1d`, run by PyTorch.

Writes, for each of two small networks (`unet` and `unet_noscale`):
  tests/fixtures/<name>_weights.safetensors  the state_dict under the prefix `diffusion.unet.`,
                                             saved by `safetensors.torch.save_file`, i.e. exactly
                                             the tensor names a LeRobot checkpoint uses;
  tests/fixtures/<name>_golden.safetensors   inputs and LeRobot's outputs:
      x_b3 (3,T,A) f32, t_b3 (3,) i64, cond_b3 (3,G) f32, out_b3 (3,T,A) f32,
      x_b1, t_b1, cond_b1, out_b1 (batch 1),
      x_t12, t_t12, cond_t12, out_t12 (B=2, horizon 12; `unet` only, see below).
`tests/unet_golden.rs` loads both with candle and compares to <= 1e-4 max abs error.

And, for `unet` only, gradients for training (`tests/unet_grad.rs`):
  tests/fixtures/unet_grads.safetensors
      x (3,T,A), t (3,) i64, cond (3,G), r (3,T,A): inputs and a fixed random weighting;
      loss () = sum(unet(x, t, cond) * r);
      grad.x, grad.cond: d loss / d input;
      grad.<parameter name>: d loss / d parameter for every parameter, under the state-dict
      names of `unet_weights.safetensors` (prefix `diffusion.unet.`).

Networks:
- `unet`:         down_dims (16,32,64), step embed 32, kernel 5, n_groups 8, FiLM scale+bias,
                  action dim 2, global cond 8, horizon 16 (LeRobot's default layout, scaled down).
- `unet_noscale`: down_dims (8,16), step embed 16, kernel 3, n_groups 4, FiLM bias only,
                  action dim 3, global cond 5, horizon 8.
Every parameter is perturbed away from PyTorch's default init (GroupNorm weight 1 / bias 0 would
not show a mix-up of the two). The `x_t12` case runs `unet` on a horizon of 12: divisible by
2^(levels-1) = 4, which is all the network needs, though LeRobot's config asks for 2^levels = 8.

Pinned: Python 3.11, torch 2.15 (CPU), lerobot 0.4.4 (the newest that runs on Python 3.11),
safetensors. Install (LeRobot without its heavy dependency closure; pip warns that lerobot 0.4.4
wants torch < 2.11, torch 2.15 works for the U-Net):
    python3.11 -m venv .cache/tools-venv
    .cache/tools-venv/bin/pip install torch==2.15.* diffusers safetensors numpy
    .cache/tools-venv/bin/pip install --no-deps lerobot==0.4.4
    .cache/tools-venv/bin/pip install draccus huggingface_hub datasets pillow torchvision \
        accelerate imageio pyserial deepdiff av einops
Run from the repository root:
    .cache/tools-venv/bin/python tools/gen_unet_fixtures.py
"""

from pathlib import Path

import torch
from safetensors.torch import save_file

from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig
from lerobot.policies.diffusion.modeling_diffusion import DiffusionConditionalUnet1d

OUT_DIR = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
PREFIX = "diffusion.unet."


def build(down_dims, step_dim, kernel, groups, film_scale, action_dim, cond_dim, horizon):
    """LeRobot's U-Net for a state-only policy (state + environment state = global cond)."""
    state_dim = 2
    cfg = DiffusionConfig(
        down_dims=down_dims,
        diffusion_step_embed_dim=step_dim,
        kernel_size=kernel,
        n_groups=groups,
        use_film_scale_modulation=film_scale,
        horizon=horizon,
        n_obs_steps=1,
        n_action_steps=horizon // 2,
        drop_n_last_frames=0,
        input_features={
            "observation.state": PolicyFeature(type=FeatureType.STATE, shape=(state_dim,)),
            "observation.environment_state": PolicyFeature(
                type=FeatureType.ENV, shape=(cond_dim - state_dim,)
            ),
        },
        output_features={"action": PolicyFeature(type=FeatureType.ACTION, shape=(action_dim,))},
    )
    unet = DiffusionConditionalUnet1d(cfg, global_cond_dim=cond_dim)
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if ".block.1." in name and name.endswith("weight"):  # GroupNorm scale
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            else:
                p.add_(0.05 * torch.randn_like(p))
    return unet.eval()


def case(unet, batch, horizon, action_dim, cond_dim, timesteps):
    x = torch.randn(batch, horizon, action_dim)
    t = torch.tensor(timesteps, dtype=torch.long)
    cond = torch.randn(batch, cond_dim)
    with torch.no_grad():
        out = unet(x, t, global_cond=cond)
    return x, t, cond, out


def write(name, unet, action_dim, cond_dim, horizon, extra_horizon=None):
    state = {PREFIX + k: v.detach().contiguous() for k, v in unet.state_dict().items()}
    save_file(state, str(OUT_DIR / f"{name}_weights.safetensors"))
    golden = {}
    cases = [("b3", 3, horizon, [0, 37, 99]), ("b1", 1, horizon, [12])]
    if extra_horizon is not None:
        cases.append((f"t{extra_horizon}", 2, extra_horizon, [5, 80]))
    for tag, batch, h, ts in cases:
        x, t, cond, out = case(unet, batch, h, action_dim, cond_dim, ts)
        golden.update({f"x_{tag}": x, f"t_{tag}": t, f"cond_{tag}": cond, f"out_{tag}": out})
    save_file({k: v.contiguous() for k, v in golden.items()}, str(OUT_DIR / f"{name}_golden.safetensors"))
    n_params = sum(p.numel() for p in unet.parameters())
    print(f"{name}: {len(state)} tensors, {n_params} parameters, out_b3 std {golden['out_b3'].std():.3f}")


def write_grads(unet, batch, horizon, action_dim, cond_dim):
    """Gradients of loss = sum(out * r) w.r.t. the inputs and every parameter, at batch 3."""
    x = torch.randn(batch, horizon, action_dim)
    t = torch.tensor([3, 51, 97], dtype=torch.long)
    cond = torch.randn(batch, cond_dim)
    r = torch.randn(batch, horizon, action_dim)
    xg = x.clone().requires_grad_(True)
    cg = cond.clone().requires_grad_(True)
    unet.zero_grad()
    loss = (unet(xg, t, global_cond=cg) * r).sum()
    loss.backward()
    tensors = {"x": x, "t": t, "cond": cond, "r": r, "loss": loss.detach(),
               "grad.x": xg.grad, "grad.cond": cg.grad}
    for name, p in unet.named_parameters():
        tensors["grad." + PREFIX + name] = p.grad
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(OUT_DIR / "unet_grads.safetensors"))
    biggest = max(v.abs().max().item() for k, v in tensors.items() if k.startswith("grad."))
    print(f"unet grads: loss {loss.item():.4f}, {len(tensors) - 5} gradients, max |grad| {biggest:.3f}")


def main():
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(7)
    unet = build((16, 32, 64), 32, 5, 8, True, action_dim=2, cond_dim=8, horizon=16)
    write("unet", unet, action_dim=2, cond_dim=8, horizon=16, extra_horizon=12)
    torch.manual_seed(13)
    write_grads(unet, batch=3, horizon=16, action_dim=2, cond_dim=8)
    torch.manual_seed(11)
    unet = build((8, 16), 16, 3, 4, False, action_dim=3, cond_dim=5, horizon=8)
    write("unet_noscale", unet, action_dim=3, cond_dim=5, horizon=8)


if __name__ == "__main__":
    main()
