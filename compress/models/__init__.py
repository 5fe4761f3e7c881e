"""Model definitions and weight loading. Importing this package registers the built-in presets with
`compress.models.auto` (the S2V teacher: `tiny`, `wan2.2-s2v-14b`)."""

from .auto import Preset, register_preset
from .loading import CheckpointError, CheckpointKeyError
from .s2v import PRESETS, UnknownPresetError, WanS2VTransformer3DModel, get_preset_config

_DESCRIPTIONS = {
    "wan2.2-s2v-14b": "Wan2.2-S2V-14B DiT, release architecture (16.3B parameters)",
    "tiny": "Wan2.2-S2V DiT in miniature (3 blocks, dim 64) for tests and quickstarts",
}
for _name, _config in PRESETS.items():
    register_preset(Preset(_name, WanS2VTransformer3DModel, _config, description=_DESCRIPTIONS.get(_name, "")))
from . import demo  # noqa: E402,F401  (registers the trained 'demo' preset)
from .students import DECODER_PRESETS, LIPSYNC_PRESETS, LipSyncStudent, TinyVAEDecoder  # noqa: E402

for _name, _config in LIPSYNC_PRESETS.items():
    register_preset(Preset(_name, LipSyncStudent, _config, description="lip-sync student (audio + reference + "
                           "masked latent -> frame latent, single step)"))
for _name, _config in DECODER_PRESETS.items():
    register_preset(Preset(_name, TinyVAEDecoder, _config, description="tiny Wan VAE decoder student (latents -> frames)"))

__all__ = [
    "PRESETS",
    "CheckpointError",
    "CheckpointKeyError",
    "UnknownPresetError",
    "WanS2VTransformer3DModel",
    "get_preset_config",
]
