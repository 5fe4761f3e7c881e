"""The export stage in a recipe: an ONNX artifact with report, metrics, and recipe validation of the target."""

import json

import pytest

from compress import Recipe
from compress.errors import RecipeError
from compress.stages.export import ExportStage
from tests.export.net import register

register()


def test_export_stage_writes_onnx_artifact_with_metrics(workdir):
    stage = ExportStage(name="phone", target="cpu", calibration_batches=2, latency_repeats=1)
    result = Recipe(model="test-export-net", output="runs/e", stages=[stage]).run(quiet=True)
    artifact = result["phone"]
    assert (artifact.path / "model.onnx").is_file() and (artifact.path / "model.qdq.onnx").is_file()
    report = json.loads((artifact.path / "report.json").read_text())
    assert report["calibration"]["source"]["latents"].startswith("random")
    metrics = artifact.metrics
    assert metrics["precision"] == "w8a8" and metrics["float_rel_error"] < 1e-5 and metrics["quant_rel_error"] < 0.3
    assert "htp_status" not in metrics


def test_unknown_target_is_a_recipe_error():
    with pytest.raises(RecipeError, match="built-in target"):
        Recipe.model_validate({"model": "tiny", "output": "runs/x", "stages": [{"kind": "export", "target": "pixel"}]})
