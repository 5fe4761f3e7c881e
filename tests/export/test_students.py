"""The smallest lip-sync student and the tiny VAE decoder: export, parity, w8a16 QDQ, whole graph on the HTP.
At 64x64 pixels on the HTP, and at the 8 Gen 3 profile's 256x256 on onnxruntime's CPU."""

import onnx
import pytest

from compress.export import ExportRequest, load_target, run_export
from compress.export.qdq import qdq_summary
from compress.models.auto import build_preset

PROFILE = """name: phone-64
runtime: qnn-htp
precision: w8a16
opset: 21
shapes: {batch_size: 1, height: 64, width: 64}
qnn: {htp_arch: 75, soc_model: 57}
budget: {fps: 15, effective_gmacs_per_s: 4290, source: test}
"""


@pytest.mark.parametrize("preset", ["tiny-vae-decoder", "lipsync-30m"])
@pytest.mark.slow
def test_student_exports_quantizes_and_runs_on_the_htp(preset, tmp_path, qnn):
    (tmp_path / "phone.yaml").write_text(PROFILE)
    model = build_preset(preset)
    from compress.export import example_inputs

    target = load_target(tmp_path / "phone.yaml")
    example = example_inputs(model, target)
    batches = [example]
    report = run_export(ExportRequest(model, target, calibration=batches, latency_repeats=1), tmp_path / "out")
    assert report["float"]["parity_vs_torch"]["rel_l2"] < 1e-5
    assert set(qdq_summary(onnx.load(tmp_path / "out" / "model.qdq.onnx"))["activation_types"]) == {"uint16"}
    assert report["quantized"]["vs_float"]["rel_l2"] < 0.05  # measured 0.016 / 0.004 at 64x64
    htp = report["htp"]
    assert htp["status"] == "ran" and htp["htp_share"] == 1.0, htp
    assert htp["vs_cpu_qdq"]["rel_l2"] < 0.01  # measured 0.001 / 0.0003
    assert report["budget"]["gmacs_per_frame"] > 0


@pytest.mark.slow  # ~12 s
def test_a_small_student_exports_at_the_face_crop_profiles_shapes(tmp_path):
    """The 8 Gen 3 profile's 256x256 default, on onnxruntime's CPU (a profile extending it)."""
    import torch

    from compress.models.students import LipSyncStudent

    (tmp_path / "cpu-8gen3.yaml").write_text("name: cpu-8gen3\nextends: snapdragon-8gen3\nruntime: cpu\nqnn: null\n")
    torch.manual_seed(0)
    model = LipSyncStudent(channels=32, mid_blocks=1, audio_channels=32, audio_dim=32)
    report = run_export(ExportRequest(model, load_target(tmp_path / "cpu-8gen3.yaml"), precision="none",
                                      latency_repeats=1), tmp_path / "out")
    assert report["float"]["inputs"] == {"audio": [1, 80, 16], "ref_latent": [1, 16, 32, 32],
                                         "masked_latent": [1, 16, 32, 32]}
    assert report["float"]["parity_vs_torch"]["rel_l2"] < 1e-5
