"""Small students distilled from the S2V teacher: a lip-sync generator and a tiny VAE decoder."""

from .decoder import TinyVAEDecoder, check_decodes, decoder_inputs
from .layers import mask_lower_half
from .lipsync import LipSyncStudent
from .audio import mel_windows

LIPSYNC_PRESETS = {
    "lipsync-30m": {"channels": 96, "mid_blocks": 7},  # 31.1M parameters
    "lipsync-120m": {"channels": 240, "mid_blocks": 3},  # 113.9M
    "lipsync-450m": {"channels": 448, "mid_blocks": 4},  # 448.3M
}
DECODER_PRESETS = {
    "tiny-vae-decoder": {"channels": (256, 48, 24, 12), "latent_blocks": 2},  # 2.5M, the teacher's video latents
    "tiny-frame-decoder": {"channels": (256, 48, 24, 12), "latent_blocks": 2, "frames_per_latent": 1,
                           "latents": "image"},  # the lip-sync students' per-frame image latents
}

__all__ = ["DECODER_PRESETS", "LIPSYNC_PRESETS", "LipSyncStudent", "TinyVAEDecoder", "check_decodes", "decoder_inputs",
           "mask_lower_half", "mel_windows"]
