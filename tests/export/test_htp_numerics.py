"""HTP numerics: the SiLU and GroupNorm rewrites keep the function, and the GroupNorm one makes large inputs right on
the HTP simulator; a small lip-sync student and tiny decoder trained on a
reference at 64x64 and exported at 96x96 (12x12 latents, where the HTP's fused 16-bit Swish was wrong) match
onnxruntime's QDQ run on the HTP simulator; a wrong HTP output fails the export (or, opted out, is marked)."""

import json

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from compress import Recipe
from compress.export import ExportRequest, load_target, run_export
from compress.export import qdq
from compress.export.pipeline import WRONG, WrongHtpOutputError
from compress.export.qnn import htp_options, htp_session
from compress.export.report import cpu_session, errors
from compress.export.targets import StaticShapes
from compress.models.students import LipSyncStudent
from compress.stages.distill import DistillStage
from compress.stages.export import ExportStage, stage_metrics
from compress.stages.reference import ReferenceStage
from tests.helpers import load_script


def test_split_silu_rewrites_only_silus_and_keeps_the_function(tmp_path):
    x, y = (helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 3, 5]) for n in "xy")
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 3, 5]) for n in ("a", "b", "c")]
    nodes = [helper.make_node("Sigmoid", ["x"], ["sx"]), helper.make_node("Sigmoid", ["y"], ["sy"]),
             helper.make_node("Mul", ["x", "sx"], ["a"]),  # SiLU
             helper.make_node("Mul", ["sy", "y"], ["b"]),  # SiLU, operands swapped
             helper.make_node("Mul", ["x", "sy"], ["c"])]  # a gate, not a SiLU: kept, and so is Sigmoid(y)
    model = helper.make_model(helper.make_graph(nodes, "g", [x, y], outs), opset_imports=[helper.make_opsetid("", 21)])
    feed = {"x": 4 * np.random.default_rng(0).standard_normal((2, 3, 5)).astype(np.float32),
            "y": 4 * np.random.default_rng(1).standard_normal((2, 3, 5)).astype(np.float32)}
    onnx.save(model, tmp_path / "before.onnx")
    assert qdq.split_silu(model) == 2
    onnx.checker.check_model(model)
    onnx.save(model, tmp_path / "after.onnx")
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("Sigmoid") == 1 and ops.count("Tanh") == 2
    before, after = (cpu_session(tmp_path / f"{n}.onnx").run(None, feed) for n in ("before", "after"))
    for b, a in zip(before, after):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def group_norms(shape, groups, epsilon=True):
    """y = Conv1x1(GroupNorm(x)) and y2 = Conv1x1(GroupNorm(x2)), 4 channels out: the student's norm ahead of a conv
    (on the HTP a GroupNorm must not write a graph output), x for a large input and x2 for a small one. `epsilon`
    False leaves the attribute out."""
    c, rng = shape[1], np.random.default_rng(2)
    values = {"scale": 1 + 0.3 * rng.standard_normal(c), "bias": 0.1 * rng.standard_normal(c),
              "w": rng.standard_normal((4, c, 1, 1)) / np.sqrt(c)}
    inits = [onnx.numpy_helper.from_array(v.astype(np.float32), k) for k, v in values.items()]
    attrs = {"num_groups": groups, **({"epsilon": 1e-5} if epsilon else {})}
    nodes = [helper.make_node("GroupNormalization", ["x", "scale", "bias"], ["n"], name="gn", **attrs),
             helper.make_node("Conv", ["n", "w"], ["y"], name="conv"),
             helper.make_node("GroupNormalization", ["x2", "scale", "bias"], ["n2"], name="gn_small", **attrs),
             helper.make_node("Conv", ["n2", "w"], ["y2"], name="conv_small")]
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in ("x", "x2")]
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [shape[0], 4, *shape[2:]]) for n in ("y", "y2")]
    graph = helper.make_graph(nodes, "g", inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


def large_and_small(shape, seed, large=1e6):
    """x: standard normal times `large` (the lipsync-450m's up-path norms read 2e5 to 1.4e7), its first group
    nearly constant (std 3e-3: variance 1e-5, the epsilon, weighs in); x2: standard normal."""
    rng = np.random.default_rng(seed)
    x = large * rng.standard_normal(shape)
    x[:, : shape[1] // 32] = 3e-3 * rng.standard_normal((shape[0], shape[1] // 32, *shape[2:]))
    return {"x": x.astype(np.float32), "x2": rng.standard_normal(shape).astype(np.float32)}


@pytest.mark.parametrize("epsilon", [True, False])
def test_prescale_group_norms_rewrites_only_large_inputs_and_keeps_the_function(tmp_path, epsilon):
    shape = (1, 64, 6, 6)
    model, feed = group_norms(shape, 32, epsilon), large_and_small(shape, 0)
    onnx.save(model, tmp_path / "before.onnx")
    peaks = qdq.input_peaks(tmp_path / "before.onnx", "GroupNormalization", [feed, large_and_small(shape, 1)], False)
    assert peaks["x"] > 1e6 and peaks["x2"] < 10
    assert qdq.prescale_group_norms(model, peaks) == 1
    onnx.checker.check_model(model)
    onnx.save(model, tmp_path / "after.onnx")
    mul = next(n for n in model.graph.node if n.op_type == "Mul")
    scale = onnx.numpy_helper.to_array(next(i for i in model.graph.initializer if i.name == mul.input[1]))
    assert mul.input[0] == "x" and 0.5 < peaks["x"] * scale <= 1 and np.log2(scale) == np.round(np.log2(scale))
    before, after = (cpu_session(tmp_path / f"{n}.onnx").run(None, feed) for n in ("before", "after"))
    for b, a in zip(before, after):  # the nearly constant group too: epsilon was scaled with x
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_input_peaks_is_empty_without_the_op(tmp_path):
    x, y = (helper.make_tensor_value_info(n, TensorProto.FLOAT, [2]) for n in "xy")
    onnx.save(helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])),
              tmp_path / "relu.onnx")
    assert qdq.input_peaks(tmp_path / "relu.onnx", "GroupNormalization", [{"x": np.ones(2, np.float32)}], False) == {}


