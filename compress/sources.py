"""Where a recipe's model comes from: a preset name, a local model directory, or an earlier artifact."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from compress.artifacts import Artifact, ArtifactWriter
from compress.artifacts.hashing import fingerprint_dir, sha256_json
from compress.artifacts.weights import summarize, weight_files
from compress.errors import UserInputError
from compress.utils.paths import looks_like_path


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
        from compress.models.auto import build_preset

        if self.external_dir is not None:
            out.extra["external_model_dir"] = str(self.external_dir)
            out.extra["model"] = summarize(weight_files(self.external_dir))
            out.extra["description"] = f"The model in {self.external_dir}, used in place (not copied)."
        else:
            out.save_model(build_preset(self.preset, seed=self.seed))
            out.extra["description"] = f"Preset '{self.preset}' (seed {self.seed})."
        return {}


def resolve_source(spec: str, root: Path, seed: int = 0) -> SourceSpec:
    from compress.models.auto import preset_fingerprint, preset_names

    if looks_like_path(spec, root):
        path = (root / spec).resolve()
        if Artifact.is_artifact(path):
            artifact = Artifact.open(path)
            return SourceSpec(spec, artifact.hash, artifact=artifact)
        if (path / "config.json").is_file():
            return SourceSpec(spec, sha256_json({"external": str(path), "files": fingerprint_dir(path)}),
                              external_dir=path)
        raise UserInputError(f"model: '{spec}' is neither an artifact (manifest.json) nor a model directory "
                             f"(config.json)")
    if spec not in preset_names():
        raise UserInputError(f"model: '{spec}' is not a known preset ({', '.join(preset_names())}) nor a path")
    return SourceSpec(spec, sha256_json({"preset": spec, "seed": seed, "weights": preset_fingerprint(spec)}),
                      preset=spec, seed=seed)
