"""A finished reference artifact, read: its settings, input clips, dataset rows, stored teacher outputs, the teacher's
components and VAE, and the same generations again with another DiT.

Layout (written by `compress.stages.reference`): `dataset/` (`compress.reference.dataset`, one row per input in input
order) and, for the built-in set, `inputs/` (the synthetic set, `inputs/inputs.yaml`). The settings are the
manifest's `stage_config`; the teacher is the artifact's input (`manifest["input"]`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from datasets import Dataset

from compress.artifacts import Artifact
from compress.errors import UserInputError
from compress.models.auto import checkpoint_layout, meta_model
from compress.pipelines.audio import SAMPLE_RATE, load_audio
from compress.pipelines.components import S2VComponents
from compress.pipelines.sampling import SamplingConfig
from compress.pipelines.s2v import S2VOutput
from compress.reference.config import INPUTS_DIR, ReferenceConfig
from compress.reference.dataset import DATASET_DIR, load_rows
from compress.reference.generation import TeacherPipeline, build_components, load_vae
from compress.reference.inputs import InputClip, read_input_set
from compress.utils.arrays import decode_array, decode_tensor
from compress.utils.paths import is_inside, resolve_within

@dataclass
class ReferenceContext:
    """What reading a reference needs outside a recipe run (a `StageContext` provides the same inside one): the
    device, the seed preset components are built from, and the roots the paths in its settings must lie in."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    seed: int = 0
    root: Path = field(default_factory=Path.cwd)
    roots: list[str] = field(default_factory=list)

    def resolve_path(self, value: str) -> Path:
        return resolve_within(self.root, self.roots, value)


class ReferenceArtifact:
    """A finished `reference` artifact (an `Artifact` or its directory); `max_inputs` keeps its first N inputs.
    `ctx` (a `StageContext` or `ReferenceContext`) resolves the paths its settings name and places models."""

    def __init__(self, artifact: Artifact | str | Path, ctx=None, max_inputs: int | None = None):
        artifact = artifact if isinstance(artifact, Artifact) else Artifact.open(artifact)
        if artifact.kind != "reference":
            raise UserInputError(f"{artifact.path} is a '{artifact.kind}' artifact, not a reference artifact (the "
                                 f"output of a `reference` stage)")
        self.artifact, self.ctx, self.max_inputs = artifact, ctx or ReferenceContext(), max_inputs
        self.config = ReferenceConfig.from_stage_config(artifact.manifest["stage_config"])

    @property
    def path(self) -> Path:
        return self.artifact.path

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def inputs_file(self) -> Path:
        """The input set the teacher ran over: the built-in set inside the artifact, or the file the settings name."""
        if self.config.builtin:
            return self.path / INPUTS_DIR / "inputs.yaml"
        return self.ctx.resolve_path(self.config.inputs)

    @cached_property
    def clips(self) -> list[InputClip]:
        """The input clips, in row order."""
        clips = read_input_set(self.inputs_file, self._input_file)
        return clips[: self.config.max_clips][: self.max_inputs]

    def _input_file(self, value: str) -> Path:
        """A file the input set lists: inside the artifact for the built-in set, else within the context's roots."""
        if not self.config.builtin:
            return self.ctx.resolve_path(value)
        if not is_inside(Path(value), [self.path]):
            raise UserInputError(f"{self.inputs_file}: '{value}' is outside the reference artifact")
        return Path(value)

    @cached_property
    def rows(self) -> Dataset:
        """The dataset rows (see `compress.stages.reference` for the columns), one per input."""
        rows = load_rows(self.path / DATASET_DIR)
        return rows if self.max_inputs is None else rows.select(range(min(self.max_inputs, len(rows))))

    @cached_property
    def mouth_boxes(self) -> dict[str, dict[str, float]]:
        """{clip id: relative mouth box} of the inputs whose entry gives one (`InputClip.mouth_box`)."""
        return {clip.id: clip.mouth_box for clip in self.clips if clip.mouth_box is not None}

    def teacher(self, index: int) -> dict:
        """The stored teacher outputs of input `index`: frames uint8 [T, H, W, 3], latents [clips, 16, F, h, w],
        and what lip-sync scoring needs: the input's audio (float32, 16 kHz), fps and relative `mouth_box`
        (None when the input set gives none)."""
        row = self.rows[index]
        return {"id": row["id"], "frames": decode_array(row, "frames"),
                "latents": decode_tensor(row, "latents"),
                "audio": decode_array(row, "audio").astype(np.float32), "fps": row["fps"],
                "sample_rate": SAMPLE_RATE, "mouth_box": self.mouth_boxes.get(str(row["id"]))}

    def components(self, dit=None) -> S2VComponents:
        """The teacher's S2V components around `dit`, on the device; by default around a meta-device teacher DiT
        (no DiT weights are loaded: for the VAE and encoders)."""
        return build_components(self.config, dit if dit is not None else self._meta_teacher(), self.ctx)

    def vae(self):
        """The Wan VAE the teacher decoded with (float32, on the CPU), without loading the other components."""
        return load_vae(self.config, self._meta_teacher(), self.ctx)

    def regenerate(self, dit, sampling: SamplingConfig | None = None, decoder=None) -> Callable[[int], S2VOutput]:
        """generate(index): input `index` generated again by `dit` with this reference's components, settings and
        seed (the same DiT reproduces the stored latents); `sampling` replaces the reference's (e.g. a few-step
        model's own), `decoder` (a distilled decoder of video latents) the VAE's decoding (later clips then follow its
        frames), all else kept."""
        config = self.config if sampling is None else self.config.with_sampling(sampling)
        pipeline = TeacherPipeline(config, dit, self.ctx, decoder)

        def generate(index: int) -> S2VOutput:
            clip = self.clips[index]
            return pipeline(clip, self.rows[index]["seed"], load_audio(clip.audio))

        return generate

    def _meta_teacher(self):
        """The teacher DiT built from its config on the meta device: it picks the preset components."""
        teacher = self.artifact.open_related(self.artifact.manifest["input"]["path"], self.ctx.resolve_path)
        if teacher.model_dir is None:
            raise UserInputError(f"{teacher.path}: the reference's teacher holds no model to build components for")
        return meta_model(*checkpoint_layout(teacher.model_dir)[:2])
