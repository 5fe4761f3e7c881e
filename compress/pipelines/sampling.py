"""The two ways the S2V pipeline samples a clip.

- `unipc` (upstream Wan2.2-S2V): UniPC over upstream's flow sigmas, `num_inference_steps` 40, classifier-free
  guidance (two DiT forwards per step);
- `euler` (LiveAvatar's distilled sampler): diffusers' flow-matching Euler with its own timesteps for N steps
  (shift 3, 4 steps: t = 1000, 858, 602, 9), no guidance (one forward per step). A few-step (DMD) generator is
  trained on exactly these sigmas, so it must be sampled with them.
"""

from __future__ import annotations

import torch

from .components import NUM_TRAIN_TIMESTEPS

SAMPLERS = ("unipc", "euler")


def euler_sigmas(num_inference_steps: int, shift: float = 3.0) -> torch.Tensor:
    """[steps + 1] noise levels of LiveAvatar's Euler sampler, from 1 down to a final 0."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=NUM_TRAIN_TIMESTEPS, shift=shift)
    scheduler.set_timesteps(num_inference_steps)
    return scheduler.sigmas.float()


def dit_forwards(num_inference_steps: int, guidance_scale: float) -> int:
    """DiT forwards per clip: one per step, two with classifier-free guidance (scale > 1)."""
    return num_inference_steps * (2 if guidance_scale > 1 else 1)
