"""Random forward inputs for an S2V DiT: calibration and parity checks when no reference data is at hand."""

from __future__ import annotations

import torch


def example_inputs(model, batch: int = 1, frames: int = 2, height: int = 8, width: int = 8, text_tokens: int = 5,
                   motion_frames: int = 19, seed: int = 0, device=None, dtype=None) -> dict:
    """Forward kwargs of latent size [frames, height, width], drawn from a seeded generator."""
    cfg = model.config
    g = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=g).to(device=device, dtype=dtype)

    return dict(
        hidden_states=rand(batch, cfg.in_channels, frames, height, width),
        timestep=(torch.rand(batch, generator=g) * 1000).to(device),
        encoder_hidden_states=rand(batch, text_tokens, cfg.text_dim),
        audio_features=rand(batch, cfg.num_audio_layers, cfg.audio_dim, 4 * frames),
        ref_latents=rand(batch, cfg.in_channels, 1, height, width),
        motion_latents=rand(batch, cfg.in_channels, motion_frames, height, width),
        pose_latents=rand(batch, cfg.pose_channels, frames, height, width),
    )
