"""The smallest lip-sync student and the tiny VAE decoder: export, parity, w8a16 QDQ, whole graph on the HTP.
At 64x64 pixels, the target's default shapes."""

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
