"""`compress inspect`: what an artifact, a model directory or a preset holds."""

from __future__ import annotations

import json
from pathlib import Path

from compress.artifacts import Artifact
from compress.artifacts.weights import summarize, weight_files
from compress.errors import UserInputError


def inspect_target(target: str) -> dict:
    path = Path(target)
    if Artifact.is_artifact(path):
        artifact = Artifact.open(path)
        m = artifact.manifest
        return {"type": "artifact", "path": str(path), "name": artifact.name, "kind": artifact.kind,
                "hash": artifact.hash, "lineage": artifact.lineage, "model": m.get("model"),
                "disk_bytes": sum(f["bytes"] for f in m.get("files", {}).values()),
                "metrics": artifact.metrics, "timing": m.get("timing"), "stage_config": m.get("stage_config")}
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UserInputError(f"{path} is neither an artifact (manifest.json) nor a model directory (config.json)")
        return {"type": "model_dir", "path": str(path), "config": json.loads((path / "config.json").read_text()),
                "model": summarize(weight_files(path))}
    from compress.models.auto import inspect_preset, preset_names

    if target in preset_names():
        return {"type": "preset", "name": target, **inspect_preset(target)}
    raise UserInputError(f"'{target}' is not an artifact, a model directory or a preset ({', '.join(preset_names())})")
