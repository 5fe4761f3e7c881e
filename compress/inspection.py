"""`compress inspect`: what an artifact, a model directory or a preset holds."""

from __future__ import annotations

from compress.models.auto import inspect_preset
from compress.models.config_check import read_model_config
from compress.sources import resolve
from compress.utils.weights import summarize, weight_files


def inspect_target(target: str) -> dict:
    """What `target` holds; a damaged artifact (a recorded file missing, resized or changed) is an error."""
    model = resolve(target)
    if model.kind == "preset":
        return {"type": "preset", "name": target, **inspect_preset(target)}
    if model.kind == "directory":
        config = read_model_config(model.path / "config.json")
        return {"type": "model_dir", "path": str(model.path), "config": config,
                "model": summarize(weight_files(model.path))}
    artifact = model.artifact().verify()
    m = artifact.manifest
    return {"type": "artifact", "path": str(model.path), "name": artifact.name, "kind": artifact.kind,
            "hash": artifact.hash, "lineage": artifact.lineage, "model": m.get("model"),
            "disk_bytes": sum(f["bytes"] for f in m.get("files", {}).values()),
            "metrics": artifact.metrics, "timing": m.get("timing"), "stage_config": m.get("stage_config")}

