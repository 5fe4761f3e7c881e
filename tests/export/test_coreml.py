"""Core ML export (a17-pro): a tiny student at 64x64 becomes an ML program with float16 compute and int8 (or 6-bit
palettized) weights; off macOS the report says "conversion only", never that Core ML ran; a clear error without
coremltools."""

import importlib.util

import pytest
import torch

from compress.errors import UserInputError
from compress.export import ExportRequest, load_target, run_export
from compress.export.targets import CoreMLSettings, StaticShapes
from compress.models.students import LipSyncStudent
from compress.export.rows import target_row
from compress.stages.export import stage_metrics
from tests.helpers import run_cli

SMALL = {"channels": 32, "mid_blocks": 1, "audio_channels": 32, "audio_dim": 32}


@pytest.fixture(scope="module")
def coremltools():
    from compress.export.coreml import coreml_status

    available, reason = coreml_status()
    if not available:
        pytest.skip(reason)
    import coremltools

    return coremltools


def a17_at_64(**update):
    return load_target("a17-pro").model_copy(update={"shapes": StaticShapes(height=64, width=64), **update})


def student():
    torch.manual_seed(0)
    return LipSyncStudent(**SMALL)


@pytest.mark.slow  # ~10 s (torch.export + conversion)
def test_student_converts_to_a_float16_mlprogram_with_int8_weights(coremltools, tmp_path):
    report = run_export(ExportRequest(student(), a17_at_64(), latency_repeats=1), tmp_path)
    part = report["coreml"]
    assert (tmp_path / "model.mlpackage" / "Manifest.json").is_file()
    assert part["type"] == "mlProgram" and part["specification_version"] >= 8  # iOS17's ML program
    assert part["inputs"] == {"audio": [1, 80, 16], "ref_latent": [1, 16, 8, 8], "masked_latent": [1, 16, 8, 8]}
    assert {d for d in part["compute_dtypes"] if d.startswith("float")} == {"float16"}
    assert part["ops"]["constexpr_affine_dequantize"] == part["compressed_weights"] > 0  # measured 32
    assert part["spec_problems"] == [] and part["may_leave_ane"] == []
    if part["verified_on"] == "conversion only":  # off macOS: no claim that Core ML ran
        assert "macOS" in part["reason"] and "vs_torch" not in part
        assert part["float16_emulation"]["rel_l2"] < 0.01  # measured 0.0006
        assert target_row(report)["numeric_error"] is None
    else:
        assert part["vs_torch"]["rel_l2"] < 0.05
    metrics = stage_metrics(report)
    assert metrics["verified_on"] == part["verified_on"] and metrics["coreml_spec_ok"] is True
    assert metrics["chain_gmacs_per_frame"] == pytest.approx(report["chain"]["gmacs_per_frame"])


def test_a_model_beyond_float16s_range_is_refused_before_conversion(coremltools, tmp_path):
    """The ANE computes in float16: a model whose float16 run overflows (here its output layer scaled by 1e6) would
    give inf / NaN there, so the export fails, naming the cause and the way out, and writes no package."""
    from compress.export.coreml import Float16OverflowError

    model = student()
    with torch.no_grad():
        model.conv_out.weight.mul_(1e6)
    with pytest.raises(Float16OverflowError, match=r"a17-pro: LipSyncStudent run in float16 .* gives inf or NaN: its "
                                                   r"activations leave float16's range .* precision none"):
        run_export(ExportRequest(model, a17_at_64(), latency_repeats=1), tmp_path)
    assert not (tmp_path / "model.mlpackage").exists()


@pytest.mark.slow  # ~10 s (torch.export + conversion)
def test_a_float32_export_has_no_float16_emulation_and_its_stage_metrics_say_so(coremltools, tmp_path):
    report = run_export(ExportRequest(student(), a17_at_64(), "none", latency_repeats=1), tmp_path)
    assert report["coreml"]["compute_precision"] == "float32" and "float16_emulation" not in report["coreml"]
    assert "float16_emulation_rel_error" not in stage_metrics(report)


