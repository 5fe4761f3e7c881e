"""The lean forward (default) against the plain one (upstream's memory behaviour): same outputs, same keys.

Tolerances: fp32 relative error below 1e-5 (measured 2-4e-7: float32 vs upstream's complex128 RoPE and
matmuls over spans). bf16 below 1e-4: measured at most 2e-7 on these inputs (4 seeds, spans of 1 to 4096
tokens; the test runs 2 seeds), while plain bf16 itself is 4-5e-3 away from fp32.
"""

import pytest
import torch
from peft import LoraConfig

from compress.errors import UserInputError
from compress.models import WanS2VTransformer3DModel
from compress.models.s2v.chunks import add_residual, fill, local_split, spans
from compress.models.s2v.rope import apply_rope, apply_rope_complex, rope_cos_sin, rope_table
from compress.quant import QuantConfig, quantize_

from .conftest import randomize

# 3 latent frames of 4 x 6 tokens: 72 noisy, 24 reference and 21 motion tokens (117)
SHAPE = dict(frames=3, height=8, width=12)
CHUNKS = [5, 24, 72, 100, 4096]  # mid-frame, one frame, the noisy/reference boundary, most, all


def rel_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def outputs(model, inputs, mode, chunk=None, **overrides):
    with torch.no_grad(), model.using_memory_mode(mode, chunk):
        return model(**{**inputs, **overrides}).sample


@pytest.fixture
def inputs(tiny_random, make_inputs):
    return make_inputs(tiny_random, **SHAPE)


@pytest.mark.parametrize("chunk", CHUNKS)
def test_fp32_parity(tiny_random, inputs, chunk):
    plain = outputs(tiny_random, inputs, "plain")
    assert rel_error(outputs(tiny_random, inputs, "lean", chunk), plain) < 1e-5


@pytest.mark.parametrize("overrides", [dict(drop_motion_frames=True), dict(pose_latents=None, motion_latents=None)])
def test_fp32_parity_without_motion_or_pose(tiny_random, inputs, overrides):
    plain = outputs(tiny_random, inputs, "plain", **overrides)
    assert rel_error(outputs(tiny_random, inputs, "lean", 10, **overrides), plain) < 1e-5


def test_fp32_parity_batch_of_two(tiny_random, make_inputs):
    inputs = make_inputs(tiny_random, batch=2, **SHAPE)
    assert rel_error(outputs(tiny_random, inputs, "lean", 24), outputs(tiny_random, inputs, "plain")) < 1e-5


@pytest.mark.parametrize("seed", range(2))
def test_bf16_parity(make_inputs, seed):
    torch.manual_seed(seed)
    model = randomize(WanS2VTransformer3DModel.from_preset("tiny"), seed=seed).to(torch.bfloat16)
    inputs = {k: v.bfloat16() if k != "timestep" else v for k, v in make_inputs(model, seed=seed, **SHAPE).items()}
    plain = outputs(model, inputs, "plain")
    for chunk in (7, 4096):
        assert rel_error(outputs(model, inputs, "lean", chunk), plain) < 1e-4


def test_lean_is_default_and_switch_restores(tiny):
    assert (tiny.memory_mode, tiny.ffn_chunk_size) == ("lean", 4096)
    keys = list(tiny.state_dict())
    with tiny.using_memory_mode("plain", 16):
        assert (tiny.memory_mode, tiny.ffn_chunk_size) == ("plain", 16)
    assert (tiny.memory_mode, tiny.ffn_chunk_size) == ("lean", 4096)
    assert tiny.set_memory_mode("lean", 8) is tiny and tiny.ffn_chunk_size == 8
    assert list(tiny.state_dict()) == keys and not list(tiny.buffers())  # nothing new is saved
    for bad, field in (("fast", "memory mode"), (0, "ffn_chunk_size"), (2.5, "ffn_chunk_size")):
        with pytest.raises(UserInputError, match=field):
            tiny.set_memory_mode(bad) if field == "memory mode" else tiny.set_memory_mode("lean", bad)


