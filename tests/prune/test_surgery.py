"""Block dropping with injector remapping, width slicing, 2:4 masks and their packed storage (tiny models)."""

import pytest
import torch

from compress.models import WanS2VTransformer3DModel, get_preset_config
from compress.prune import drop_blocks, load_masks, mask_2_4, prune_width, remap_injectors, save_masks
from compress.prune.sparsity import pack_bits, unpack_bits


def five_blocks(inject):
    torch.manual_seed(0)
    model = WanS2VTransformer3DModel(**{**get_preset_config("tiny"), "num_layers": 5, "audio_inject_layers": inject})
    with torch.no_grad():
        for injector in model.audio_injectors:  # zero-initialised: give them an effect
            injector.attn.to_out[0].weight.normal_(std=0.1)
            injector.norm.linear.weight.normal_(std=0.1)
    return model.eval()


def output(model, seed=0):
    with torch.no_grad():
        return model(**model.example_inputs(seed=seed)).sample


def make_identity(block):
    """The block adds nothing to the residual stream (its three residual branches output zero)."""
    with torch.no_grad():
        for linear in (block.attn1.to_out[0], block.attn2.to_out[0], block.ffn.net[2]):
            linear.weight.zero_()
            linear.bias.zero_()


@pytest.mark.parametrize("inject,dropped,mode,expected", [
    ([0, 2, 4], [2], "drop", [0, None, 4]),
    ([0, 2, 4], [2], "nearest", [0, 1, 4]),           # equally near 1 and 3: the earlier, same stream position
    ([1, 2, 4], [2], "nearest", [1, 3, 4]),           # 1 has one already: the other equally near block
    ([1, 2, 3], [2], "nearest", [1, None, 3]),        # both neighbours taken
    ([0, 3], [1, 2, 3], "nearest", [0, 4]),
    ([0, 2, 3], [1, 2, 3], "nearest", [0, None, 4]),  # the closer injector chooses first
])
def test_remap_injectors(inject, dropped, mode, expected):
    assert remap_injectors(inject, dropped, 5, mode) == expected


@pytest.mark.parametrize("mode", ["drop", "nearest"])
def test_dropping_an_identity_block_keeps_outputs_and_moves_injector_weights(mode):
    model = five_blocks([0, 2, 4])
    make_identity(model.blocks[2])
    if mode == "drop":  # the injector after block 2 goes with it: compare with it silenced
        with torch.no_grad():
            model.audio_injectors[1].attn.to_out[0].weight.zero_()
    pruned = drop_blocks(model, [2], mode)
    assert pruned.config.num_layers == 4
    assert pruned.config.audio_inject_layers == ([0, 3] if mode == "drop" else [0, 1, 3])
    moved = [0, 2] if mode == "drop" else [0, 1, 2]
    for new, old in enumerate(moved):  # renumbered, shared rather than copied
        assert pruned.audio_injectors[new].attn.to_q.weight.data_ptr() == \
            model.audio_injectors[old].attn.to_q.weight.data_ptr()
    assert pruned.blocks[2].ffn.net[0].proj.weight.data_ptr() == model.blocks[3].ffn.net[0].proj.weight.data_ptr()
    torch.testing.assert_close(output(pruned), output(model), rtol=1e-5, atol=1e-6)


def test_width_pruning_that_keeps_everything_is_exact_and_drops_channels_consistently():
    model = five_blocks([0, 4])
    heads, ffn = model.config.num_attention_heads, model.config.ffn_dim
    keep = {**{f"blocks.{i}.attn{a}": torch.arange(heads) for i in range(5) for a in (1, 2)},
            **{f"blocks.{i}.ffn": torch.arange(ffn) for i in range(5)},
            **{f"audio_injectors.{k}.attn": torch.arange(heads) for k in range(2)}}
    same = prune_width(model, keep, dict(model.config))
    torch.testing.assert_close(output(same), output(model), rtol=0, atol=0)

    config = {**{k: v for k, v in model.config.items() if not k.startswith("_")}, "attention_heads": 2,
              "audio_attention_heads": 3, "ffn_dim": 40}
    keep = {**{f"blocks.{i}.attn{a}": torch.tensor([1, 3]) for i in range(5) for a in (1, 2)},
            **{f"blocks.{i}.ffn": torch.arange(0, 120, 3) for i in range(5)},
            **{f"audio_injectors.{k}.attn": torch.tensor([0, 1, 2]) for k in range(2)}}
    small = prune_width(model, keep, config)
    head_dim = model.config.attention_head_dim
    q_rows = torch.cat([torch.arange(head_dim) + h * head_dim for h in (1, 3)])
    assert torch.equal(small.blocks[1].attn1.to_q.weight, model.blocks[1].attn1.to_q.weight[q_rows])
    assert torch.equal(small.blocks[1].attn1.norm_k.weight, model.blocks[1].attn1.norm_k.weight[q_rows])
    assert torch.equal(small.blocks[1].attn2.to_out[0].weight, model.blocks[1].attn2.to_out[0].weight[:, q_rows])
    assert torch.equal(small.blocks[4].ffn.net[2].weight, model.blocks[4].ffn.net[2].weight[:, :120:3])
    assert small.audio_injectors[0].attn.to_k.weight.shape == (3 * head_dim, 64)
    assert output(small).shape == output(model).shape
    with pytest.raises(ValueError, match="attention_heads=2.*no official"):
        small.save_official("unused")


def test_2_4_masks_and_packed_storage(tmp_path):
    weight = torch.randn(6, 16)
    mask = mask_2_4(weight)
    assert (mask.reshape(6, 4, 4).sum(-1) == 2).all()
    kept, dropped = weight.abs()[mask].reshape(6, 4, 2), weight.abs()[~mask].reshape(6, 4, 2)
    assert (kept.min(-1).values >= dropped.max(-1).values).all()
    odd = torch.rand(3, 7) > 0.5
    assert pack_bits(odd).dtype == torch.uint8 and pack_bits(odd).numel() == 3
    assert torch.equal(unpack_bits(pack_bits(odd), (3, 7)), odd)
    save_masks(tmp_path / "m.safetensors", {"a.weight": mask, "b.weight": odd})
    loaded = load_masks(tmp_path / "m.safetensors")
    assert torch.equal(loaded["a.weight"], mask) and torch.equal(loaded["b.weight"], odd)
