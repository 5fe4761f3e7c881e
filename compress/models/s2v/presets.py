"""Named configurations of WanS2VTransformer3DModel (constructor kwargs)."""

from __future__ import annotations

import copy

from compress.errors import UserInputError

RELEASE_INJECT_LAYERS = (0, 4, 8, 12, 16, 20, 24, 27, 30, 33, 36, 39)

PRESETS: dict[str, dict] = {
    # the released Wan2.2-S2V-14B DiT: 16,295,755,609 parameters
    "wan2.2-s2v-14b": dict(
        num_attention_heads=40, attention_head_dim=128, in_channels=16, out_channels=16, pose_channels=16,
        text_dim=4096, text_len=512, freq_dim=256, ffn_dim=13824, num_layers=40, eps=1e-6,
        audio_dim=1024, num_audio_layers=25, num_audio_tokens=4, audio_inject_layers=list(RELEASE_INJECT_LAYERS),
    ),
    # same architecture in miniature for tests and quickstarts; runs on 64x64 pixels (8x8 latents)
    "tiny": dict(
        num_attention_heads=4, attention_head_dim=16, in_channels=16, out_channels=16, pose_channels=16,
        text_dim=32, text_len=16, freq_dim=32, ffn_dim=128, num_layers=3, eps=1e-6,
        audio_dim=32, num_audio_layers=25, num_audio_tokens=4, audio_inject_layers=[0, 2],
    ),
}


class UnknownPresetError(UserInputError, ValueError):
    pass


def get_preset_config(name: str) -> dict:
    """A copy of the constructor kwargs of a preset; an unknown name raises, listing the known ones."""
    if name not in PRESETS:
        raise UnknownPresetError(f"unknown model preset {name!r}; known presets: {', '.join(sorted(PRESETS))}")
    return copy.deepcopy(PRESETS[name])
