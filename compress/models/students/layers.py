"""Building blocks of the students: plain convolutions, GroupNorm, SiLU, ReLU and FiLM, all ONNX-exportable
(residual blocks with and without normalisation), and the lower-half mask of their reference inputs."""

from __future__ import annotations

import math

import torch
from torch import nn


def mask_lower_half(x: torch.Tensor, rows: int | None = None) -> torch.Tensor:
    """Latents or pixels [..., h, w] with the last `rows` rows (default: the lower half) zeroed."""
    rows = x.shape[-2] - x.shape[-2] // 2 if rows is None else rows
    keep = torch.ones(x.shape[-2], 1, dtype=x.dtype, device=x.device)
    keep[x.shape[-2] - rows:] = 0
    return x * keep


def norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(32, channels), channels)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, with FiLM (scale, shift) from a conditioning vector when `cond_dim` > 0."""

    def __init__(self, cin: int, cout: int, cond_dim: int = 0):
        super().__init__()
        self.norm1, self.conv1 = norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2, self.conv2 = norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.film = nn.Linear(cond_dim, 2 * cout) if cond_dim else None
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv1(self.act(self.norm1(x)))
        if self.film is not None:
            scale, shift = self.film(cond)[:, :, None, None].chunk(2, dim=1)
            h = h * (1 + scale) + shift
        return self.skip(x) + self.conv2(self.act(self.norm2(h)))


class PlainBlock(nn.Module):
    """ReLU-conv twice around a skip, without normalisation (TAESD-like decoder blocks): at the narrow widths of the
    tiny decoders faster on a CPU than `ResBlock` (GroupNorm and SiLU cost there what the convolutions do)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(self.act(x))))


class Upsample(nn.Module):
    """Nearest-neighbour x2, then a 3x3 convolution."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(nn.functional.interpolate(x, scale_factor=2.0, mode="nearest"))
