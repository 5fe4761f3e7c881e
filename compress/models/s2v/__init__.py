"""Wan2.2-S2V-14B DiT: model, presets and the key map to the released checkpoint layout."""

from .keymap import native_to_ours, ours_to_native
from .presets import PRESETS, UnknownPresetError, get_preset_config
from .transformer import WanS2VTransformer3DModel

__all__ = [
    "PRESETS",
    "UnknownPresetError",
    "WanS2VTransformer3DModel",
    "get_preset_config",
    "native_to_ours",
    "ours_to_native",
]
