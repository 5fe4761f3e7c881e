"""Cost figures: sizes from the safetensors headers, MACs from torch's flop counter, ONNX timing, planner fit."""

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from compress import Recipe
from compress.errors import UserInputError
from compress.evaluate import cost
from compress.evaluate.suite import Cost, Fit
from compress.memory.planner import plan_memory
from compress.memory.spec import ModelSpec
from compress.memory.workload import Workload
from compress.stages.quantize import QuantizeStage
from tests.engine_fixtures import NoteStage


@pytest.fixture
def int8(workdir):
    recipe = Recipe(model="tiny", output="runs/c", stages=[QuantizeStage(name="int8", scheme="int8_weight_only")])
    return recipe.run(quiet=True)["int8"]


def test_sizes_come_from_the_headers_and_committed_files(int8):
    size = cost.size_cost(int8)
    assert size["parameters"] == int8.manifest["model"]["parameters"]
    assert size["bytes_by_dtype"]["int8"] > 0 and size["bytes"] == sum(size["bytes_by_dtype"].values())
    assert size["disk_bytes"] == sum(f["bytes"] for f in int8.manifest["files"].values())
    (int8.path / "eval").mkdir()
    (int8.path / "eval" / "x.json").write_text("{}" * 1000)  # results written later do not count
    assert cost.size_cost(int8)["disk_bytes"] == size["disk_bytes"]


def test_gmacs_per_frame_counts_multiply_accumulates():
    layer = torch.nn.Linear(64, 32)
    x = torch.randn(10, 64)
    out = cost.gmacs_per_frame(lambda: {"frames": np.zeros((4, 8, 8, 3), np.uint8), "y": layer(x)})
    assert out["gmacs_per_frame"] == pytest.approx(10 * 64 * 32 / 4 / 1e9)  # MACs of the matmul, per frame


def test_median_seconds_runs_warmup_then_repeats():
    calls = []
    seconds = cost.median_seconds(lambda: calls.append(1), repeats=3, warmup=2)
    assert len(calls) == 5 and 0 <= seconds < 0.1


def _onnx_model(path, batch):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4])
    w = helper.make_tensor("w", TensorProto.FLOAT, [8, 4], np.ones(32, np.float32))
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [x], [y], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_onnx_latency_on_static_shapes_and_a_clear_error_on_dynamic_ones(tmp_path):
    timed = cost.onnx_latency(_onnx_model(tmp_path / "model.onnx", 2), Cost(latency_repeats=2, warmup=1))
    assert timed["onnx_ms"] > 0 and timed["onnx_provider"] == "CPUExecutionProvider"
    with pytest.raises(UserInputError, match=r"input 'x' has a dynamic shape \['N', 8\]"):
        cost.onnx_latency(_onnx_model(tmp_path / "dynamic.onnx", "N"), Cost())


def test_fit_is_the_planners_verdict_per_target(int8):
    fit = cost.memory_fit(int8, Fit(targets=["rtx4090", "h100"], size="480*832", frames=80))
    assert fit["status"] == "ok" and set(fit["targets"]) == {"rtx4090", "h100"}
    plan = plan_memory(ModelSpec.load(int8.path), "rtx4090", Workload(480, 832, 80), "single", suggest=False)
    assert fit["targets"]["rtx4090"] == {"fits": plan.fits, "peak_bytes": plan.peak_bytes,
                                         "margin_bytes": plan.margin_bytes, "memory_bytes": plan.target.memory_bytes}
    unknown = cost.memory_fit(int8, Fit(targets=["gpu9000"]))
    assert unknown["status"].startswith("not planned: ") and "gpu9000" in unknown["status"]



def test_a_model_the_planner_does_not_know_gives_the_reason_without_its_path(workdir):
    decoder = Recipe(model="tiny-vae-decoder", output="runs/d", stages=[NoteStage(text="x")]).run(quiet=True)["source"]
    fit = cost.memory_fit(decoder, Fit(targets=["h100"]))
    assert fit == {"status": "not planned: memory planning knows the Wan S2V DiT only (TinyVAEDecoder)"}

def test_peak_memory_sees_an_allocation():
    with cost.PeakMemory(torch.device("cpu")) as baseline:
        pass
    with cost.PeakMemory(torch.device("cpu")) as peak:
        block = np.ones(64 * 2**20, np.uint8)  # 64 MiB, touched
        block.sum()
    assert peak.result()["peak_rss_bytes"] >= baseline.result()["peak_rss_bytes"] + 48 * 2**20