@pytest.mark.parametrize("prescaled", [True, False])
def test_large_group_norm_inputs_are_right_on_the_htp_only_prescaled(qnn, tmp_path, monkeypatch, prescaled):
    """The HTP's GroupNormalization is wrong on inputs of std 1e6 (0.6 rel L2 measured), right once prescaled."""
    if not prescaled:
        monkeypatch.setattr(qdq, "prescale_group_norms", lambda model, peaks: 0)
    shape = (1, 64, 8, 8)
    onnx.save(group_norms(shape, 32), tmp_path / "float.onnx")
    calibration = [large_and_small(shape, seed) for seed in range(2)]
    qdq.quantize_qdq(tmp_path / "float.onnx", tmp_path / "qdq.onnx", calibration, "w8a16", for_qnn=True)
    feed = large_and_small(shape, 2)
    cpu = cpu_session(tmp_path / "qdq.onnx").run(None, feed)
    htp = htp_session(tmp_path / "qdq.onnx", htp_options(75, 57)).run(None, feed)
    rel = [errors(h, c)["rel_l2"] for h, c in zip(htp, cpu)]
    assert rel[1] <= 0.02  # the small input's norm, never rewritten
    assert (rel[0] <= 0.02) if prescaled else (rel[0] > 0.1), rel


