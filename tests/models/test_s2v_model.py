import pytest
import torch

from compress.models import PRESETS, UnknownPresetError, WanS2VTransformer3DModel, get_preset_config

# teacher.md: parameters of the released DiT, split into the plain Wan-14B backbone and the S2V extras
RELEASE_BREAKDOWN = {
    "backbone": 14_288_491_584,
    "audio_injector_attention": 1_258_659_840,
    "audio_injector_adaln": 629_268_480,
    "audio_encoder": 95_051_545,
    "frame_packer": 23_936_000,
    "pose_and_segment_embedding": 348_160,
}


def test_release_preset_parameter_counts_on_meta():
    model = WanS2VTransformer3DModel.from_preset("wan2.2-s2v-14b", device="meta")
    assert all(p.is_meta for p in model.parameters())
    assert sum(p.numel() for p in model.parameters()) == 16_295_755_609
    breakdown = model.parameter_breakdown()
    assert breakdown == RELEASE_BREAKDOWN
    assert sum(v for k, v in breakdown.items() if k != "backbone") == 2_007_264_025


def test_presets_and_unknown_preset():
    assert {"wan2.2-s2v-14b", "tiny"} <= set(PRESETS)
    with pytest.raises(UnknownPresetError, match="known presets: .*tiny"):
        get_preset_config("huge")
    with pytest.raises(ValueError, match="huge"):
        WanS2VTransformer3DModel.from_preset("huge", device="meta")


def test_tiny_forward_shapes(tiny, make_inputs, forward):
    for batch, frames, height, width in [(1, 2, 8, 8), (2, 3, 8, 16)]:
        out = forward(tiny, make_inputs(tiny, batch, frames, height, width))
        assert out.shape == (batch, 16, frames, height, width)
        assert torch.isfinite(out).all() and out.abs().sum() > 0


def test_optional_inputs(tiny_random, make_inputs, forward):
    inputs = make_inputs(tiny_random, motion_frames=7)
    out = forward(tiny_random, inputs)
    zeros = lambda t: torch.zeros_like(t)  # noqa: E731
    torch.testing.assert_close(forward(tiny_random, inputs, pose_latents=None),
                               forward(tiny_random, inputs, pose_latents=zeros(inputs["pose_latents"])))
    torch.testing.assert_close(forward(tiny_random, inputs, motion_latents=None),
                               forward(tiny_random, inputs, motion_latents=zeros(inputs["motion_latents"])))
    # fewer than 19 motion frames are zero-padded in front (nearest frames stay nearest)
    padded = torch.cat([zeros(inputs["motion_latents"])[:, :, :12], inputs["motion_latents"]], dim=2)
    torch.testing.assert_close(out, forward(tiny_random, inputs, motion_latents=padded))
    dropped = forward(tiny_random, inputs, drop_motion_frames=True)
    assert dropped.shape == out.shape and not torch.allclose(dropped, out)
    # text shorter than text_len is zero-padded, not masked
    text = inputs["encoder_hidden_states"]
    padded_text = torch.cat([text, text.new_zeros(1, tiny_random.config.text_len - text.shape[1], text.shape[2])], 1)
    torch.testing.assert_close(out, forward(tiny_random, inputs, encoder_hidden_states=padded_text))


def test_input_validation(tiny, make_inputs, forward):
    inputs = make_inputs(tiny, frames=2)
    with pytest.raises(ValueError, match="4 x latent frames = 8"):
        forward(tiny, inputs, audio_features=inputs["audio_features"][..., :6])
    with pytest.raises(ValueError, match="ref_latents"):
        forward(tiny, inputs, ref_latents=inputs["ref_latents"][..., :4])
    too_long = torch.zeros(1, tiny.config.text_len + 1, tiny.config.text_dim)
    with pytest.raises(ValueError, match="encoder_hidden_states"):
        forward(tiny, inputs, encoder_hidden_states=too_long)


