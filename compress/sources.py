"""Which model a name means, and where a recipe's model comes from: a preset name, a model directory (config.json)
or an earlier artifact directory (manifest.json), optionally with a LiveAvatar-format LoRA merged into it
(`ModelSource`: `model: {base: ..., lora: liveavatar.safetensors}`).

The recipe's `model:` and every command that takes a model (`inspect`, `vram`, `prune plan`, `export onnx`) resolve
it here, with one error text. Light: nothing is loaded until `load` or `layout` is called. This module sits above
both `compress.models` (model classes) and `compress.artifacts` (whose `Artifact.load_model` uses the models).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from compress.artifacts import Artifact, ArtifactWriter
from compress.errors import UserInputError
from compress.models.auto import (build_preset, checkpoint_layout, get_preset, load_model, preset_fingerprint,
                                  preset_names)
from compress.utils.hashing import fingerprint_dir, sha256_file, sha256_json
from compress.utils.paths import check_folder, check_inside, looks_like_path
from compress.utils.weights import summarize, weight_files

if TYPE_CHECKING:
    from torch import nn


class ModelSource(BaseModel):
    """A recipe's `model:` with a LiveAvatar-format LoRA applied: the base as a plain `model:` names it, and the file
    (its key names and shapes: compress.models.s2v.liveavatar_lora)."""

    model_config = ConfigDict(extra="forbid")

    base: str = Field(description="a preset name, a local model directory, or an earlier artifact directory")
    lora: str = Field(description="a LiveAvatar-format LoRA file (.safetensors, or a .pt/.pth/.bin tensor dict)")
    lora_alpha: float | None = Field(default=None, gt=0, description="the LoRA's alpha (scale alpha/rank); default: "
                                                                     "the file's metadata, else LiveAvatar's 64")
    merge: bool = Field(default=True, description="merge the LoRA into the weights (LiveAvatar merges it too)")

    @field_validator("merge")
    @classmethod
    def _merged_only(cls, value: bool) -> bool:
        if not value:
            raise ValueError("true (merge: false is not supported for a recipe's model yet: every stage loads its "
                             "input as a plain model and would silently drop unmerged adapters; attach them in Python "
                             "instead: compress.models.s2v.liveavatar_lora.apply_lora(model, "
                             "read_liveavatar_lora(file), merge=False))")
        return value


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


def resolve(spec: str | Path | ModelSource, root: Path = Path(".")) -> ResolvedModel:
    """An existing path (relative to `root`) is an artifact or a model directory; any other name a preset. A
    `ModelSource` resolves to its base (a LoRA changes the weights, not what kind of model it is)."""
    spec = str(spec.base if isinstance(spec, ModelSource) else spec)
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


@dataclass(frozen=True)
class LoraFile:
    """A LoRA file a source applies: where it is, its sha256 (part of the source's key) and the alpha to use."""

    path: Path
    sha256: str
    alpha: float | None

    def describe(self) -> dict:
        return {"file": str(self.path), "sha256": self.sha256, "alpha": self.alpha, "merged": True}


@dataclass
class SourceSpec:
    spec: str
    key: str
    artifact: Artifact | None = None  # used as it is (no LoRA)
    external_dir: Path | None = None
    preset: str | None = None
    seed: int = 0
    lora: LoraFile | None = None
    base_artifact: Artifact | None = None  # an artifact the LoRA is merged into

    def describe(self) -> dict:
        described = ({"model": self.spec, "external_dir": str(self.external_dir)} if self.external_dir is not None
                     else {"model": self.spec, "artifact": str(self.base_artifact.path)} if self.base_artifact
                     else {"model": self.spec, "preset": self.preset, "seed": self.seed})
        return {**described, "lora": self.lora.describe()} if self.lora else described

    def materialize(self, out: ArtifactWriter) -> dict:
        """Write the source artifact: a preset's weights, or a pointer to the external directory; with a LoRA, the
        base's weights with the LoRA merged."""
        if self.lora is not None:
            return self._merge_lora(out)
        if self.external_dir is not None:
            out.extra["external_model_dir"] = str(self.external_dir)
            out.extra["model"] = summarize(weight_files(self.external_dir))
            out.extra["description"] = f"The model in {self.external_dir}, used in place (not copied)."
        else:
            out.save_model(build_preset(self.preset, seed=self.seed))
            out.extra["description"] = f"Preset '{self.preset}' (seed {self.seed})."
        return {}

    def _merge_lora(self, out: ArtifactWriter) -> dict:
        from compress.models.s2v.liveavatar_lora import apply_lora, read_liveavatar_lora  # torch

        lora = read_liveavatar_lora(self.lora.path, self.lora.alpha)
        model = self._base_model()
        adapted = apply_lora(model, lora, merge=True)
        out.save_model(model)
        out.extra["lora"] = {**self.lora.describe(), "alpha": lora.alpha, "rank": lora.rank,
                             "modules": len(adapted), "parameters": lora.num_parameters()}
        out.extra["description"] = (f"'{self.spec}' with the rank-{lora.rank} LoRA {self.lora.path.name} (alpha "
                                    f"{lora.alpha:g}, {len(adapted)} modules) merged into its weights.")
        return {"lora_modules": len(adapted), "lora_parameters": lora.num_parameters()}

    def _base_model(self):
        if self.base_artifact is not None:
            return self.base_artifact.load_model()
        if self.external_dir is not None:
            return load_model(self.external_dir)
        return build_preset(self.preset, seed=self.seed)


def resolve_source(spec: str | ModelSource, root: Path, roots: list[Path], seed: int = 0) -> SourceSpec:
    """The recipe's `model:` (`resolve`), with the key that identifies it for resuming; a directory (and each file
    in it, symlinks resolved) and a LoRA file must lie inside `roots`."""
    if not isinstance(spec, ModelSource):
        return _base_source(spec, root, roots, seed)
    source = _base_source(spec.base, root, roots, seed)
    path = check_inside(root / spec.lora, roots, "model.lora")
    if not path.is_file():
        raise UserInputError(f"model.lora: no such file: {spec.lora}")
    if source.artifact is not None:
        source.artifact.verify().check_pointers(roots)  # the runner does this for an artifact used as it is
    lora = LoraFile(path, sha256_file(path), spec.lora_alpha)
    key = sha256_json({"base": source.key, "lora": lora.sha256, "alpha": lora.alpha})
    return SourceSpec(spec.base, key, external_dir=source.external_dir, preset=source.preset, seed=seed, lora=lora,
                      base_artifact=source.artifact)


def _base_source(spec: str, root: Path, roots: list[Path], seed: int) -> SourceSpec:
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
