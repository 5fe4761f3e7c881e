"""Model specs for the memory tests: the tiny preset, a mid-size config with the 14B's proportions, the 14B."""

import pytest

from compress.memory import ModelSpec
from compress.models.s2v import WanS2VTransformer3DModel

# head_dim 64 and FFN / dim = 2.7 like the 14B (5120 / 13824), at 1/10 of its width, 4 blocks, injectors at 0 and 2
MID = dict(num_attention_heads=8, attention_head_dim=64, in_channels=16, out_channels=16, pose_channels=16,
           text_dim=256, text_len=64, freq_dim=64, ffn_dim=1384, num_layers=4, eps=1e-6, audio_dim=128,
           num_audio_layers=25, num_audio_tokens=4, audio_inject_layers=[0, 2])


@pytest.fixture(scope="session")
def mid_spec():
    return ModelSpec.from_config(WanS2VTransformer3DModel, MID, name="mid")


@pytest.fixture(scope="session")
def tiny_spec():
    return ModelSpec.load("tiny")


@pytest.fixture(scope="session")
def teacher_spec():
    return ModelSpec.load("wan2.2-s2v-14b")
