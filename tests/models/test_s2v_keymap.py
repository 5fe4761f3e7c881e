import pytest

from compress.models import WanS2VTransformer3DModel, get_preset_config
from compress.models.s2v.keymap import from_official_config, native_to_ours, ours_to_native, to_official_config
from tests.helpers import release_keys


@pytest.fixture(scope="module")
def release_model():
    return WanS2VTransformer3DModel.from_preset("wan2.2-s2v-14b", device="meta")


def test_official_layout_equals_release_checkpoint(release_model):
    release = release_keys()
    assert len(release) == 1260
    ours = {ours_to_native(name): tuple(t.shape) for name, t in release_model.state_dict().items()}
    assert ours == release


def test_key_map_round_trips_both_ways(release_model):
    names = set(release_model.state_dict())
    for key in release_keys():
        name = native_to_ours(key)
        assert name in names, key
        assert ours_to_native(name) == key
    for name in names:
        assert native_to_ours(ours_to_native(name)) == name


def test_key_map_examples_and_unknown_keys():
    pairs = {
        "blocks.7.self_attn.o.weight": "blocks.7.attn1.to_out.0.weight",
        "blocks.7.cross_attn.norm_k.weight": "blocks.7.attn2.norm_k.weight",
        "blocks.7.norm3.bias": "blocks.7.norm2.bias",
        "blocks.7.ffn.0.weight": "blocks.7.ffn.net.0.proj.weight",
        "blocks.7.modulation": "blocks.7.scale_shift_table",
        "head.modulation": "scale_shift_table",
        "audio_injector.injector.11.q.bias": "audio_injectors.11.attn.to_q.bias",
        "audio_injector.injector_adain_layers.3.linear.weight": "audio_injectors.3.norm.linear.weight",
        "casual_audio_encoder.encoder.conv2.conv.weight": "audio_encoder.conv2.weight",
        "frame_packer.proj.weight": "frame_packer.proj_1x.weight",
        "cond_encoder.bias": "pose_embedding.bias",
    }
    for native, ours in pairs.items():
        assert native_to_ours(native) == ours and ours_to_native(ours) == native
    for unknown in ["motioner.blocks.0.ffn.0.weight", "blocks.0.self_attn.qq.weight", "head.modulation.x", "x"]:
        assert native_to_ours(unknown) is None


def test_official_config_round_trip_and_release_fallbacks():
    for preset in ("tiny", "wan2.2-s2v-14b"):
        config = get_preset_config(preset)
        assert from_official_config(to_official_config(config)) == config
    # the release config.json: upstream drops these keys when saving, names trainable_token, adds motion_frames
    release = to_official_config(get_preset_config("wan2.2-s2v-14b"))
    for dropped in ("patch_size", "text_dim", "qk_norm", "cross_attn_norm", "window_size", "num_audio_layers"):
        del release[dropped]
    assert release["trainable_token"] is False and release["motion_frames"] == 73
    assert from_official_config(release) == get_preset_config("wan2.2-s2v-14b")


@pytest.mark.parametrize("override", [{"enable_framepack": False}, {"enable_motioner": True}, {"adain_mode": "x"},
                                      {"zero_timestep": False}, {"patch_size": [1, 4, 4]}, {"cond_dim": 0}])
def test_unsupported_official_variants(override):
    raw = {**to_official_config(get_preset_config("tiny")), **override}
    with pytest.raises(ValueError, match="unsupported Wan S2V variant.*" + next(iter(override))):
        from_official_config(raw)