def test_gradients_match(tiny_random, inputs):
    """With autograd on the lean forward adds out of place; outputs and gradients agree with plain."""
    grads = {}
    for mode in ("plain", "lean"):
        tiny_random.zero_grad()
        with tiny_random.using_memory_mode(mode, 24):
            loss = tiny_random(**inputs).sample.square().mean()
        loss.backward()
        grads[mode] = torch.cat([p.grad.flatten() for p in tiny_random.parameters() if p.grad is not None])
    assert rel_error(grads["lean"], grads["plain"]) < 1e-5


def test_gradient_checkpointing_in_lean_mode(tiny_random, inputs):
    tiny_random.enable_gradient_checkpointing()
    tiny_random.set_memory_mode("lean", 24)
    tiny_random(**inputs).sample.mean().backward()
    assert all(p.grad is not None for p in tiny_random.blocks.parameters())


def test_lean_block_updates_in_place(tiny_random):
    """Without autograd the lean block returns its input tensor, updated (one residual stream)."""
    block, dim = tiny_random.blocks[0], 64
    x = torch.randn(1, 10, dim)
    temb, context = torch.randn(1, 6, 2, dim), torch.randn(1, 16, dim)
    rope = rope_cos_sin(torch.randint(0, 8, (10, 3)), 16)
    with torch.no_grad():
        expected = block(x.clone(), temb, 6, context, rope)
        out = block(x, temb, 6, context, rope, chunk_size=3)
    assert out is x and rel_error(out, expected) < 1e-5


@pytest.mark.parametrize("change", ["quantize", "lora"])
def test_quantized_and_lora_models_keep_parity(tiny_random, inputs, change):
    if change == "quantize":
        quantize_(tiny_random, QuantConfig(scheme="int8_weight_only", ignore=list(tiny_random._keep_in_high_precision)))
    else:
        tiny_random.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_v", "ffn.net.2"]))
        with torch.no_grad():
            for name, p in tiny_random.named_parameters():
                if "lora_B" in name:
                    p.normal_(std=0.1)
    assert rel_error(outputs(tiny_random, inputs, "lean", 24), outputs(tiny_random, inputs, "plain")) < 1e-5


def test_rope_real_matches_upstream_complex():
    positions = torch.stack([torch.arange(-19, 81), torch.arange(100) % 60, torch.arange(100) % 104], dim=1)
    x = torch.randn(2, 100, 4, 128)
    table = rope_table(positions, 128, batch=2, heads=4)
    assert table.shape == (2, 100, 4, 64) and table.dtype == torch.complex128
    torch.testing.assert_close(apply_rope(x, *rope_cos_sin(positions, 128)), apply_rope_complex(x, table),
                               rtol=1e-5, atol=1e-5)


def test_spans_and_residuals():
    assert spans(10, 4) == [(0, 4), (4, 8), (8, 10)] and spans(10, None) == [(0, 10)] and spans(3, 8) == [(0, 3)]
    h = torch.zeros(1, 4, 2)
    assert [local_split(split, 4, h) for split in (0, 5, 9)] == [0, 1, 4]
    k, v = fill(spans(10, 4), lambda s, e: (torch.arange(s, e).view(1, -1), -torch.arange(s, e).view(1, -1)))
    assert k.tolist() == [list(range(10))] and v.tolist() == [[-i for i in range(10)]]
    x = torch.ones(2, 10, 3)
    with torch.no_grad():
        assert add_residual(x, spans(7, 3), lambda h, s, e: h * 2) is x
    assert x[:, :7].eq(3).all() and x[:, 7:].eq(1).all()
    y = torch.ones(2, 10, 3, requires_grad=True)
    out = add_residual(y, spans(7, 3), lambda h, s, e: h * 2)
    assert out is not y and out[:, :7].eq(3).all() and out[:, 7:].eq(1).all()
