"""An artifact's outputs on a reference artifact's inputs: frames (uint8 [T, H, W, 3]) and latents per input.

S2V DiTs regenerate each input with the reference's own pipeline, settings, seeds and components (the
`ReferenceStage.regenerate` pattern) and decode with its VAE. Other model classes define
`eval_generate(row, components) -> {"frames": uint8 [T, H, W, 3], "latents": Tensor | None}`, where `row` is a
reference dataset row and `components` the reference teacher's `S2VComponents` (for its VAE).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from compress.artifacts import Artifact
from compress.errors import UserInputError
from compress.utils.console import Console
from compress.utils.paths import allowed_roots, is_inside

Generate = Callable[[int], dict]


@dataclass
class EvalContext:
    """What generation needs outside a recipe run (a `StageContext` provides the same inside one)."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    seed: int = 0
    root: Path = field(default_factory=Path.cwd)
    roots: list[str] = field(default_factory=list)
    console: Console = field(default_factory=lambda: Console(quiet=True))

    def resolve_path(self, value: str) -> Path:
        path = (self.root / value).resolve()
        if not is_inside(path, allowed_roots(self.root, self.roots)):
            raise UserInputError(f"path '{value}' is outside the working root and the allowed roots")
        return path

    def track(self, iterable, description: str, total: int | None = None):
        return self.console.track(iterable, description, total)

    def log(self, message: str) -> None:
        self.console.log(message)


def recipe_seed(artifact: Artifact) -> int:
    """The seed of the recipe that built `artifact`: its source's (preset weights and tiny components follow it)."""
    manifest = artifact.manifest
    while "seed" not in manifest.get("stage_config", {}) and (manifest.get("input") or {}).get("path"):
        parent = Path(manifest["input"]["path"])
        if not Artifact.is_artifact(parent):
            break
        manifest = Artifact.open(parent).manifest
    return int(manifest.get("stage_config", {}).get("seed", 0))


class ReferenceInputs:
    """The inputs, settings and stored teacher outputs of a finished `reference` artifact."""

    def __init__(self, reference: Artifact, ctx, max_inputs: int | None = None):
        from compress.pipelines.dataset import load_reference_dataset
        from compress.stages.reference import BUILTIN, ReferenceStage

        if reference.kind != "reference":
            raise UserInputError(f"{reference.path} is a '{reference.kind}' artifact, not a reference dataset")
        config = {k: v for k, v in reference.manifest["stage_config"].items() if k != "kind"}
        self.stage = ReferenceStage.model_validate(config)
        self.artifact, self.ctx = reference, ctx
        path = reference.path / "inputs" / "inputs.yaml" if self.stage.inputs == BUILTIN else ctx.resolve_path(
            self.stage.inputs)
        self.clips = self.stage._read(path, ctx)[:max_inputs]
        self.rows = load_reference_dataset(reference).select(range(len(self.clips)))
        self.mouth_boxes = input_mouth_boxes(path)

    def __len__(self) -> int:
        return len(self.clips)

    def teacher(self, index: int) -> dict:
        """The stored teacher outputs of input `index`: frames uint8 [T, H, W, 3], latents [clips, 16, F, h, w],
        and what lip-sync scoring needs: the input's audio (float32, 16 kHz), fps and relative `mouth_box`
        (None when the input set gives none)."""
        from compress.pipelines.audio import SAMPLE_RATE
        from compress.pipelines.dataset import decode_array

        row = self.rows[index]
        return {"id": row["id"], "frames": decode_array(row, "frames"),
                "latents": torch.from_numpy(decode_array(row, "latents").copy()),
                "audio": decode_array(row, "audio").astype(np.float32), "fps": row["fps"],
                "sample_rate": SAMPLE_RATE, "mouth_box": self.mouth_boxes.get(str(row["id"]))}

    def generator(self, model) -> Generate:
        """generate(index) -> {"frames": uint8 [T, H, W, 3], "latents": Tensor | None} for `model`."""
        from compress.models.s2v import WanS2VTransformer3DModel

        if isinstance(model, WanS2VTransformer3DModel):
            return self._s2v_generator(model)
        if callable(getattr(model, "eval_generate", None)):
            components = self.teacher_components()
            return lambda index: _checked(model.eval_generate(self.rows[index], components), type(model).__name__)
        raise UserInputError(f"cannot evaluate a {type(model).__name__}: it is not an S2V DiT and defines no "
                             f"eval_generate(row, components) method")

    def _s2v_generator(self, dit) -> Generate:
        from compress.pipelines.audio import load_audio
        from compress.pipelines.s2v import S2VPipeline

        pipe = S2VPipeline(self.stage._components(dit, self.ctx))

        def generate(index: int) -> dict:
            clip = self.clips[index]
            result = self.stage._generate(pipe, clip, self.rows[index]["seed"], load_audio(clip.audio))
            return {"frames": result.frames, "latents": result.latents}

        return generate

    def teacher_components(self):
        """The reference's S2V components around a meta-device teacher DiT (no DiT weights are loaded)."""
        from compress.models.auto import checkpoint_layout
        from compress.pipelines.components import S2VComponents

        source = Artifact.open(self.artifact.manifest["input"]["path"])
        if source.model_dir is None:
            raise UserInputError(f"{source.path}: the reference's teacher holds no model to build components for")
        cls, config, _ = checkpoint_layout(source.model_dir)
        with torch.device("meta"):
            dit = cls.from_config(config)
        dirs = [self.stage.vae, self.stage.text_encoder, self.stage.audio_encoder]
        if all(d is None for d in dirs):
            components = S2VComponents.tiny(dit=dit, seed=self.ctx.seed)
        else:
            components = S2VComponents.from_dirs(dit, *(self.ctx.resolve_path(d) for d in dirs))
        for part in (components.vae, components.text_encoder, components.audio_encoder):
            part.to(self.ctx.device)
        return components


def input_mouth_boxes(path: Path) -> dict:
    """{clip id: relative mouth_box} from an input set's YAML (the synthetic set has them); {} otherwise."""
    import yaml

    path = Path(path)
    if path.suffix.lower() not in (".yaml", ".yml") or not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text())
    rows = data.get("clips", []) if isinstance(data, dict) else data
    return {str(r["id"]): r["mouth_box"] for r in rows or [] if isinstance(r, dict) and "mouth_box" in r and "id" in r}


def _checked(output: dict, owner: str) -> dict:
    frames = output.get("frames") if isinstance(output, dict) else None
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise UserInputError(f"{owner}.eval_generate must return {{'frames': uint8 array [T, H, W, 3], 'latents': "
                             f"Tensor or None}}; got frames {getattr(frames, 'dtype', type(frames))} "
                             f"{getattr(frames, 'shape', '')}")
    return {"frames": frames, "latents": output.get("latents")}
