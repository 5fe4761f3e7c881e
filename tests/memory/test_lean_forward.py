"""The planner and the two memory modes of the DiT forward: lean (default) against plain (upstream-like)."""

import json

import pytest

from compress.errors import UserInputError
from compress.memory import Workload, plan_memory
from compress.memory.analytic import dit_activations
from compress.memory.simulate import simulate_dit
from tests.helpers import run_cli

GIB = 2**30
UPSTREAM_480P_48 = 6.24 * GIB  # teacher.md: upstream's activations above weights at 480x832, 48 frames


def total(items):
    return sum(item.bytes for item in items)


@pytest.mark.parametrize("chunk", [512, 1000])
def test_analytic_follows_lean_spans(mid_spec, chunk):
    """Span sizes that split frames and the noisy/reference boundary; the analytic model tracks them."""
    simulated = simulate_dit(mid_spec, 1, 12, (32, 56), True, chunk_size=chunk)
    assert total(dit_activations(mid_spec, 1, 12, (32, 56), True, chunk_size=chunk)) == pytest.approx(
        simulated.activations, rel=0.02)


def test_lean_is_a_fraction_of_plain(mid_spec):
    plain = simulate_dit(mid_spec, 1, 12, (32, 56), True, memory_mode="plain")
    lean = simulate_dit(mid_spec, 1, 12, (32, 56), True, chunk_size=512)
    assert plain.where.startswith("blocks.") and lean.activations < 0.25 * plain.activations


def test_teacher_lean_target_and_fp8_4090_verdict(teacher_spec):
    """Lean at most a quarter of upstream's 6.24 GiB at 480x832 x 48; the FP8 teacher fits one 4090 with the
    encoders on CPU and the VAE loaded after the DiT."""
    assert total(dit_activations(teacher_spec, 1, 12, (104, 60), True)) <= 0.25 * UPSTREAM_480P_48
    plan = plan_memory(teacher_spec.quantized("fp8_weight_only"), "rtx4090", Workload(480, 832, frames=48),
                       "offload", suggest=False)
    assert plan.fits and plan.margin_bytes > 4 * GIB and plan.memory_mode == "lean"


def test_plain_mode_is_simulated_only(tiny_spec):
    workload = Workload(128, 128, frames=16)  # at 64x64 the audio encoder, not a block, sets the peak
    with pytest.raises(UserInputError, match="simulated"):
        plan_memory(tiny_spec, "rtx4090", workload, memory_mode="plain")
    with pytest.raises(UserInputError, match="memory mode"):
        plan_memory(tiny_spec, "rtx4090", workload, memory_mode="fast")
    plain = plan_memory(tiny_spec, "rtx4090", workload, source="simulated", memory_mode="plain")
    lean = plan_memory(tiny_spec, "rtx4090", workload, source="simulated")
    assert plain.to_dict()["memory_mode"] == "plain"
    assert plain.gpus[0].phases["denoise"] > lean.gpus[0].phases["denoise"]


def test_vram_cli_memory_mode(monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "vram", "tiny", "-t", "rtx4090", "--size", "64*64", "--frames", "8",
                           "--layout", "offload", "--offload", "vae", "--source", "simulated", "--memory-mode", "plain",
                           "--json")
    data = json.loads(out)
    assert code == 0 and data["memory_mode"] == "plain"
    assert any(i["name"].startswith("DiT forward, plain") for i in data["gpus"][0]["breakdown"])
    code, _, err = run_cli(monkeypatch, capsys, "vram", "tiny", "-t", "rtx4090", "--memory-mode", "plain")
    assert code == 2 and "simulated" in err
