"""`reference`: run the teacher over an input set and store what distillation and evaluation need.

The artifact holds `dataset/` (a Hugging Face `datasets` table, `compress.pipelines.load_reference_dataset`),
one row per input in input order. Arrays are bytes + shape + dtype columns
(`compress.pipelines.decode_array(row, name)`): `frames` uint8 [T, H, W, 3], `latents` [clips, 16, F, h, w]
(denoised), `ref_latents` [16, 1, h, w], `motion_latents` [clips, 16, 19, h, w] (clip 0's are unused zeros),
`audio` (16 kHz waveform), `audio_features` [25, audio_dim, clips * frames], `text_embeds` and
`negative_text_embeds` [L, text_dim], and `block_<i>` [clips, steps, noisy tokens, dim] for `block_outputs`
(conditional pass). Clip k's initial noise is `compress.pipelines.s2v.clip_noise(seed + k, latents[k].shape)`.
With `inputs: builtin:quickstart` the built-in synthetic talking-face set is built into `inputs/` first.

Running the 14B teacher on N GPUs
---------------------------------
Every torchrun rank loads a full replica of the teacher and generates the inputs i with i % N == rank; rank 0
merges the shards. A recipe for the release (official folder layout; the VAE and umT5 in diffusers layout,
e.g. the `vae/`, `text_encoder/` and `tokenizer/` folders of Wan-AI/Wan2.1-T2V-14B-Diffusers)::

    model: /models/Wan2.2-S2V-14B
    output: runs/teacher
    device: cuda
    roots: [/models, /data]
    stages:
      - kind: reference
        inputs: /data/talking/inputs.yaml
        size: "480*832"
        dtype: bfloat16
        offload_text_encoder: true
        vae: /models/Wan2.1-T2V-14B-Diffusers/vae
        text_encoder: /models/Wan2.1-T2V-14B-Diffusers/text_encoder
        audio_encoder: /models/Wan2.2-S2V-14B/wav2vec2-large-xlsr-53-english

    torchrun --no-python --nproc_per_node 8 compress run teacher.yaml

Memory per GPU in bf16: the DiT's weights (30.4 GiB) plus 9.7 GiB of activations for an 80-frame 480x832
clip (simulated upstream forward), the VAE and wav2vec2 (~1.5 GB) and the VAE's decode workspace: an 80 GB card. `offload_text_encoder` keeps umT5-XXL (11.4 GB) in host
RAM; it only runs once per prompt. For 24-48 GB cards use FP8 weights (~16.4 GB for the DiT): run a
`quantize` stage with `scheme: fp8_weight_only` before this one, or point `model:` at such an artifact;
the references then come from the FP8 teacher, which the artifact's lineage records. Each rank also needs
host RAM for its own copy while loading. A finished run is resumed as a whole; changing the input file,
any file it lists or the component folders reruns the stage.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import time
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from compress.artifacts.hashing import fingerprint_dir
from compress.errors import UserInputError
from compress.pipelines.inputs import InputClip, input_set_fingerprint, read_input_set
from compress.stages.base import Stage
from compress.utils.paths import looks_like_path

BUILTIN = "builtin:quickstart"
BUILTIN_CLIPS = 4


class ReferenceStage(Stage):
    """Teacher generations over an input set, stored as a dataset."""

    kind = "reference"
    key_metrics = ("inputs", "clips", "wall_s_per_clip")
    summary = "run the teacher over an input set; store latents, frames, audio and text features"
    produces_model = False
    distributed = True

    inputs: str = Field(default=BUILTIN, description=f"an inputs YAML/CSV file, or '{BUILTIN}'")
    num_inference_steps: int = Field(default=40, ge=1)
    guidance_scale: float = Field(default=4.5, ge=0)
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
    def _consistent(self) -> "ReferenceStage":
        if self.block_output_steps and max(self.block_output_steps) >= self.num_inference_steps:
            raise ValueError("block_output_steps must be below num_inference_steps")
        if len({v is None for v in self._component_dirs().values()}) > 1:
            raise ValueError("give all of vae, text_encoder and audio_encoder, or none (preset models)")
        return self

    @property
    def max_area(self) -> int:
        return math.prod(int(v) for v in self.size.split("*"))

    def _component_dirs(self) -> dict[str, str | None]:
        return {"vae": self.vae, "text_encoder": self.text_encoder, "audio_encoder": self.audio_encoder}

    def data_fingerprint(self, ctx) -> dict:
        components = {k: fingerprint_dir(ctx.resolve_path(v)) for k, v in self._component_dirs().items() if v}
        if self.inputs == BUILTIN:
            from compress.data import espeak_available

            return {"inputs": {"builtin": self.inputs, "espeak": espeak_available()}, "components": components}
        path = ctx.resolve_path(self.inputs)
        return {"inputs": input_set_fingerprint(path, self._read(path, ctx)), "components": components}

    def _read(self, path: Path, ctx) -> list[InputClip]:
        clips = read_input_set(path, resolve=lambda p: ctx.resolve_path(str(p)))
        return clips[: self.max_clips]

    def _inputs(self, out, ctx) -> list[InputClip]:
        if self.inputs != BUILTIN:
            return self._read(ctx.resolve_path(self.inputs), ctx)
        from compress.data import build_synthetic_set

        # every rank builds its own copy (same arguments, same bytes); rank 0's is kept in the artifact
        folder = out.path / ("inputs" if ctx.rank == 0 else f"shards/rank-{ctx.rank}/inputs")
        side = max(self.size_multiple, math.isqrt(self.max_area) // self.size_multiple * self.size_multiple)
        path = build_synthetic_set(folder, num_clips=self.max_clips or BUILTIN_CLIPS, size=side, frames=self.frames,
                                   seed=ctx.seed)
        return self._read(path, ctx)

    def _dtype(self):
        import torch

        return None if self.dtype == "auto" else getattr(torch, self.dtype)

    def _components(self, dit, ctx):
        from compress.pipelines.components import S2VComponents

        dirs = self._component_dirs()
        if all(v is None for v in dirs.values()):
            components = S2VComponents.tiny(dit=dit, seed=ctx.seed)
        else:
            components = S2VComponents.from_dirs(dit, *(ctx.resolve_path(v) for v in dirs.values()),
                                                 torch_dtype=self._dtype())
        return components.to(ctx.device, offload_text_encoder=self.offload_text_encoder)

    def _generate(self, pipe, clip, seed: int, audio):
        return pipe(clip.image, audio, clip.prompt, clip.negative_prompt, num_inference_steps=self.num_inference_steps,
                    guidance_scale=self.guidance_scale, shift=self.shift, max_area=self.max_area,
                    size_multiple=self.size_multiple, frames_per_clip=self.frames, seed=seed,
                    capture_blocks=tuple(self.block_outputs), capture_steps=self.block_output_steps)

    def regenerate(self, reference, dit, ctx, count: int = 1) -> list[tuple]:
        """(stored latents, latents generated by `dit`) for the first `count` inputs of this stage's finished
        artifact `reference`: the same inputs, seeds, components and settings, another DiT."""
        import torch

        from compress.pipelines.audio import load_audio
        from compress.pipelines.dataset import decode_array, load_reference_dataset
        from compress.pipelines.s2v import S2VPipeline

        path = reference.path / "inputs" / "inputs.yaml" if self.inputs == BUILTIN else ctx.resolve_path(self.inputs)
        pipe = S2VPipeline(self._components(dit, ctx))
        pairs = []
        for clip, row in zip(self._read(path, ctx)[:count], load_reference_dataset(reference)):
            result = self._generate(pipe, clip, row["seed"], load_audio(clip.audio))
            pairs.append((torch.from_numpy(decode_array(row, "latents").copy()), result.latents))
        return pairs

    def run(self, source, out, ctx) -> dict:
        from compress.pipelines.audio import load_audio
        from compress.pipelines.dataset import reference_features, reference_row, save_rows
        from compress.pipelines.s2v import FPS, S2VPipeline

        if all(v is None for v in self._component_dirs().values()) and looks_like_path(ctx.recipe.model, ctx.root):
            raise UserInputError("reference: the model is not a preset, so its vae, text_encoder and "
                                 "audio_encoder folders must be given")
        shard = out.path / "shards" / f"rank-{ctx.rank}"
        try:
            pipe = S2VPipeline(self._components(source.load_model(device=ctx.device, torch_dtype=self._dtype()), ctx))
            if any(b >= len(pipe.components.dit.blocks) for b in self.block_outputs):
                raise UserInputError(f"reference: block_outputs must be below {len(pipe.components.dit.blocks)}")
            features, timings = reference_features(self.block_outputs), []
            mine = self._inputs(out, ctx)[ctx.rank :: ctx.world_size]
            for clip in ctx.track(mine, "reference clips", total=len(mine)):
                start = time.perf_counter()
                seed = clip.seed if clip.seed is not None else ctx.seed + clip.index
                audio = load_audio(clip.audio)
                result = self._generate(pipe, clip, seed, audio)
                save_rows([reference_row(clip, seed, FPS, audio, result)], features, shard / f"row-{clip.index:06d}")
                timings.append(time.perf_counter() - start)
            shard.mkdir(parents=True, exist_ok=True)
            (shard / "timings.json").write_text(json.dumps(timings))
        finally:
            # every rank arrives, failed or not, so the runner's success check after `run` stays in step
            ctx.barrier()
        return self._merge(out, ctx) if ctx.rank == 0 else {}

    def _merge(self, out, ctx) -> dict:
        """Rank 0, after every rank wrote its shard: rows in input order into `dataset/`, shards removed."""
        from compress.pipelines.dataset import DATASET_DIR, merge_rows

        shards = out.path / "shards"
        rows = sorted(shards.glob("rank-*/row-*"), key=lambda p: int(p.name.removeprefix("row-")))
        timings = [t for f in shards.glob("rank-*/timings.json") for t in json.loads(f.read_text())]
        dataset = merge_rows(rows, out.path / DATASET_DIR)
        shutil.rmtree(shards)
        num_clips, frames = sum(dataset["num_clips"]), sum(s[0] for s in dataset["frames_shape"])
        out.extra["description"] = (f"Teacher reference: {len(dataset)} inputs, {num_clips} clips of {self.frames} "
                                    f"frames, {self.num_inference_steps} steps, CFG {self.guidance_scale}.")
        return {"inputs": len(dataset), "clips": num_clips, "frames": frames,
                "wall_s_per_clip": round(sum(timings) / max(num_clips, 1), 3), "world_size": ctx.world_size}