def test_audio_injectors_start_at_zero(tiny, make_inputs, forward):
    inputs = make_inputs(tiny)
    other_audio = torch.randn_like(inputs["audio_features"])
    torch.testing.assert_close(forward(tiny, inputs), forward(tiny, inputs, audio_features=other_audio),
                               rtol=0, atol=0)
    with torch.no_grad():
        for injector in tiny.audio_injectors:
            injector.attn.to_out[0].weight.normal_(std=0.2)
    assert not torch.allclose(forward(tiny, inputs), forward(tiny, inputs, audio_features=other_audio))


def test_injectors_match_block_indices_exactly(make_inputs, forward):
    config = {**get_preset_config("tiny"), "num_layers": 12, "audio_inject_layers": [1, 10]}
    model = WanS2VTransformer3DModel(**config)
    assert len(model.audio_injectors) == 2
    calls = []
    for i, block in enumerate(model.blocks):
        block.register_forward_hook(lambda *_, i=i: calls.append(f"block{i}"))
    for k, injector in enumerate(model.audio_injectors):
        injector.register_forward_hook(lambda *_, k=k: calls.append(f"injector{k}"))
    forward(model, make_inputs(model))
    expected = [f"block{i}" for i in range(12)]
    expected.insert(2, "injector0")  # after block 1 only, not after blocks 10 and 11 ("1" is a prefix of them)
    expected.insert(12, "injector1")  # after block 10
    assert calls == expected


@pytest.mark.parametrize("layers", [[4, 0], [0, 0], [3]])
def test_invalid_inject_layers(layers):
    with pytest.raises(ValueError, match="audio_inject_layers"):
        WanS2VTransformer3DModel(**{**get_preset_config("tiny"), "audio_inject_layers": layers})


def test_dtype_keeps_fp32_modules(tiny_random, make_inputs, forward):
    model = WanS2VTransformer3DModel.from_preset("tiny", dtype=torch.bfloat16)
    model.load_state_dict(tiny_random.state_dict())
    dtypes = {name: p.dtype for name, p in model.named_parameters()}
    assert dtypes["blocks.0.attn1.to_q.weight"] == torch.bfloat16
    for name in ["condition_embedder.time_embedder.linear_1.weight", "condition_embedder.time_proj.weight",
                 "blocks.0.scale_shift_table", "blocks.0.norm2.weight", "proj_out.weight", "scale_shift_table",
                 "audio_encoder.conv1_local.weight"]:
        assert dtypes[name] == torch.float32, name
    inputs = make_inputs(model)
    out = forward(model, {k: v.bfloat16() if k != "timestep" else v for k, v in inputs.items()})
    reference = forward(tiny_random, inputs)
    assert out.dtype == torch.bfloat16
    assert (out.float() - reference).abs().max() < 0.05 * reference.abs().max()


def test_gradient_checkpointing_backward(tiny_random, make_inputs):
    tiny_random.enable_gradient_checkpointing()
    tiny_random.train()
    out = tiny_random(**make_inputs(tiny_random)).sample
    out.square().mean().backward()
    assert tiny_random.blocks[0].attn1.to_q.weight.grad is not None
    assert tiny_random.audio_injectors[0].attn.to_q.weight.grad is not None


def test_framepack_rope_positions():
    from compress.models.s2v.motion import FramePackMotioner

    def axes(positions):
        return [sorted(set(positions[:, a].tolist())) for a in range(3)]

    pos = FramePackMotioner.positions(16, 8)  # latent 16x8: main token grid 8x4
    near, mid, far = pos[:32], pos[32:40], pos[40:]
    assert len(pos) == 8 * 4 + 4 * 2 + 4 * 2 * 1
    assert axes(near) == [[-1], list(range(8)), list(range(4))]
    # coarser buckets spread their tokens over the main grid (upstream's truncated linspace)
    assert axes(mid) == [[-3], [0, 2, 4, 7], [0, 3]]
    assert axes(far) == [[-19, -14, -9, -4], [0, 7], [0]]
    assert far[:, 0].tolist() == [-19, -19, -14, -14, -9, -9, -4, -4]  # time-major token order
