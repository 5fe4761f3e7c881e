"""The reference stage's settings: which inputs, how the teacher samples them, what is stored, which components.

Pydantic only (recipe parsing imports it); `compress.stages.reference.ReferenceStage` inherits them, and
`compress.reference.ReferenceArtifact` reads them back from a finished artifact's manifest.
"""

from __future__ import annotations

import math
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from compress.pipelines.sampling import UPSTREAM, Sampler, SamplingConfig

#: the built-in synthetic talking-face sets (`compress.data.synthetic.BUILTIN_SETS`), built into the artifact's
#: INPUTS_DIR folder: the quickstart's training set, and a held-out one sharing no sentence, face, voice or seed with it
#: (also with a pause in each sentence: heldout-paused)
BUILTIN, BUILTIN_HELDOUT = "builtin:quickstart", "builtin:heldout"
BUILTINS = (BUILTIN, BUILTIN_HELDOUT, "builtin:heldout-paused")
BUILTIN_CLIPS = 4
INPUTS_DIR = "inputs"


class ReferenceConfig(BaseModel):
    """Teacher generation over an input set: sampling, stored outputs and component folders."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    inputs: str = Field(default=BUILTIN, description=f"an inputs YAML/CSV file, or a built-in set: "
                                                     f"{', '.join(BUILTINS)}")
    sampler: Sampler = Field(default="unipc", description="unipc (upstream, CFG) or euler (LiveAvatar's few-step "
                                                          "sampler, e.g. 4 steps with guidance_scale 0)")
    num_inference_steps: int = Field(default=UPSTREAM.num_inference_steps, ge=1)
    guidance_scale: float = Field(default=UPSTREAM.guidance_scale, ge=0)
    shift: float = Field(default=3.0, gt=0)
    frames: int = Field(default=80, gt=0, description="frames per clip (a multiple of 4); clips follow the audio")
    size: str = Field(default="480*832", description="output area W*H; sides follow the image, multiples of "
                                                     "size_multiple")
    size_multiple: int = Field(default=64, ge=16, multiple_of=16,
                               description="of the output sides: 64 as upstream; 16 the least the model takes "
                                           "(e.g. 32 for the demo teacher's 96*96)")
    max_clips: int | None = Field(default=None, ge=1, description=f"use the first N inputs (builtin: N, default "
                                                                  f"{BUILTIN_CLIPS})")
    block_outputs: list[int] = Field(default_factory=list, description="DiT blocks whose outputs are stored")
    block_output_steps: list[int] | None = Field(default=None, description="sampling steps to store them at; "
                                                                           "default all")
    vae: str | None = Field(default=None, description="VAE folder (diffusers layout); none for preset models")
    text_encoder: str | None = Field(default=None, description="umT5 folder (transformers layout, + tokenizer)")
    audio_encoder: str | None = Field(default=None, description="wav2vec2 folder (transformers layout)")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="auto", description="DiT and text encoder dtype; auto keeps the stored one")
    offload_text_encoder: bool = Field(default=False, description="keep the text encoder on the CPU")

    @field_validator("frames")
    @classmethod
    def _frames_multiple_of_4(cls, value: int) -> int:
        if value % 4:
            raise ValueError("a multiple of 4 (each clip is frames / 4 latent frames)")
        return value

    @field_validator("inputs")
    @classmethod
    def _known_builtin(cls, value: str) -> str:
        if value.startswith("builtin:") and value not in BUILTINS:
            raise ValueError(f"unknown built-in set; known: {', '.join(BUILTINS)}")
        return value

    @field_validator("size")
    @classmethod
    def _area(cls, value: str) -> str:
        if not re.fullmatch(r"[1-9]\d*\*[1-9]\d*", value):
            raise ValueError("an area written as WIDTH*HEIGHT, e.g. '480*832'")
        return value

    @field_validator("block_outputs", "block_output_steps")
    @classmethod
    def _indices(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and (any(i < 0 for i in value) or len(set(value)) != len(value)):
            raise ValueError("distinct non-negative indices")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ReferenceConfig:
        if self.block_output_steps and max(self.block_output_steps) >= self.num_inference_steps:
            raise ValueError("block_output_steps must be below num_inference_steps")
        if not self.preset_components and None in self.component_dirs().values():
            raise ValueError("give all of vae, text_encoder and audio_encoder, or none (preset models)")
        return self

    @classmethod
    def from_stage_config(cls, settings: dict) -> ReferenceConfig:
        """The settings among a stage's configuration (a manifest's `stage_config`: kind, name, input... dropped)."""
        return cls.model_validate({k: v for k, v in settings.items() if k in cls.model_fields})

    @property
    def sampling(self) -> SamplingConfig:
        return SamplingConfig(**{k: getattr(self, k) for k in SamplingConfig.model_fields})

    def with_sampling(self, sampling: SamplingConfig) -> ReferenceConfig:
        """These settings sampled as `sampling` says; no block outputs are captured (their steps may not exist)."""
        if sampling == self.sampling:
            return self
        return self.model_copy(update={**sampling.model_dump(), "block_outputs": [], "block_output_steps": None})

    @property
    def builtin(self) -> bool:
        return self.inputs in BUILTINS

    @property
    def builtin_set(self) -> str | None:
        """The built-in set's name (a `compress.data.synthetic.BUILTIN_SETS` key), or None for an input file."""
        return self.inputs.removeprefix("builtin:") if self.builtin else None

    @property
    def max_area(self) -> int:
        return math.prod(int(v) for v in self.size.split("*"))

    def component_dirs(self) -> dict[str, str | None]:
        """{part: folder as written} of the VAE, text encoder and audio encoder; all None for preset teachers."""
        return {"vae": self.vae, "text_encoder": self.text_encoder, "audio_encoder": self.audio_encoder}

    @property
    def preset_components(self) -> bool:
        """Whether the components are a preset teacher's own (no folders given)."""
        return all(v is None for v in self.component_dirs().values())
