"""A small diffusers model with what students use: conv, linear, a custom RMSNorm, LayerNorm, attention
matmuls, GELU and SiLU; plus variants that do not export cleanly (data-dependent shapes, unsupported ops)."""

from __future__ import annotations

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from compress.models.auto import Preset, register_preset


class CustomRMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(1 + 0.1 * torch.randn(dim))

    def forward(self, x):
        return torch.nn.functional.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


class ExportNet(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(self, channels: int = 4, dim: int = 32, heads: int = 2):
        super().__init__()
        self.conv_in = nn.Conv2d(channels, dim, 3, padding=1)
        self.norm1 = CustomRMSNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(approximate="tanh"), nn.Linear(2 * dim, dim))
        self.audio = nn.Linear(8, dim)
        self.conv_out = nn.Conv2d(dim, channels, 3, padding=1)

    def example_inputs(self, batch_size: int = 1, height: int = 64, width: int = 64, seed: int = 0) -> dict:
        g = torch.Generator().manual_seed(seed)
        c = self.config.channels
        return {"latents": torch.randn(batch_size, c, height // 8, width // 8, generator=g),
                "audio": torch.randn(batch_size, 1, 8, generator=g)}

    def forward(self, latents, audio):
        h = nn.functional.silu(self.conv_in(latents))
        b, d, hh, ww = h.shape
        t = h.flatten(2).transpose(1, 2)
        q, k, v = self.qkv(self.norm1(t)).chunk(3, dim=-1)
        split = lambda x: x.reshape(b, -1, self.config.heads, d // self.config.heads).transpose(1, 2)  # noqa: E731
        attn = torch.softmax(split(q) @ split(k).transpose(-1, -2) * (d // self.config.heads) ** -0.5, dim=-1)
        t = t + self.proj((attn @ split(v)).transpose(1, 2).reshape(b, -1, d))
        t = t + self.ff(self.norm2(t) + self.audio(audio))
        return self.conv_out(t.transpose(1, 2).reshape(b, d, hh, ww))


class DynamicNet(ExportNet):
    """Keeps only the positive outputs: the output length depends on the data."""

    def forward(self, latents, audio):
        out = super().forward(latents, audio)
        return out[out > 0]


class SinhNet(ExportNet):
    """Ends in an op the HTP does not run (Sinh)."""

    def forward(self, latents, audio):
        return torch.sinh(super().forward(latents, audio))


def register() -> None:
    register_preset(Preset("test-export-net", ExportNet, {"channels": 4, "dim": 32, "heads": 2},
                           description="export test model"))
