"""The two ways the S2V pipeline samples a clip, and the sampling settings a model is generated with.

- `unipc` (upstream Wan2.2-S2V): UniPC over upstream's flow sigmas, `num_inference_steps` 40, classifier-free
  guidance (two DiT forwards per step);
- `euler` (LiveAvatar's distilled sampler): diffusers' flow-matching Euler with its own timesteps for N steps
  (shift 3, 4 steps: t = 1000, 858, 602, 9), no guidance (one forward per step). A few-step (DMD) generator is
  trained on exactly these sigmas, so it must be sampled with them.

A model that carries its own sampler says so in its artifact's manifest (`"sampling": {"sampler": "euler",
"num_inference_steps": 4, "guidance_scale": 0.0, "shift": 3.0}`, read by `artifact_sampling`); evaluation then
generates it that way instead of with the reference's settings. Importing this module loads neither torch nor
diffusers (recipe validation imports the settings).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from compress.errors import UserInputError
from compress.utils.problems import problems_from

if TYPE_CHECKING:
    import torch

Sampler = Literal["unipc", "euler"]
SAMPLERS = get_args(Sampler)
MANIFEST_KEY = "sampling"


class SamplingOverride(BaseModel):
    """Sampling settings to change (None: keep the one sampled with otherwise)."""

    model_config = ConfigDict(extra="forbid")

    sampler: Sampler | None = Field(default=None, description="unipc (upstream) or euler (LiveAvatar's few-step)")
    num_inference_steps: int | None = Field(default=None, ge=1)
    guidance_scale: float | None = Field(default=None, ge=0, description="> 1: classifier-free guidance (two DiT "
                                                                         "forwards per step); 0 or 1: one")
    shift: float | None = Field(default=None, gt=0)

    def given(self) -> dict:
        return self.model_dump(exclude_none=True)


class SamplingConfig(BaseModel):
    """How a clip is sampled: sampler, steps, guidance and the noise schedule's shift."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sampler: Sampler = "unipc"
    num_inference_steps: int = Field(ge=1)
    guidance_scale: float = Field(ge=0)
    shift: float = Field(default=3.0, gt=0)

    @property
    def dit_forwards(self) -> int:
        return dit_forwards(self.num_inference_steps, self.guidance_scale)

    @property
    def cfg(self) -> bool:
        return self.guidance_scale > 1

    def overridden(self, override: SamplingOverride | None) -> SamplingConfig:
        return self if override is None else self.model_copy(update=override.given())

    def describe(self) -> str:
        return (f"{self.sampler} {self.num_inference_steps} steps, guidance {self.guidance_scale:g} "
                f"({self.dit_forwards} DiT forwards per clip)")


#: Wan2.2-S2V's own sampling (its generate.py defaults): 40 UniPC steps with classifier-free guidance 4.5
UPSTREAM = SamplingConfig(num_inference_steps=40, guidance_scale=4.5)


def artifact_sampling(manifest: dict, name: str) -> SamplingConfig | None:
    """The sampling an artifact's manifest carries (its `sampling` key), validated; None when it carries none.
    `name` (the artifact's name or path) leads every error."""
    data = manifest.get(MANIFEST_KEY)
    if data is None:
        return None
    if not isinstance(data, dict):
        fields = ", ".join(SamplingConfig.model_fields)
        raise UserInputError(f"artifact {name}: manifest '{MANIFEST_KEY}' must be a mapping of {fields}; "
                             f"found {data!r}")
    try:
        return SamplingConfig.model_validate(data)
    except ValidationError as err:
        lines = problems_from(err, data, SamplingConfig, prefix=MANIFEST_KEY)
        raise UserInputError(f"artifact {name}: invalid manifest sampling:\n" + "\n".join(
            f"  - {line}" for line in lines)) from None


def euler_sigmas(num_inference_steps: int, shift: float = 3.0) -> torch.Tensor:
    """[steps + 1] noise levels of LiveAvatar's Euler sampler, from 1 down to a final 0."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    from .components import NUM_TRAIN_TIMESTEPS

    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=NUM_TRAIN_TIMESTEPS, shift=shift)
    scheduler.set_timesteps(num_inference_steps)
    return scheduler.sigmas.float()


def guided(unconditional: torch.Tensor, conditional: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance: uncond + scale (cond - uncond)."""
    return unconditional + scale * (conditional - unconditional)


def euler_step(x: torch.Tensor, velocity: torch.Tensor, sigma, sigma_next) -> torch.Tensor:
    """One flow-matching Euler step from noise level `sigma` to `sigma_next`."""
    return x + (sigma_next - sigma) * velocity


def shifted_sigma(u: float, shift: float) -> float:
    """The noise level the samplers' `shift` makes of u in [0, 1]: shift u / (1 + (shift - 1) u)."""
    return shift * u / (1 + (shift - 1) * u)


def dit_forwards(num_inference_steps: int, guidance_scale: float) -> int:
    """DiT forwards per clip: one per step, two with classifier-free guidance (scale > 1)."""
    return num_inference_steps * (2 if guidance_scale > 1 else 1)
