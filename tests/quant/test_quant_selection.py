"""targets / ignore globs, the report, and the config's JSON form."""

from __future__ import annotations

import json

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from compress.quant import WAN_S2V_HIGH_PRECISION, QuantConfig, QuantizedLinear, quantize_


def test_targets_and_ignore_are_respected_and_reported(tiny_dit):
    model = tiny_dit()
    config = QuantConfig(scheme="int8_weight_only", targets=["blocks.*", "head.head"], ignore=["*.ffn.2", "head.*"])
    report = quantize_(model, config)

    assert report.quantized == [f"blocks.{i}.{layer}" for i in range(2)
                                for layer in ("self_attn.q", "self_attn.k", "self_attn.v", "self_attn.o", "ffn.0")]
    assert report.kept == {
        "text_embedding.0": "not in targets",
        "text_embedding.2": "not in targets",
        "time_projection.1": "not in targets",
        "blocks.0.ffn.2": "matched ignore pattern '*.ffn.2'",
        "blocks.1.ffn.2": "matched ignore pattern '*.ffn.2'",
        "head.head": "matched ignore pattern 'head.*'",
    }
    assert len(report.layers) == len([m for m in tiny_dit().modules() if isinstance(m, nn.Linear)])
    for name, _ in report.kept.items():
        assert type(model.get_submodule(name)) is nn.Linear
    for name in report.quantized:
        assert isinstance(model.get_submodule(name), QuantizedLinear)
    assert "kept head.head: matched ignore pattern 'head.*'" in report.summary()
    json.dumps(report.to_dict())


def test_fp8_dynamic_keeps_shapes_the_kernel_cannot_take(tiny_dit):
    report = quantize_(tiny_dit(), QuantConfig(scheme="fp8_dynamic"))
    assert report.kept == {"head.head": "shape (24, 64) not divisible by 16 (fp8_scaled_mm kernel)"}


def test_multihead_attention_out_proj_is_kept():
    model = nn.ModuleDict({"attn": nn.MultiheadAttention(32, 4, batch_first=True)})
    report = quantize_(model, QuantConfig(scheme="int8_weight_only"))
    assert report.kept == {"attn.out_proj": "out_proj of nn.MultiheadAttention (its weight is read directly)"}
    x = torch.randn(2, 5, 32)
    model["attn"](x, x, x)


def test_bare_linear_is_rejected():
    with pytest.raises(ValueError, match="wrap"):
        quantize_(nn.Linear(16, 16), QuantConfig(scheme="int8_weight_only"))


def test_wan_s2v_high_precision_recipe_on_native_names():
    names = ["text_embedding.0", "text_embedding.2", "time_embedding.0", "time_embedding.2", "time_projection.1",
             "blocks.3.self_attn.q", "blocks.3.cross_attn.o", "blocks.39.ffn.0", "blocks.39.ffn.2",
             "audio_injector.injector.2.q", "audio_injector.injector_adain_layers.11.linear",
             "casual_audio_encoder.encoder.final_linear", "head.head"]
    config = QuantConfig(scheme="fp8_dynamic", ignore=WAN_S2V_HIGH_PRECISION)
    quantized = [name for name in names if config.skip_reason(name, 5120, 5120) is None]
    assert quantized == ["blocks.3.self_attn.q", "blocks.3.cross_attn.o", "blocks.39.ffn.0", "blocks.39.ffn.2",
                         "audio_injector.injector.2.q", "audio_injector.injector_adain_layers.11.linear"]


def test_config_json_round_trip_and_validation():
    config = QuantConfig(scheme="fp8_dynamic", granularity="per_tensor", ignore=["head.*"], allow_emulation=True)
    data = json.loads(config.to_json())
    assert data["format_version"] == 1 and data["ignore"] == ["head.*"]
    assert QuantConfig.from_json(config.to_json()) == config
    assert QuantConfig.from_dict(data) == config
    assert config.with_ignore("blocks.0.ffn.0", "head.*").ignore == ("head.*", "blocks.0.ffn.0")
    with pytest.raises(ValidationError):
        QuantConfig(scheme="int4")
    with pytest.raises(ValidationError):
        QuantConfig.from_dict({**data, "format_version": 2})
    with pytest.raises(ValidationError):
        QuantConfig.from_dict({**data, "granularity": "per_group"})
