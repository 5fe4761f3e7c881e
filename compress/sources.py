"""Which model a name means, and where a recipe's model comes from: a preset name, a model directory (config.json)
or an earlier artifact directory (manifest.json).

The recipe's `model:` and every command that takes a model (`inspect`, `vram`, `prune plan`, `export onnx`) resolve
it here, with one error text. Light: nothing is loaded until `load` or `layout` is called. This module sits above
both `compress.models` (model classes) and `compress.artifacts` (whose `Artifact.load_model` uses the models).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from compress.artifacts import Artifact, ArtifactWriter
from compress.errors import UserInputError
from compress.models.auto import (build_preset, checkpoint_layout, get_preset, load_model, preset_fingerprint,
                                  preset_names)
from compress.utils.hashing import fingerprint_dir, sha256_json
from compress.utils.paths import check_folder, looks_like_path
from compress.utils.weights import summarize, weight_files

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class ResolvedModel:
    kind: Literal["preset", "directory", "artifact"]
    spec: str  # as given
    path: Path | None = None  # the model or artifact directory (None for a preset)

    def artifact(self) -> Artifact:
        if self.kind != "artifact":
            raise UserInputError(f"'{self.spec}' is a {self.kind}, not an artifact")
        return Artifact.open(self.path)

    def model_dir(self) -> Path | None:
        """Where the weights are: the directory, or the artifact's (an error if it holds none); None for a preset."""
        if self.kind == "preset":
            return None
        if self.kind == "directory":
            return self.path
        model_dir = self.artifact().model_dir
        if model_dir is None:
            raise UserInputError(f"artifact {self.spec} holds no model weights")
        return model_dir

    def layout(self) -> tuple[type, dict]:
        """(model class, constructor config), read without loading any weights."""
        if self.kind == "preset":
            preset = get_preset(self.spec)
            return preset.model_class, preset.config
        return checkpoint_layout(self.model_dir())[:2]

    def load(self, device=None, torch_dtype=None) -> "nn.Module":
        """The model with its weights: the preset's (shipped, or a seeded random init) or the directory's."""
        if self.kind == "preset":
            return build_preset(self.spec, device=device, torch_dtype=torch_dtype)
        return load_model(self.model_dir(), device=device, torch_dtype=torch_dtype)


def resolve(spec: str | Path, root: Path = Path(".")) -> ResolvedModel:
    """An existing path (relative to `root`) is an artifact or a model directory; any other name a preset."""
    spec = str(spec)
    path = root / spec
    tried = f"'{spec}' is not an artifact, a model directory or a preset"
    if path.exists():
        if Artifact.is_artifact(path):
            return ResolvedModel("artifact", spec, path)
        if (path / "config.json").is_file():
            return ResolvedModel("directory", spec, path)
        raise UserInputError(f"{tried}: {path} holds neither manifest.json (an artifact) nor config.json (a model "
                             f"directory)")
    if not looks_like_path(spec, root) and spec in preset_names():
        return ResolvedModel("preset", spec)
    raise UserInputError(f"{tried}: no such path, and the presets are {', '.join(preset_names())}")


@dataclass
class SourceSpec:
    spec: str
    key: str
    artifact: Artifact | None = None
    external_dir: Path | None = None
    preset: str | None = None
    seed: int = 0

    def describe(self) -> dict:
        if self.external_dir is not None:
            return {"model": self.spec, "external_dir": str(self.external_dir)}
        return {"model": self.spec, "preset": self.preset, "seed": self.seed}

    def materialize(self, out: ArtifactWriter) -> dict:
        """Write the source artifact: a preset's weights, or a pointer to the external directory."""
        if self.external_dir is not None:
            out.extra["external_model_dir"] = str(self.external_dir)
            out.extra["model"] = summarize(weight_files(self.external_dir))
            out.extra["description"] = f"The model in {self.external_dir}, used in place (not copied)."
        else:
            out.save_model(build_preset(self.preset, seed=self.seed))
            out.extra["description"] = f"Preset '{self.preset}' (seed {self.seed})."
        return {}


def resolve_source(spec: str, root: Path, roots: list[Path], seed: int = 0) -> SourceSpec:
    """The recipe's `model:` (`resolve`), with the key that identifies it for resuming; a directory (and each file
    in it, symlinks resolved) must lie inside `roots`."""
    try:
        model = resolve(spec, root)
    except UserInputError as err:
        raise UserInputError(f"model: {err}") from None
    if model.kind == "artifact":
        artifact = Artifact.open(model.path.resolve())
        return SourceSpec(spec, artifact.hash, artifact=artifact)
    if model.kind == "directory":
        path = check_folder(model.path, roots, "model")
        return SourceSpec(spec, sha256_json({"external": str(path), "files": fingerprint_dir(path)}), external_dir=path)
    return SourceSpec(spec, sha256_json({"preset": spec, "seed": seed, "weights": preset_fingerprint(spec)}),
                      preset=spec, seed=seed)
