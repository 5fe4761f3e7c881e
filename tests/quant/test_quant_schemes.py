"""Each scheme on a small model: real storage dtypes, sizes, numerics, and the kernel paths."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from compress.quant import (SCHEMES, Fp8KernelUnavailableError, QuantConfig, QuantizedLinear, quantize_,
                            relative_error)
from compress.quant import kernels

GRANULARITIES = ["per_channel", "per_tensor"]
# Relative output error of the whole TinyDiT (fp32) vs its float self. Measured on seeds 0-4, both
# granularities: fp8_weight_only 4.5e-2, fp8_dynamic 3.5e-2, int8_weight_only 7.0e-3, int8_dynamic 1.25e-2.
ERROR_BOUND = {"fp8_weight_only": 6e-2, "fp8_dynamic": 5e-2, "int8_weight_only": 1e-2, "int8_dynamic": 1.8e-2}


def _config(scheme: str, **kwargs) -> QuantConfig:
    return QuantConfig(scheme=scheme, allow_emulation=scheme == "fp8_dynamic", **kwargs)


@pytest.mark.parametrize("granularity", GRANULARITIES)
@pytest.mark.parametrize("scheme", SCHEMES)
def test_scheme_storage_and_error(scheme, granularity, tiny_dit, inputs):
    model = tiny_dit()
    x, t = inputs()
    reference = model(x, t)
    report = quantize_(model, _config(scheme, granularity=granularity))

    qlinears = {n: m for n, m in model.named_modules() if isinstance(m, QuantizedLinear)}
    assert sorted(qlinears) == sorted(report.quantized)
    assert not any(type(m) is nn.Linear for n, m in model.named_modules() if n in report.quantized)
    for qlinear in qlinears.values():
        assert qlinear.weight.dtype == (torch.float8_e4m3fn if scheme.startswith("fp8") else torch.int8)
        assert qlinear.weight_scale.dtype == torch.float32
        rows = qlinear.out_features if granularity == "per_channel" else 1
        assert qlinear.weight_scale.shape == (rows, 1)
        assert qlinear.bias.dtype == torch.float32
    y = model(x, t)
    assert y.dtype == reference.dtype and y.shape == reference.shape
    assert relative_error(y, reference) < ERROR_BOUND[scheme]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_bf16_model(scheme, tiny_dit, inputs):
    reference = tiny_dit()(*inputs())  # fp32 model, fp32 inputs
    model = tiny_dit(dtype=torch.bfloat16)
    report = quantize_(model, _config(scheme))
    quantized = [layer for layer in report.layers if layer.quantized]
    for layer in quantized:  # bf16 -> 1 byte per weight + an fp32 scale per output channel
        out_features, in_features = layer.shape
        assert layer.bytes_after == out_features * in_features + 4 * out_features
    ratio = sum(layer.bytes_before for layer in quantized) / sum(layer.bytes_after for layer in quantized)
    assert ratio > 1.9  # 2 * in / (in + 4) for in_features of 32..256
    assert next(m for m in model.modules() if isinstance(m, QuantizedLinear)).bias.dtype == torch.bfloat16
    y = model(*inputs(dtype=torch.bfloat16))
    assert y.dtype == torch.bfloat16
    # measured vs the fp32 model: bf16 alone 6.7e-3; with quantization at most 4.8e-2 (fp8) / 1.4e-2 (int8)
    assert relative_error(y, reference) < ERROR_BOUND[scheme] + 1e-2


def test_bytes_shrink_about_4x_from_fp32(tiny_dit):
    model = tiny_dit()
    report = quantize_(model, QuantConfig(scheme="int8_weight_only", granularity="per_tensor"))
    weights_before = sum(layer.bytes_before for layer in report.layers)
    weights_after = sum(layer.bytes_after for layer in report.layers)
    assert weights_before / weights_after == pytest.approx(4, rel=0.01)
    assert report.bytes_after < report.bytes_before / 3  # whole model, norms and embedding included


def test_per_channel_beats_per_tensor_on_uneven_rows():
    torch.manual_seed(0)
    linear = nn.Linear(256, 128)
    with torch.no_grad():
        linear.weight.mul_(torch.logspace(-1, 1, 128).unsqueeze(1))  # row magnitudes span 100x
    x = torch.randn(64, 256)
    errors = {}
    for granularity in GRANULARITIES:
        qlinear = QuantizedLinear.from_linear(linear, QuantConfig(scheme="int8_weight_only", granularity=granularity))
        errors[granularity] = relative_error(qlinear(x), linear(x))
    # measured: per_channel 3.8e-3, per_tensor 1.1e-2
    assert errors["per_channel"] < 5e-3
    assert errors["per_channel"] < errors["per_tensor"] / 2


def test_int8_matmul_emulation_is_exact():
    generator = torch.Generator().manual_seed(0)
    a = torch.randint(-128, 128, (5, 3000), dtype=torch.int8, generator=generator)
    b = torch.randint(-128, 128, (3000, 7), dtype=torch.int8, generator=generator)
    a[0], b[:, 0] = -128, -128  # worst case: every product 2**14
    assert torch.equal(kernels.int8_matmul_emulated(a, b), a.int() @ b.int())


@pytest.mark.parametrize("path", ["int_mm", "torchao_cpu"])
def test_int8_dynamic_kernel_paths_match_emulation(path, monkeypatch):
    torch.manual_seed(0)
    linear = nn.Linear(64, 48)
    qlinear = QuantizedLinear.from_linear(linear, QuantConfig(scheme="int8_dynamic"))
    x = torch.randn(3, 20, 64)
    emulated = qlinear(x)
    if path == "int_mm":  # the cuBLAS branch, run with the CPU torch._int_mm
        monkeypatch.setattr(kernels, "_int_mm_supported", lambda a, b: True)
    else:
        monkeypatch.setattr(kernels, "_cpu_has_int8_units", lambda: True)
    assert torch.equal(qlinear(x), emulated)


def test_fp8_dynamic_without_kernels_raises_clear_error(tiny_dit, inputs):
    model = tiny_dit()
    quantize_(model, QuantConfig(scheme="fp8_dynamic"))
    with pytest.raises(Fp8KernelUnavailableError) as info:
        model(*inputs())
    assert isinstance(info.value, RuntimeError)
    message = str(info.value)
    assert "compute capability >= 8.9" in message
    assert "fp8_weight_only" in message and "allow_emulation=True" in message


def test_fp8_dynamic_emulation_matches_dequantized_reference():
    torch.manual_seed(0)
    linear = nn.Linear(64, 32)
    for granularity in GRANULARITIES:
        config = QuantConfig(scheme="fp8_dynamic", granularity=granularity, allow_emulation=True)
        qlinear = QuantizedLinear.from_linear(linear, config)
        x = torch.randn(10, 64)
        xq, x_scale = kernels.quantize_activation(x, torch.float8_e4m3fn, per_row=granularity == "per_channel")
        expected = (xq.float() * x_scale) @ qlinear.dequantized_weight().t() + linear.bias
        torch.testing.assert_close(qlinear(x), expected, rtol=1e-6, atol=1e-6)


def test_dtype_casts_keep_quantized_storage(tiny_dit):
    model = tiny_dit()
    quantize_(model, QuantConfig(scheme="fp8_weight_only"))
    qlinear = model.blocks[0].ffn[0]
    weight, scale = qlinear.weight.clone(), qlinear.weight_scale.clone()
    model.to(torch.bfloat16)
    assert torch.equal(qlinear.weight.view(torch.uint8), weight.view(torch.uint8))
    assert qlinear.weight_scale.dtype == torch.float32 and torch.equal(qlinear.weight_scale, scale)
    assert qlinear.bias.dtype == torch.bfloat16
    model.half().float()
    assert qlinear.weight.dtype == torch.float8_e4m3fn and torch.equal(qlinear.weight_scale, scale)


def test_zero_weight_rows_quantize_to_zero():
    linear = nn.Linear(32, 16)
    with torch.no_grad():
        linear.weight.zero_()  # e.g. Wan's zero-initialised output projections
    for scheme in SCHEMES:
        qlinear = QuantizedLinear.from_linear(linear, _config(scheme))
        assert torch.isfinite(qlinear.weight_scale).all()
        torch.testing.assert_close(qlinear(torch.randn(4, 32)), linear.bias.expand(4, 16))
