"""The built-in presets: the S2V teacher (`tiny`, `wan2.2-s2v-14b`, the trained `demo`) and the students' sizes.
Importing this module registers them with `compress.models.auto` (which does so on first lookup)."""

from .auto import Preset, register_preset
from .demo import DEMO_PRESET
from .s2v import PRESETS, WanS2VTransformer3DModel
from .students import DECODER_PRESETS, LIPSYNC_PRESETS, LipSyncStudent, TinyVAEDecoder

_S2V_DESCRIPTIONS = {
    "wan2.2-s2v-14b": "Wan2.2-S2V-14B DiT, release architecture (16.3B parameters)",
    "tiny": "Wan2.2-S2V DiT in miniature (3 blocks, dim 64) for tests and quickstarts",
}
_LIPSYNC = "lip-sync student (audio + reference + masked latent -> frame latent, single step)"
_DECODER = "tiny Wan VAE decoder student (latents -> frames)"

BUILTIN_PRESETS: tuple[Preset, ...] = (
    *(Preset(name, WanS2VTransformer3DModel, config, description=_S2V_DESCRIPTIONS.get(name, ""))
      for name, config in PRESETS.items()),
    DEMO_PRESET,
    *(Preset(name, LipSyncStudent, config, description=_LIPSYNC) for name, config in LIPSYNC_PRESETS.items()),
    *(Preset(name, TinyVAEDecoder, config, description=_DECODER) for name, config in DECODER_PRESETS.items()),
)

for _preset in BUILTIN_PRESETS:
    register_preset(_preset)
