"""The export stage in a recipe: an ONNX artifact with report, metrics, and recipe validation of the target."""

import json
from types import SimpleNamespace

import pytest

from compress import Recipe
from compress.errors import RecipeError, UserInputError
from compress.stages.export import ExportStage
from tests.export.net import register

register()


def test_export_stage_writes_onnx_artifact_with_metrics(workdir):
    stage = ExportStage(name="phone", target="cpu", calibration_batches=2, latency_repeats=1, shapes={"height": 96})
    result = Recipe(model="test-export-net", output="runs/e", stages=[stage]).run(quiet=True)
    artifact = result["phone"]
    assert (artifact.path / "model.onnx").is_file() and (artifact.path / "model.qdq.onnx").is_file()
    report = json.loads((artifact.path / "report.json").read_text())
    assert report["calibration"]["source"]["latents"].startswith("random")
    assert report["float"]["inputs"]["latents"] == [1, 4, 12, 8]  # the stage's height over the target's 64x64
    metrics = artifact.metrics
    assert metrics["precision"] == "w8a8" and metrics["float_rel_error"] < 1e-5 and metrics["quant_rel_error"] < 0.3
    assert "htp_status" not in metrics


def test_unknown_target_is_a_recipe_error():
    with pytest.raises(RecipeError, match="built-in target"):
        Recipe.model_validate({"model": "tiny", "output": "runs/x", "stages": [{"kind": "export", "target": "pixel"}]})


def test_shape_overrides_are_checked_against_the_targets_shapes():
    def stage(shapes):
        return {"model": "tiny", "output": "runs/x", "stages": [{"kind": "export", "target": "cpu", "shapes": shapes}]}

    with pytest.raises(RecipeError, match=r"stages\[0\]\.shapes: expected shape names among batch_size, height, "
                                          r"width, frames \(unknown: hieght\)"):
        Recipe.model_validate(stage({"hieght": 96}))
    with pytest.raises(RecipeError, match=r"stages\[0\]\.shapes\.height: expected greater than or equal to 8"):
        Recipe.model_validate(stage({"height": 4}))


def test_a_chain_export_needs_a_lipsync_student_and_a_tiny_decoder(workdir):
    stage = ExportStage(name="phone", target="cpu", latency_repeats=1, decoder="source")
    with pytest.raises(UserInputError, match="export with a decoder: the model must be a LipSyncStudent .the "
                                             "phone's chain.; found a ExportNet"):
        Recipe(model="test-export-net", output="runs/e", stages=[stage]).run(quiet=True)
    assert not (workdir / "runs" / "e" / "phone").exists()
    with pytest.raises(RecipeError, match=r"stages\[0\] \(export\)\.decoder: expected 'source' or the name of an "
                                          r"earlier model-producing stage"):
        Recipe.model_validate({"model": "tiny", "output": "runs/x",
                               "stages": [{"kind": "export", "target": "cpu", "decoder": "nowhere"}]})


def test_a_profile_file_fingerprint_follows_what_it_extends(tmp_path):
    (tmp_path / "base.yaml").write_text("name: base\nruntime: cpu\nprecision: w8a8\nopset: 20\n")
    (tmp_path / "child.yaml").write_text("name: child\nextends: base.yaml\n")
    stage, ctx = ExportStage(name="phone", target="child.yaml"), SimpleNamespace(resolve_path=lambda v: tmp_path / v)
    before = stage.data_fingerprint(ctx)
    (tmp_path / "base.yaml").write_text("name: base\nruntime: cpu\nprecision: w8a8\nopset: 21\n")
    assert stage.data_fingerprint(ctx) != before
    assert ExportStage(name="phone", target="snapdragon-8gen3").data_fingerprint(ctx) is None
