"""The chain exported together: the tiny VAE decoder beside the student, calibrated on its latents, and the
chain's frames from onnxruntime (float, QDQ) and the HTP against the torch chain."""

import json

import pytest
import torch

from compress.export import ExportRequest, load_target, run_export
from compress.export.chain_frames import export_decoder
from compress.export.targets import StaticShapes
from compress.models.students import DECODER_PRESETS, LipSyncStudent, TinyVAEDecoder
from compress.stages.export import stage_metrics
from tests.helpers import run_cli

SMALL = {"channels": 32, "mid_blocks": 1, "audio_channels": 32, "audio_dim": 32}


def chain_export(target, out, precision=None):
    torch.manual_seed(0)
    student, decoder = LipSyncStudent(**SMALL), TinyVAEDecoder(**DECODER_PRESETS["tiny-frame-decoder"])
    calibration = [student.example_inputs(1, target.shapes.height, target.shapes.width) for _ in range(2)]
    for i, batch in enumerate(calibration):  # distinct batches (example_inputs is seeded)
        calibration[i] = {k: v + 0.1 * (i + 1) * torch.randn_like(v) for k, v in batch.items()}
    request = ExportRequest(student, target, precision, calibration, "test", latency_repeats=1)
    student_report = run_export(request, out)
    return {**student_report, "decoder": export_decoder(request, decoder, out)}


@pytest.mark.slow  # ~15 s (two dynamo exports)
def test_decoder_exports_beside_the_student_and_the_float_chain_matches_torch(tmp_path):
    (tmp_path / "cpu.yaml").write_text("name: cpu-8gen3\nextends: snapdragon-8gen3\nruntime: cpu\nqnn: null\n"
                                       "shapes: {height: 64, width: 64}\n")
    target = load_target(tmp_path / "cpu.yaml")
    decoder = chain_export(target, tmp_path / "out", precision="none")["decoder"]
    assert json.loads((tmp_path / "out" / "decoder" / "report.json").read_text())["float"]["inputs"] == {
        "latents": [1, 16, 8, 8], "previous": [1, 16, 8, 8]}
    assert decoder["calibration"] == {"batches": 2, "source": "the student's latents on its calibration (test)"}
    assert decoder["float"]["parity_vs_torch"]["rel_l2"] < 1e-5 and "quantized" not in decoder
    frames = decoder["chain_frames"]
    assert frames["float_onnx_psnr_db"] >= 45 and "qdq_cpu_psnr_db" not in frames


@pytest.mark.slow  # ~45 s
def test_chain_frames_on_the_htp(tmp_path, qnn):
    target = load_target("snapdragon-8gen3").model_copy(update={"shapes": StaticShapes(height=64, width=64)})
    report = chain_export(target, tmp_path)
    frames = report["decoder"]["chain_frames"]
    assert frames["float_onnx_psnr_db"] >= 45  # measured 100 (the cap): identical after clipping
    assert frames["qdq_htp_psnr_db"] >= 30, frames  # measured 50.1, as onnxruntime's QDQ chain
    assert abs(frames["qdq_htp_psnr_db"] - frames["qdq_cpu_psnr_db"]) < 3
    metrics = stage_metrics(report)
    assert metrics["chain_qdq_htp_psnr_db"] == frames["qdq_htp_psnr_db"]
    assert metrics["decoder_htp_numerics"] == "ok" and metrics["decoder_htp_rel_l2"] <= 0.02
    assert (tmp_path / "decoder" / "model.qnn_ctx.onnx").is_file()


def test_cli_decoder_must_be_a_tiny_vae_decoder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(monkeypatch, capsys, "export", "onnx", "lipsync-30m", "--target", "cpu",
                             "--decoder", "lipsync-30m")
    assert code == 2 and "Traceback" not in out + err
    assert "the decoder must be a TinyVAEDecoder; found a LipSyncStudent" in " ".join(err.split())
    assert not (tmp_path / "export").exists()
