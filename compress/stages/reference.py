"""`reference`: run the teacher over an input set and store what distillation and evaluation need.

The artifact holds `dataset/` (a Hugging Face `datasets` table, read with `compress.reference.ReferenceArtifact`),
one row per input in input order. Arrays are bytes + shape + dtype columns
(`compress.utils.arrays.decode_array(row, name)`): `frames` uint8 [T, H, W, 3], `latents` [clips, 16, F, h, w]
(denoised), `ref_latents` [16, 1, h, w], `motion_latents` [clips, 16, 19, h, w] (clip 0's are unused zeros),
`audio` (16 kHz waveform), `audio_features` [25, audio_dim, clips * frames], `text_embeds` and
`negative_text_embeds` [L, text_dim], and `block_<i>` [clips, steps, noisy tokens, dim] for `block_outputs`
(conditional pass). Clip k's initial noise is `compress.pipelines.s2v.clip_noise(seed + k, latents[k].shape)`.
With `inputs: builtin:quickstart` (or `builtin:heldout`: other sentences, faces, voices and seeds, for evaluation;
`builtin:heldout-paused`: the same with a pause in each sentence, for the wrong-audio control) the built-in synthetic
talking-face set is built into `inputs/` first.

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
import shutil
import time
from pathlib import Path

from compress.errors import UserInputError
from compress.reference.config import BUILTIN_CLIPS, INPUTS_DIR, ReferenceConfig
from compress.reference.inputs import InputClip, input_set_fingerprint, read_input_set
from compress.sources import resolve
from compress.stages.base import Stage
from compress.utils.hashing import fingerprint_dir


class ReferenceStage(Stage, ReferenceConfig):
    """Teacher generations over an input set, stored as a dataset."""

    kind = "reference"
    key_metrics = ("inputs", "clips", "wall_s_per_clip")
    summary = "run the teacher over an input set; store latents, frames, audio and text features"
    produces_model = False
    distributed = True

    def paths(self) -> dict[str, str]:
        folders = {k: v for k, v in self.component_dirs().items() if v}
        return folders if self.builtin else {"inputs": self.inputs, **folders}

    def data_fingerprint(self, ctx) -> dict:
        components = {k: fingerprint_dir(ctx.resolve_path(v)) for k, v in self.component_dirs().items() if v}
        if self.builtin:
            from compress.data import espeak_available
            from compress.data.synthetic import BUILTIN_SETS

            return {"inputs": {"builtin": self.inputs, "set": BUILTIN_SETS[self.builtin_set],
                               "espeak": espeak_available()}, "components": components}
        path = ctx.resolve_path(self.inputs)
        return {"inputs": input_set_fingerprint(path, self._read(path, ctx)), "components": components}

    def _read(self, path: Path, ctx) -> list[InputClip]:
        return read_input_set(path, ctx.resolve_path)[: self.max_clips]

    def _inputs(self, out, ctx) -> list[InputClip]:
        if not self.builtin:
            return self._read(ctx.resolve_path(self.inputs), ctx)
        from compress.data.synthetic import BUILTIN_SETS, build_synthetic_set

        # every rank builds its own copy (same arguments, same bytes); rank 0's is kept in the artifact
        folder = out.path / (INPUTS_DIR if ctx.rank == 0 else f"shards/rank-{ctx.rank}/{INPUTS_DIR}")
        side = max(self.size_multiple, math.isqrt(self.max_area) // self.size_multiple * self.size_multiple)
        path = build_synthetic_set(folder, num_clips=self.max_clips or BUILTIN_CLIPS, size=side, frames=self.frames,
                                   seed=ctx.seed, **BUILTIN_SETS[self.builtin_set])
        return self._read(path, ctx)

    def run(self, source, out, ctx) -> dict:
        from compress.pipelines.audio import load_audio
        from compress.pipelines.s2v import FPS
        from compress.reference.dataset import reference_features, reference_row, save_rows
        from compress.reference.generation import TeacherPipeline

        if self.preset_components and resolve(ctx.recipe.model, ctx.root).kind != "preset":
            raise UserInputError("reference: the model is not a preset, so its vae, text_encoder and "
                                 "audio_encoder folders must be given")
        shard = out.path / "shards" / f"rank-{ctx.rank}"
        try:
            teacher = TeacherPipeline(self, self._teacher(source, ctx), ctx)
            if any(b >= len(teacher.dit.blocks) for b in self.block_outputs):
                raise UserInputError(f"reference: block_outputs must be below {len(teacher.dit.blocks)}")
            features, timings = reference_features(self.block_outputs), []
            mine = self._inputs(out, ctx)[ctx.rank :: ctx.world_size]
            for clip in ctx.track(mine, "reference clips", total=len(mine)):
                start = time.perf_counter()
                seed = clip.seed if clip.seed is not None else ctx.seed + clip.index
                audio = load_audio(clip.audio)
                result = teacher(clip, seed, audio)
                save_rows([reference_row(clip, seed, FPS, audio, result)], features, shard / f"row-{clip.index:06d}")
                timings.append(time.perf_counter() - start)
            shard.mkdir(parents=True, exist_ok=True)
            (shard / "timings.json").write_text(json.dumps(timings))
        finally:
            # every rank arrives, failed or not, so the runner's success check after `run` stays in step
            ctx.barrier()
        return self._merge(out, ctx) if ctx.rank == 0 else {}

    def _teacher(self, source, ctx):
        """The input's S2V DiT; any other model (e.g. a student, the default input after a distill stage) is
        refused by name."""
        from compress.models.s2v import WanS2VTransformer3DModel
        from compress.reference.generation import torch_dtype

        model = source.load_model(device=ctx.device, torch_dtype=torch_dtype(self))
        if not isinstance(model, WanS2VTransformer3DModel):
            raise UserInputError(f"reference: its input '{source.name}' is a {type(model).__name__}, not the S2V DiT "
                                 f"it samples; name the teacher's stage (e.g. `input: source`)")
        return model

    def _merge(self, out, ctx) -> dict:
        """Rank 0, after every rank wrote its shard: rows in input order into `dataset/`, shards removed."""
        from compress.reference.dataset import DATASET_DIR, merge_rows

        shards = out.path / "shards"
        rows = sorted(shards.glob("rank-*/row-*"), key=lambda p: int(p.name.removeprefix("row-")))
        timings = [t for f in shards.glob("rank-*/timings.json") for t in json.loads(f.read_text())]
        dataset = merge_rows(rows, out.path / DATASET_DIR)
        shutil.rmtree(shards)
        num_clips, frames = sum(dataset["num_clips"]), sum(s[0] for s in dataset["frames_shape"])
        out.extra["description"] = (f"Teacher reference: {len(dataset)} inputs, {num_clips} clips of {self.frames} "
                                    f"frames, {self.sampling.describe()}.")
        return {"inputs": len(dataset), "clips": num_clips, "frames": frames,
                "wall_s_per_clip": round(sum(timings) / max(num_clips, 1), 3),
                "dit_forwards_per_clip": self.sampling.dit_forwards, "world_size": ctx.world_size}