def student():
    """A small lip-sync student whose norms and biases are moved off their init, as training does."""
    torch.manual_seed(0)
    model = LipSyncStudent(channels=32, channel_mult=(1, 2), mid_blocks=1, audio_channels=32, audio_dim=32)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(0.3 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    return model


def export(out, allow_wrong_htp=False):
    target = load_target("snapdragon-8gen3")
    target = target.model_copy(update={"shapes": StaticShapes(height=96, width=96)})
    model = student()
    example = model.example_inputs(height=96, width=96)
    calibration = [{k: v + 0.1 * torch.randn_like(v) for k, v in example.items()} for _ in range(3)]
    return run_export(ExportRequest(model, target, calibration=calibration, latency_repeats=1,
                                    allow_wrong_htp=allow_wrong_htp), out)


@pytest.fixture
def without_the_fix(monkeypatch):
    """Quantize as before the fix: SiLUs stay Mul(x, Sigmoid(x)), which the HTP fuses into its Swish."""
    monkeypatch.setattr(qdq, "split_silu", lambda model: 0)


def trained_export_stages() -> list:
    """A tiny reference, a small student and the tiny decoder trained on it, the chain exported at 96x96."""
    small = {"channels": 32, "mid_blocks": 1, "audio_channels": 32, "audio_dim": 32, "masked_input": "reference"}
    return [ReferenceStage(name="reference", max_clips=2, frames=8, size="64*64", num_inference_steps=2),
            DistillStage(name="student", input="source", student="lipsync-30m", student_config=small,
                         reference="reference", train={"steps": 40, "batch_size": 8, "lr": 1e-3}),
            DistillStage(name="decoder", input="source", student="tiny-frame-decoder", reference="reference",
                         train={"steps": 20, "batch_size": 2, "lr": 2e-3}),
            ExportStage(name="phone", input="student", target="snapdragon-8gen3", shapes={"height": 96, "width": 96},
                        reference="reference", decoder="decoder", calibration_batches=2, latency_repeats=1)]


@pytest.mark.slow  # ~1 min
def test_trained_student_and_decoder_at_96_match_onnxruntime_on_the_htp(qnn, tmp_path):
    result = Recipe(model="tiny", output="runs/t", stages=trained_export_stages()).run(root=tmp_path, quiet=True)
    assert result["student"].metrics["heldout_improvement"] > 0.3  # trained, not random
    report, decoder = (json.loads((result["phone"].path / part / "report.json").read_text())
                       for part in (".", "decoder"))
    assert report["calibration"]["source"]["ref_latent"].endswith("latents resized 8x8 -> 12x12)")
    for part in (report, decoder):
        htp = part["htp"]
        assert htp["status"] == "ran" and htp["htp_share"] == 1.0 and htp["numerics"] == "ok", htp
        assert htp["vs_cpu_qdq"]["rel_l2"] <= 0.02 and "Sigmoid" not in part["quantized"]["ops"]
    assert report["quantized"]["vs_float"]["rel_l2"] <= 0.05  # the student's latents; the decoder's bar: frames
    frames = decoder["chain_frames"]
    assert frames["qdq_htp_psnr_db"] >= 30 and frames["float_onnx_psnr_db"] >= 45, frames
    # the README's table of measured exports
    table = load_script("phone_table")
    row = table.measured(tmp_path / "runs/t").splitlines()[-1]
    assert row.startswith("| lipsync-30m | snapdragon-8gen3 | 96x96 | w8a16 | simulator | ") and "qdq htp" in row, row
    portrait = table._portrait_chain(result["student"].path, "snapdragon-8gen3")  # 480x832, from the student's config
    assert (portrait["height"], portrait["width"]) == (480, 832)
    face = report["chain"]["gmacs_per_frame"]
    assert row.split(" | ")[8] == f"{face:.1f} ({portrait['gmacs_per_frame']:.1f})"
    assert 0.8 < portrait["gmacs_per_frame"] / face / (480 * 832 / 96**2) <= 1  # convolutions follow the pixels


@pytest.mark.slow
def test_wrong_htp_output_fails_the_export_and_names_the_suspect(qnn, tmp_path, without_the_fix):
    with pytest.raises(WrongHtpOutputError, match=r"HTP output wrong: output '\w+' on the [\w ]+: HTP vs "
                                                  r"onnxruntime QDQ rel L2 0\.\d+ > 0\.02.*suspect: Mul \w+") as err:
        export(tmp_path)
    assert err.value.exit_code == 1
    htp = json.loads((tmp_path / "report.json").read_text())["htp"]
    assert htp["numerics"] == WRONG and htp["suspect"]["rel_l2"] > 0.1 and htp["vs_cpu_qdq"]["rel_l2"] > 0.1
    assert all(rel < 0.02 for rel in htp["suspect"]["inputs"].values())


@pytest.mark.slow
def test_allow_wrong_htp_keeps_the_export_marked(qnn, tmp_path, without_the_fix):
    report = export(tmp_path, allow_wrong_htp=True)
    assert report["htp"]["numerics"] == WRONG and (tmp_path / "model.qnn_ctx.onnx").is_file()
    metrics = stage_metrics(report)
    assert metrics["htp_numerics"] == WRONG and metrics["htp_rel_l2"] > 0.1 and metrics["htp_share"] == 1.0
