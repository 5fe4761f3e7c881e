"""Where a recipe's model comes from: a preset name, a local model directory, or an earlier artifact."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from compress.artifacts import Artifact, ArtifactWriter
from compress.artifacts.hashing import fingerprint_dir, sha256_json
from compress.artifacts.weights import summarize, weight_files
from compress.models.auto import build_preset, preset_fingerprint
from compress.models.resolution import resolve


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


def resolve_source(spec: str, root: Path, seed: int = 0) -> SourceSpec:
    """The recipe's `model:` (`compress.models.resolve`), with the key that identifies it for resuming."""
    model = resolve(spec, root)
    if model.kind == "artifact":
        artifact = Artifact.open(model.path.resolve())
        return SourceSpec(spec, artifact.hash, artifact=artifact)
    if model.kind == "directory":
        path = model.path.resolve()
        return SourceSpec(spec, sha256_json({"external": str(path), "files": fingerprint_dir(path)}), external_dir=path)
    return SourceSpec(spec, sha256_json({"preset": spec, "seed": seed, "weights": preset_fingerprint(spec)}),
                      preset=spec, seed=seed)
