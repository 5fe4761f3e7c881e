"""Quantize -> save safetensors -> fresh (meta-device) model -> apply structure -> load: identical outputs."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from compress.quant import (
    QUANT_CONFIG_NAME,
    SCHEMES,
    QuantConfig,
    QuantizedLinear,
    apply_quantized_structure,
    load_quantized,
    quantize_,
    save_quantized,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def _quantized(tiny_dit, scheme: str, granularity: str = "per_channel"):
    model = tiny_dit()
    config = QuantConfig(scheme=scheme, granularity=granularity, ignore=["text_embedding.*"],
                         allow_emulation=scheme == "fp8_dynamic")
    quantize_(model, config)
    return model, config


@pytest.mark.parametrize("scheme", SCHEMES)
def test_round_trip_into_meta_model_is_bitwise_identical(scheme, tiny_dit, inputs, tmp_path):
    model, config = _quantized(tiny_dit, scheme, "per_tensor" if scheme == "int8_dynamic" else "per_channel")
    expected = model(*inputs())
    save_quantized(model, tmp_path, config)

    with safe_open(tmp_path / "model.safetensors", framework="pt") as handle:
        stored = {key: handle.get_tensor(key) for key in handle.keys()}
    assert stored["blocks.0.ffn.0.weight"].dtype in (torch.int8, torch.float8_e4m3fn)
    assert stored["blocks.0.ffn.0.weight_scale"].dtype == torch.float32
    assert stored["text_embedding.0.weight"].dtype == torch.float32  # ignored: kept as is
    structure = json.loads((tmp_path / QUANT_CONFIG_NAME).read_text())
    assert structure["config"]["scheme"] == scheme and "blocks.1.ffn.2" in structure["quantized_modules"]

    fresh = tiny_dit(device="meta")
    load_quantized(fresh, tmp_path)
    assert not any(t.is_meta for t in fresh.state_dict().values())
    assert isinstance(fresh.blocks[1].ffn[2], QuantizedLinear) and fresh.blocks[1].ffn[2].scheme == scheme
    assert torch.equal(fresh(*inputs()), expected)


def test_apply_structure_rejects_a_non_linear_module(tiny_dit):
    structure = {"config": {"scheme": "int8_weight_only"}, "quantized_modules": ["trainable_cond_mask"]}
    with pytest.raises(TypeError, match="trainable_cond_mask.*Embedding"):
        apply_quantized_structure(tiny_dit(device="meta"), structure)


def test_apply_structure_accepts_json_text_and_can_switch_emulation(tiny_dit, tmp_path):
    model, config = _quantized(tiny_dit, "fp8_dynamic")
    save_quantized(model, tmp_path, config)
    fresh = apply_quantized_structure(tiny_dit(device="meta"), (tmp_path / QUANT_CONFIG_NAME).read_text(),
                                      allow_emulation=False)
    assert fresh.blocks[0].ffn[0].allow_emulation is False


def test_reload_in_a_fresh_process(tiny_dit, inputs, tmp_path):
    expected = {}
    for scheme in ("int8_dynamic", "fp8_weight_only"):
        model, config = _quantized(tiny_dit, scheme)
        save_quantized(model, tmp_path / scheme, config)
        expected[scheme] = model(*inputs())
    torch.save(expected, tmp_path / "expected.pt")
    script = textwrap.dedent(f"""
        import importlib.util, torch
        from compress.quant import load_quantized
        spec = importlib.util.spec_from_file_location("toys", {str(Path(__file__).with_name("conftest.py"))!r})
        toys = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(toys)
        expected = torch.load({str(tmp_path / "expected.pt")!r}, weights_only=True)
        for scheme, output in expected.items():
            model = load_quantized(toys.make_tiny_dit(device="meta"), {str(tmp_path)!r} + "/" + scheme)
            assert torch.equal(model(*toys.make_inputs()), output), scheme
        print("identical", sorted(expected))
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "identical ['fp8_weight_only', 'int8_dynamic']" in result.stdout