def test_float_and_palettized_conversions_keep_their_precision(coremltools, tmp_path):
    from compress.export import coreml

    model = torch.nn.Sequential(torch.nn.Conv2d(8, 64, 3, padding=1), torch.nn.SiLU(), torch.nn.Conv2d(64, 8, 3))
    inputs = {"input": torch.randn(1, 8, 16, 16)}
    forward = Named(model)
    float32 = coreml.spec_summary(coreml.convert(forward, inputs, CoreMLSettings(), "none", tmp_path / "f.mlpackage"))
    assert set(float32["compute_dtypes"]) == {"float32"} and float32["compressed_weights"] == 0
    with pytest.raises(UserInputError, match="precision 'w8a8' is not offered"):
        coreml.convert(forward, inputs, CoreMLSettings(), "w8a8", tmp_path / "x.mlpackage")
    palettized = CoreMLSettings(weights="palettize-6bit")
    if importlib.util.find_spec("sklearn") is None:  # coremltools' k-means
        with pytest.raises(UserInputError, match="k-means needs scikit-learn"):
            coreml.convert(forward, inputs, palettized, "w8a16", tmp_path / "p.mlpackage")
        return
    lut = coreml.spec_summary(coreml.convert(forward, inputs, palettized, "w8a16", tmp_path / "p.mlpackage"))
    assert lut["ops"].get("constexpr_lut_to_dense") == 2 and set(lut["compute_dtypes"]) == {"float16"}


class Named(torch.nn.Module):
    """A module called with `input=` (export passes inputs by name)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input):
        return self.model(input)


def test_spec_check_names_what_departs_from_the_profile():
    from compress.export.coreml import check_spec

    summary = {"type": "neuralNetwork", "compute_dtypes": {"float32": 3, "int32": 1}, "compressed_weights": 0}
    assert check_spec(summary, CoreMLSettings(), "w8a16") == [
        "spec type neuralNetwork, expected mlProgram", "ops compute in ['float32'], expected float16 only",
        "no compressed weights (linear-int8 asked)"]
    assert check_spec({**summary, "type": "mlProgram"}, CoreMLSettings(), "none") == []


def test_cli_without_coremltools_says_what_to_install(tmp_path, monkeypatch, capsys):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "coremltools" else
                        find_spec(name, *a))
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(monkeypatch, capsys, "export", "onnx", "lipsync-30m", "-t", "cpu", "-t", "a17-pro")
    assert code == 2 and "Traceback" not in out + err
    assert "Core ML target: coremltools is not installed (pip install 'coremltools>=9,<10'" in " ".join(err.split())
    assert not (tmp_path / "export").exists()  # checked before the first target's export


@pytest.mark.slow  # ~10 s: a recipe's export stage, then its leaderboard record
def test_export_stage_and_leaderboard_record_carry_the_target_row(coremltools, workdir):
    from compress import Recipe
    from compress.evaluate.report import _export_only
    from compress.evaluate.suite import load_suite
    from compress.stages.export import ExportStage
    from tests.export.net import register

    register()
    stage = ExportStage(name="iphone", target="a17-pro", latency_repeats=1, shapes={"height": 16, "width": 16})
    artifact = Recipe(model="test-export-net", output="runs/c", stages=[stage]).run(quiet=True)["iphone"]
    assert (artifact.path / "model.mlpackage").is_dir() and not (artifact.path / "model.onnx").exists()
    assert artifact.metrics["coreml_spec_ok"] is True and artifact.metrics["target"] == "a17-pro"
    record = _export_only(artifact, load_suite("default"))
    row = record["metrics"]["export"]
    assert row["target"] == "a17-pro" and row["verified_on"] == artifact.metrics["verified_on"]
    assert row["implied_fps"] == pytest.approx(artifact.metrics["implied_fps"])
    assert f"verified on: {row['verified_on']}" in record["metrics"]["fidelity"]["notes"][0]
