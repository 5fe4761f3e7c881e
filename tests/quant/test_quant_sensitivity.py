"""Per-layer sensitivity ranks an ill-conditioned layer worst; relative_error."""

from __future__ import annotations

import copy
import math

import torch

from compress.quant import QuantConfig, layer_sensitivity, most_sensitive, quantize_, relative_error


def test_relative_error():
    reference = torch.tensor([3.0, 4.0])
    assert relative_error(reference, reference) == 0.0
    assert relative_error(torch.tensor([3.0, 4.5]), reference) == 0.1
    assert relative_error(torch.zeros(2), torch.zeros(2)) == 0.0
    assert math.isinf(relative_error(torch.ones(2), torch.zeros(2)))
    assert relative_error(reference.bfloat16(), reference) == 0.0


def test_outlier_layer_is_most_sensitive_and_model_is_restored(tiny_dit, inputs):
    model = tiny_dit()
    with torch.no_grad():  # a few huge weights: per-tensor int8 rounds the rest of this layer to ~0
        model.blocks[0].ffn[0].weight[:3, :2] = 40.0
    x, t = inputs()
    reference = model(x, t)
    modules_before = dict(model.named_modules())
    config = QuantConfig(scheme="int8_weight_only", granularity="per_tensor", ignore=["head.*"])

    sensitivity = layer_sensitivity(model, config, lambda m: m(x, t))

    assert "head.head" not in sensitivity and len(sensitivity) == 15
    assert most_sensitive(sensitivity, 1) == ["blocks.0.ffn.0"]
    ranked = sorted(sensitivity.values(), reverse=True)
    assert ranked[0] > 5 * ranked[1]
    assert dict(model.named_modules()) == modules_before and torch.equal(model(x, t), reference)

    def quantized_error(cfg: QuantConfig) -> float:
        quantized = copy.deepcopy(model)
        quantize_(quantized, cfg)
        return relative_error(quantized(x, t), reference)

    mixed = config.with_ignore(*most_sensitive(sensitivity, 1))
    assert quantized_error(mixed) < quantized_error(config) / 5
