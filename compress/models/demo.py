"""The `demo` preset: a tiny Wan2.2-S2V teacher trained to talk on the built-in synthetic talking-face set.

Same model class and pipeline as the 14B teacher; only the config and the shipped weights differ. The
folder `presets/demo/` holds the DiT (config.json + safetensors, loaded with `from_pretrained`) and its
non-DiT components in `S2VComponents` layout: `vae/` (a trained tiny Wan VAE), `text_encoder/` (a seeded
tiny umT5 + byte tokenizer) and `audio_encoder/` (`LogMelAudioEncoder`). Its README.md is the model card;
`scripts/train_demo_teacher.py` produced everything.
"""

from __future__ import annotations

from pathlib import Path

from .auto import Preset
from .s2v import WanS2VTransformer3DModel

DEMO_DIR = Path(__file__).resolve().parent / "presets" / "demo"
DEMO_SIZE = 96  # pixels per side it was trained at (12x12 latents)
DEMO_FRAMES = 48  # frames per training clip (3 s at 16 fps)

# dim 128 (4 heads x 32), 4 blocks each followed by an audio injector; audio_dim = 80 log-mel bins
DEMO_CONFIG = dict(
    num_attention_heads=4, attention_head_dim=32, in_channels=16, out_channels=16, pose_channels=16,
    text_dim=48, text_len=16, freq_dim=64, ffn_dim=384, num_layers=4, eps=1e-6,
    audio_dim=80, num_audio_layers=25, num_audio_tokens=4, audio_inject_layers=[0, 1, 2, 3],
)

# its VAE: Wan2.2-style (2x2 patchify, residual down / up blocks with space-to-channel shortcuts), spatial stride 8
# (patch 2 x two downsamples), causal temporal stride 4, z_dim 16 like the 14B's Wan2.1 VAE; it learns sharp 96x96
# faces in minutes on a CPU, where the Wan2.1 layout of `tiny_vae` stays blurred
DEMO_VAE_CONFIG = dict(
    base_dim=16, z_dim=16, dim_mult=[1, 2, 2], num_res_blocks=1, attn_scales=[], temperal_downsample=[True, True],
    is_residual=True, patch_size=2, in_channels=12, out_channels=12,
)
DEMO_CHUNK = 2 ** sum(DEMO_VAE_CONFIG["temperal_downsample"])  # pixel frames per latent frame

DEMO_PRESET = Preset("demo", WanS2VTransformer3DModel, DEMO_CONFIG, weights_dir=DEMO_DIR,
                     description="Wan2.2-S2V DiT in miniature, trained to talk on the synthetic talking-face set "
                                 f"({DEMO_SIZE}x{DEMO_SIZE})")
