"""Export of a small model with a custom RMSNorm, LayerNorm, attention, GELU and SiLU: module replacement
parity, float parity in onnxruntime, w8a16 QDQ types and error, HTP placement, clear errors."""

import json

import onnx
import pytest
import torch

from compress.errors import UserInputError
from compress.export import ExportRequest, UnsupportedOpsError, load_target, run_export
from compress.export.onnx_export import check_static_graph, make_exportable
from compress.export.qdq import qdq_summary
from compress.export.targets import StaticShapes
from tests.export.net import DynamicNet, SinhNet, ExportNet


def net(cls=ExportNet):
    torch.manual_seed(0)
    return cls()


def phone():
    """The 8 Gen 3 profile at 64x64 (these nets are small; 256x256 is the profile's default)."""
    return load_target("snapdragon-8gen3").model_copy(update={"shapes": StaticShapes(height=64, width=64)})


def calibration(model, count=4):
    return [model.example_inputs(seed=i) for i in range(1, count + 1)]


@pytest.mark.parametrize("module", [torch.nn.RMSNorm(32, eps=1e-5), torch.nn.LayerNorm(32)])
def test_replacements_match_the_originals(module):
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn_like(p))
    holder = torch.nn.Sequential(module)
    x = 3 * torch.randn(2, 7, 32)
    expected = holder(x)
    assert make_exportable(holder) == [f"0 ({type(module).__name__})"]
    assert type(holder[0]).__name__.startswith("Exportable")
    torch.testing.assert_close(holder(x), expected, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def htp_export(tmp_path_factory):
    out = tmp_path_factory.mktemp("htp")
    model = net()
    return run_export(ExportRequest(model, phone(), calibration=calibration(model),
                                    latency_repeats=2), out), out


def test_float_export_matches_torch_and_quantizes_to_w8a16(htp_export):
    report, out = htp_export
    assert sorted(report["replaced_modules"]) == ["norm1 (CustomRMSNorm)", "norm2 (LayerNorm)"]
    assert report["replacement_parity"]["max_abs"] < 1e-5
    assert report["float"]["parity_vs_torch"]["max_abs"] < 1e-4 and report["float"]["parity_vs_torch"]["rel_l2"] < 1e-5
    assert report["float"]["inputs"] == {"latents": [1, 4, 8, 8], "audio": [1, 1, 8]}
    types = qdq_summary(onnx.load(out / "model.qdq.onnx"))
    assert set(types["activation_types"]) == {"uint16"}
    assert types["weight_types"]["int8"] >= 7  # 5 linear + 2 conv weights
    assert types["weight_granularity"]["axis 0"] >= 2  # conv weights per output channel (MatMul: per tensor)
    # measured: 0.097 (held-out example input outside the calibrated ranges); bound with margin
    assert report["quantized"]["vs_float"]["rel_l2"] < 0.2
    assert report["cpu_latency"]["quantized_over_float"] > 0
    assert json.loads((out / "report.json").read_text())["target"] == "snapdragon-8gen3"


def test_whole_graph_runs_on_the_htp_simulator(qnn, htp_export):
    report, out = htp_export
    htp = report["htp"]
    assert htp["status"] == "ran", htp.get("reason")
    assert htp["htp_share"] == 1.0 and htp["not_on_htp"] == {} and htp["partitions"] == 1
    assert (out / "model.qnn_ctx.onnx").is_file() and (out / "model.qnn_ctx_qnn.bin").stat().st_size > 0
    assert htp["vs_cpu_qdq"]["rel_l2"] < 0.02  # measured 0.007: the simulator agrees with onnxruntime's QDQ


def test_cpu_target_quantizes_w8a8_and_skips_the_htp(tmp_path):
    model = net()
    report = run_export(ExportRequest(model, load_target("cpu"), calibration=calibration(model, 2),
                                      latency_repeats=1), tmp_path)
    assert "htp" not in report and report["precision"] == "w8a8"
    assert set(qdq_summary(onnx.load(tmp_path / "model.qdq.onnx"))["activation_types"]) == {"uint8"}
    assert report["quantized"]["vs_float"]["rel_l2"] < 0.3


def test_data_dependent_output_shape_is_a_clear_error(tmp_path):
    with pytest.raises(UserInputError, match=r"output '.*' dimension 0 is dynamic \('.*'\); NPU targets need "
                                             r"static shapes"):
        run_export(ExportRequest(net(DynamicNet), phone()), tmp_path)


def test_dynamic_graph_input_is_named():
    graph = onnx.helper.make_graph([], "g", [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT,
                                                                                ["batch", 4])], [])
    with pytest.raises(UserInputError, match=r"m.onnx: input 'x' dimension 0 is dynamic \('batch'\)"):
        check_static_graph(onnx.helper.make_model(graph), "m.onnx")


def test_unsupported_ops_are_listed_before_quantizing(tmp_path):
    with pytest.raises(UnsupportedOpsError, match="snapdragon-8gen3 does not run op.s. Sinh"):
        run_export(ExportRequest(net(SinhNet), phone(), latency_repeats=1), tmp_path)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["op_coverage"]["unsupported"] == ["Sinh"] and "quantized" not in report
    assert not (tmp_path / "model.qdq.onnx").exists()
