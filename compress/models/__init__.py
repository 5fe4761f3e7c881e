"""Model definitions, weight loading and presets (`compress.sources.resolve` says which model a name means).

Names are imported on first use, so `compress.models.auto` stays light; the built-in
presets are registered by `compress.models.builtin` when a preset is first looked up.
"""

from compress.utils.lazy import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    "Preset": "auto", "register_preset": "auto",
    "CheckpointError": "loading", "CheckpointKeyError": "loading",
    "PRESETS": "s2v", "UnknownPresetError": "s2v", "WanS2VTransformer3DModel": "s2v", "get_preset_config": "s2v",
    "DECODER_PRESETS": "students", "LIPSYNC_PRESETS": "students", "LipSyncStudent": "students",
    "TinyVAEDecoder": "students",
})
