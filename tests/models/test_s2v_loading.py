import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from compress.errors import UserInputError
from compress.models import CheckpointError, CheckpointKeyError, WanS2VTransformer3DModel
from compress.models.loading import INDEX_NAME, WEIGHTS_NAME


def _assert_same(a, b, inputs, forward):
    torch.testing.assert_close(forward(a, inputs), forward(b, inputs), rtol=0, atol=0)


@pytest.mark.parametrize("shard_size", ["10GB", 300_000])
def test_official_layout_round_trip(tiny_random, make_inputs, forward, tmp_path, shard_size):
    files = tiny_random.save_official(tmp_path, max_shard_size=shard_size)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["_class_name"] == "WanModel_S2V" and config["dim"] == 64
    if shard_size == "10GB":
        assert [f.name for f in files] == [WEIGHTS_NAME] and not (tmp_path / INDEX_NAME).exists()
    else:
        weight_map = json.loads((tmp_path / INDEX_NAME).read_text())["weight_map"]
        assert len(files) > 3 and sorted(set(weight_map.values())) == [f.name for f in files]
        assert "blocks.0.self_attn.q.weight" in weight_map and len(weight_map) == len(tiny_random.state_dict())
    loaded = WanS2VTransformer3DModel.from_pretrained(tmp_path)
    assert not any(p.is_meta for p in loaded.parameters())
    assert loaded.config == tiny_random.config
    _assert_same(tiny_random, loaded, make_inputs(tiny_random), forward)


def test_diffusers_layout_round_trip(tiny_random, make_inputs, forward, tmp_path):
    tiny_random.save_pretrained(tmp_path / "single")
    tiny_random.save_pretrained(tmp_path / "sharded", max_shard_size="300KB")
    assert (tmp_path / "sharded" / INDEX_NAME).exists()
    for layout in ("single", "sharded"):
        config = json.loads((tmp_path / layout / "config.json").read_text())
        assert config["_class_name"] == "WanS2VTransformer3DModel"
        loaded = WanS2VTransformer3DModel.from_pretrained(tmp_path / layout)
        _assert_same(tiny_random, loaded, make_inputs(tiny_random), forward)


def test_torch_dtype_on_load(tiny_random, tmp_path):
    tiny_random.save_official(tmp_path, dtype=torch.bfloat16)
    assert load_file(tmp_path / WEIGHTS_NAME)["blocks.0.self_attn.q.weight"].dtype == torch.bfloat16
    kept = WanS2VTransformer3DModel.from_pretrained(tmp_path)
    assert kept.blocks[0].attn1.to_q.weight.dtype == torch.bfloat16
    cast = WanS2VTransformer3DModel.from_pretrained(tmp_path, torch_dtype=torch.float16)
    assert cast.blocks[0].attn1.to_q.weight.dtype == torch.float16
    assert cast.condition_embedder.time_embedder.linear_1.weight.dtype == torch.float32
    assert cast.audio_encoder.layer_weights.dtype == torch.float32


def test_meta_model_writes_random_official_checkpoint(make_inputs, forward, tmp_path):
    meta = WanS2VTransformer3DModel.from_preset("tiny", device="meta")
    meta.save_official(tmp_path, max_shard_size="1MB", dtype=torch.bfloat16)
    loaded = WanS2VTransformer3DModel.from_pretrained(tmp_path, torch_dtype=torch.float32)
    assert loaded.blocks[0].attn1.to_q.weight.std() > 0
    assert torch.isfinite(forward(loaded, make_inputs(loaded))).all()


def test_key_errors_list_every_name(tiny_random, tmp_path):
    tiny_random.save_official(tmp_path)
    tensors = load_file(tmp_path / WEIGHTS_NAME)
    del tensors["blocks.1.cross_attn.k.bias"]
    tensors["blocks.0.extra.weight"] = torch.zeros(2)
    tensors["audio_injector.injector.5.q.weight"] = torch.zeros(64, 64)  # tiny has 2 injectors
    tensors["head.head.weight"] = torch.zeros(3, 64)
    save_file(tensors, tmp_path / WEIGHTS_NAME)
    with pytest.raises(CheckpointKeyError) as info:
        WanS2VTransformer3DModel.from_pretrained(tmp_path)
    err = info.value
    assert err.missing == ["blocks.1.cross_attn.k.bias"]
    assert sorted(err.unexpected) == ["audio_injector.injector.5.q.weight", "blocks.0.extra.weight"]
    assert err.mismatched == [("head.head.weight", (3, 64), (64, 64))]
    for name in ["missing: blocks.1.cross_attn.k.bias", "unexpected: blocks.0.extra.weight",
                 "unexpected: audio_injector.injector.5.q.weight", "wrong shape: head.head.weight"]:
        assert name in str(err)
    assert isinstance(err, ValueError)


def test_truncated_or_missing_shard_names_the_file(tiny_random, tmp_path):
    files = tiny_random.save_official(tmp_path, max_shard_size=300_000)
    victim = files[1]
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=victim.name):
        WanS2VTransformer3DModel.from_pretrained(tmp_path)
    victim.unlink()
    with pytest.raises(CheckpointError, match=f"{victim.name}: listed in"):
        WanS2VTransformer3DModel.from_pretrained(tmp_path)


def test_unrecognised_directories(tmp_path):
    with pytest.raises(CheckpointError, match="config.json: not found"):
        WanS2VTransformer3DModel.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"_class_name": "SomethingElse"}))
    with pytest.raises(UserInputError, match="config.json: _class_name: unknown model class 'SomethingElse'"):
        WanS2VTransformer3DModel.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"_class_name": "TinyVAEDecoder"}))
    with pytest.raises(CheckpointError, match="neither a WanS2VTransformer3DModel nor a WanModel_S2V config"):
        WanS2VTransformer3DModel.from_pretrained(tmp_path)
