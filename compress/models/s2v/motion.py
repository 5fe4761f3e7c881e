"""FramePack motion history: the last latent frames, nearest first, packed into ever coarser tokens."""

from __future__ import annotations

import torch
from torch import nn

from .rope import grid, spread, spread_backwards

# latent frames per bucket, nearest first, and the temporal downsampling of each bucket's patchifier
MOTION_BUCKETS = (1, 2, 16)
BUCKET_FACTORS = (1, 2, 4)
MOTION_FRAMES = sum(MOTION_BUCKETS)  # 19 latent frames = 73 pixel frames


class FramePackMotioner(nn.Module):
    """Conv3d patchifiers with kernels (1,2,2) / (2,4,4) / (4,8,8) over the 1 / 2 / 16 most recent frames.

    Missing history is zero-padded (upstream `padd` mode)."""

    def __init__(self, in_channels: int, dim: int):
        super().__init__()
        self.proj_1x, self.proj_2x, self.proj_4x = (
            nn.Conv3d(in_channels, dim, kernel_size=(s, 2 * s, 2 * s), stride=(s, 2 * s, 2 * s)) for s in BUCKET_FACTORS
        )

    def forward(self, motion_latents: torch.Tensor) -> torch.Tensor:
        """[B, C, M, H, W] (any M; the last MOTION_FRAMES are used) -> tokens [B, N, dim], nearest bucket first."""
        b, c, m, h, w = motion_latents.shape
        keep = min(m, MOTION_FRAMES)
        pad = motion_latents.new_zeros(b, c, MOTION_FRAMES - keep, h, w)
        frames = torch.cat([pad, motion_latents[:, :, m - keep :]], dim=2)
        far, mid, near = frames.split(MOTION_BUCKETS[::-1], dim=2)
        projs = (self.proj_1x, self.proj_2x, self.proj_4x)
        return torch.cat([p(x).flatten(2).transpose(1, 2) for p, x in zip(projs, (near, mid, far))], dim=1)

    @staticmethod
    def positions(height: int, width: int) -> torch.Tensor:
        """RoPE positions [N, 3] of the motion tokens for latents of height x width: negative times, and
        spatial positions spread over the main video's (height // 2) x (width // 2) token grid."""
        parts, start = [], 0
        for frames, s in zip(MOTION_BUCKETS, BUCKET_FACTORS):
            start -= frames
            parts.append(
                grid(
                    spread_backwards(start, frames, frames // s),
                    spread(0, height // 2, height // (2 * s)),
                    spread(0, width // 2, width // (2 * s)),
                )
            )
        return torch.cat(parts)
