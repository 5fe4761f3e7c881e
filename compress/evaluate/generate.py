"""An artifact's outputs on a reference artifact's inputs: frames (uint8 [T, H, W, 3]) and latents per input.

S2V DiTs regenerate each input with the reference's own pipeline, settings, seeds and components
(`ReferenceArtifact.regenerate`) and decode with its VAE (or a distilled decoder of video latents); `sampling` (e.g.
a few-step model's own) replaces the reference's sampler, steps and guidance. Other model classes define
`eval_generate(row, components) -> {"frames": uint8 [T, H, W, 3], "latents": Tensor | None}`, where `row` is a
reference dataset row and `components` the reference teacher's `S2VComponents` (for its VAE).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from compress.artifacts import Artifact
from compress.errors import UserInputError
from compress.models.s2v import WanS2VTransformer3DModel
from compress.pipelines.sampling import SamplingConfig
from compress.reference.artifact import ReferenceArtifact, ReferenceContext
from compress.utils.console import Console

Generate = Callable[[int], dict]


@dataclass
class EvalContext(ReferenceContext):
    """What generation needs outside a recipe run (a `StageContext` provides the same inside one)."""

    console: Console = field(default_factory=lambda: Console(quiet=True))

    def track(self, iterable, description: str, total: int | None = None):
        return self.console.track(iterable, description, total)

    def log(self, message: str) -> None:
        self.console.log(message)


def ancestry(artifact: Artifact, resolve: Callable[[str], Path]) -> Iterator[Artifact]:
    """`artifact`, then its input, its input's input... while they open: ancestors outside its run folder only where
    `resolve` allows (e.g. `EvalContext.resolve_path`)."""
    current = artifact
    while True:
        yield current
        parent = (current.manifest.get("input") or {}).get("path")
        if not parent:
            return
        try:
            current = artifact.open_related(parent, resolve)
        except UserInputError:  # gone, or outside the roots
            return


def recipe_seed(artifact: Artifact, resolve: Callable[[str], Path]) -> int:
    """The seed of the recipe that built `artifact`: its source's (preset weights and tiny components follow it);
    the default where no ancestor that opens records one."""
    for ancestor in ancestry(artifact, resolve):
        if "seed" in ancestor.manifest.get("stage_config", {}):
            return int(ancestor.manifest["stage_config"]["seed"])
    return 0


def generator(reference: ReferenceArtifact, model, sampling: SamplingConfig | None = None,
              decoder=None) -> Generate:
    """generate(index) -> {"frames": uint8 [T, H, W, 3], "latents": Tensor | None} for `model` on the reference's
    input `index`; an S2V DiT sampled as `sampling` says (default: as the reference), its latents decoded by
    `decoder` (a distilled decoder of video latents) when given, else by the reference's VAE."""
    if isinstance(model, WanS2VTransformer3DModel):
        regenerate = reference.regenerate(model, sampling, decoder)

        def generate(index: int) -> dict:
            result = regenerate(index)
            return {"frames": result.frames, "latents": result.latents}

        return generate
    if callable(getattr(model, "eval_generate", None)):
        components = reference.components()
        return lambda index: _checked(model.eval_generate(reference.rows[index], components), type(model).__name__)
    raise UserInputError(f"cannot evaluate a {type(model).__name__}: it is not an S2V DiT and defines no "
                         f"eval_generate(row, components) method")


def _checked(output: dict, owner: str) -> dict:
    frames = output.get("frames") if isinstance(output, dict) else None
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise UserInputError(f"{owner}.eval_generate must return {{'frames': uint8 array [T, H, W, 3], 'latents': "
                             f"Tensor or None}}; got frames {getattr(frames, 'dtype', type(frames))} "
                             f"{getattr(frames, 'shape', '')}")
    return {"frames": frames, "latents": output.get("latents")}
