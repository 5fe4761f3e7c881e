"""Distribution matching distillation (DMD2) of the S2V DiT into a few-step generator: the pieces.

Three networks over one conditioning (text, audio, reference and motion latents, as the reference stored them):
- the generator: LoRA adapters on the input model, sampling in K flow-matching Euler steps on LiveAvatar's sigmas
  (`euler_sigmas(K, shift)`) from noise, without guidance;
- the real score: the frozen teacher with classifier-free guidance (drops text and audio together, as the pipeline);
- the fake score: LoRA adapters on the same teacher (disabled for the real pass, so both share one base), zero at
  the start (fake == teacher), trained with the flow-matching loss on the generator's detached samples.

The generator's loss (DMD2 / Self-Forcing's `compute_distribution_matching_loss`): its sample x0, noised to
sigma ~ U(t_min, t_max) (shifted), is denoised by both scores; grad = (x0_fake - x0_real) / mean|x0 - x0_real|,
loss = 0.5 mse(x0, stopgrad(x0 - grad)), whose gradient with respect to x0 is `grad`.
The training loop is `compress.distill.dmd_training`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from compress.distill.lora_adapters import adapters_disabled
from compress.pipelines.components import NUM_TRAIN_TIMESTEPS
from compress.pipelines.s2v import clip_noise
from compress.pipelines.sampling import euler_step, guided, shifted_sigma
from compress.reference.samples import clip_conditioning, latent_clips, unconditional
from compress.utils.arrays import decode_tensor


@dataclass
class ClipConditioning:
    """One clip's DiT conditioning, CFG's negative (`uncond`: negative prompt, silent audio), its latent shape, and
    for a reference clip the teacher's noise seed and denoised latents (the ODE pair)."""

    cond: dict
    uncond: dict
    shape: tuple[int, ...]
    seed: int | None = None
    target: torch.Tensor | None = None

    def to(self, device) -> ClipConditioning:
        target = self.target.to(device) if self.target is not None else None
        return ClipConditioning(_to(self.cond, device), _to(self.uncond, device), self.shape, self.seed, target)

    def noise(self) -> torch.Tensor:
        """The teacher's initial noise of this clip (`clip_noise(seed + clip)`, as the reference generated it)."""
        return clip_noise(self.seed, self.shape)


def _to(kwargs: dict, device) -> dict:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}


def reference_conditionings(rows, device=None) -> list[ClipConditioning]:
    """Every clip of the reference `rows`, in order."""
    clips = []
    for row, clip in latent_clips(rows):
        cond = clip_conditioning(row, clip)
        uncond = unconditional(cond, row)
        target = decode_tensor(row, "latents")[clip : clip + 1].float()
        clips.append(ClipConditioning(cond, uncond, tuple(target.shape), row["seed"] + clip, target).to(device))
    return clips


def velocity(model: nn.Module, x: torch.Tensor, sigma: float, cond: dict) -> torch.Tensor:
    """The model's flow-matching velocity (noise - clean) at noise level `sigma`."""
    timestep = torch.full((x.shape[0],), sigma * NUM_TRAIN_TIMESTEPS, device=x.device)
    return model(hidden_states=x, timestep=timestep, **cond).sample.float()


def predict_x0(model: nn.Module, x: torch.Tensor, sigma: float, cond: dict) -> torch.Tensor:
    return x - sigma * velocity(model, x, sigma, cond)


def guided_x0(model: nn.Module, x: torch.Tensor, sigma: float, clip: ClipConditioning, scale: float) -> torch.Tensor:
    """x0 from the guided velocity uncond + scale (cond - uncond), as the pipeline guides (scale <= 1: cond only)."""
    v = velocity(model, x, sigma, clip.cond)
    if scale > 1:
        v_uncond = velocity(model, x, sigma, clip.uncond)
        v = guided(v_uncond, v, scale)
    return x - sigma * v


def rollout(model: nn.Module, noise: torch.Tensor, cond: dict, sigmas: torch.Tensor, exit_step: int | None = None,
            grad_model: nn.Module | None = None) -> torch.Tensor:
    """The generator's sample: flow-matching Euler from `noise` over `sigmas` ([K + 1], 1 down to 0), without
    guidance, stopped at `exit_step` (default the last, K - 1) whose x0 prediction it returns (at the last step
    this is the Euler sample). Only the exit step's forward records a graph, through `grad_model` (e.g. the DDP
    wrapper of `model`) when given; the earlier steps run without grad."""
    last = len(sigmas) - 2 if exit_step is None else exit_step
    x = noise
    for step in range(last):
        with torch.no_grad():
            v = velocity(model, x, float(sigmas[step]), cond)
        x = euler_step(x, v, sigmas[step], sigmas[step + 1])
    return predict_x0(grad_model or model, x, float(sigmas[last]), cond)


def noised(x0: torch.Tensor, sigma: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_sigma, noise): `x0` noised to level `sigma` along the flow-matching path."""
    noise = torch.randn(x0.shape, generator=generator).to(x0.device)
    return (1 - sigma) * x0 + sigma * noise, noise


def sample_sigma(generator: torch.Generator, t_min: float, t_max: float, shift: float) -> float:
    """A training noise level: u ~ U(t_min, t_max), shifted as the sampler shifts (shift u / (1 + (shift - 1) u))."""
    u = t_min + (t_max - t_min) * float(torch.rand((), generator=generator))
    return shifted_sigma(u, shift)


def dmd_loss(x0: torch.Tensor, clip: ClipConditioning, sigma: float, scores: nn.Module, real_guidance: float,
             generator: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
    """The distribution matching loss of the generator's sample `x0` (with graph) at noise level `sigma`: the
    fake score is `scores` with its adapters, the real score `scores` without them, guided by `real_guidance`."""
    with torch.no_grad():
        x_t, _ = noised(x0.detach(), sigma, generator)
        x0_fake = predict_x0(scores, x_t, sigma, clip.cond)
        with adapters_disabled(scores):
            x0_real = guided_x0(scores, x_t, sigma, clip, real_guidance)
        dims = tuple(range(1, x0.dim()))
        normalizer = (x0.detach() - x0_real).abs().mean(dim=dims, keepdim=True)
        grad = torch.nan_to_num((x0_fake - x0_real) / normalizer)
    loss = 0.5 * F.mse_loss(x0.double(), (x0.double() - grad.double()).detach())
    return loss.float(), {"dmd_grad_norm": float(grad.norm()), "dmd_sigma": sigma}


def fake_score_loss(fake: nn.Module, x0: torch.Tensor, clip: ClipConditioning, sigma: float,
                    generator: torch.Generator) -> torch.Tensor:
    """Flow-matching loss of the fake score on the generator's (detached) sample `x0` at noise level `sigma`."""
    x_t, noise = noised(x0.detach(), sigma, generator)
    return F.mse_loss(velocity(fake, x_t, sigma, clip.cond), noise - x0.detach())


def regression_loss(x0: torch.Tensor, clip: ClipConditioning) -> torch.Tensor:
    """MSE of the generator's x0 prediction from the teacher's own noise against the teacher's latents."""
    return F.mse_loss(x0, clip.target)
