"""Small models with Wan-style module names for the quantization tests."""

from __future__ import annotations

import pytest
import torch
from torch import nn


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = (proj(x).view(b, n, self.heads, -1).transpose(1, 2) for proj in (self.q, self.k, self.v))
        out = nn.functional.scaled_dot_product_attention(q, k, v)
        return self.o(out.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    def __init__(self, dim: int, ffn_dim: int, heads: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.self_attn = Attention(dim, heads)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn_dim), nn.GELU(approximate="tanh"), nn.Linear(ffn_dim, dim))

    def forward(self, x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.norm1(x) * (1 + scale) + shift)
        return x + self.ffn(self.norm2(x))


class Head(nn.Module):
    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(x))


class TinyDiT(nn.Module):
    """A miniature of the Wan DiT layout: text_embedding.0/2, time_projection.1, blocks.N.{self_attn.q,
    ffn.0, ffn.2, ...}, head.head (24 outputs: not a multiple of 16), and an nn.Embedding token mask."""

    def __init__(self, in_dim: int = 32, dim: int = 64, ffn_dim: int = 256, depth: int = 2, heads: int = 4,
                 out_dim: int = 24):
        super().__init__()
        self.text_embedding = nn.Sequential(nn.Linear(in_dim, dim), nn.GELU(approximate="tanh"), nn.Linear(dim, dim))
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        self.trainable_cond_mask = nn.Embedding(3, dim)
        self.blocks = nn.ModuleList(Block(dim, ffn_dim, heads) for _ in range(depth))
        self.head = Head(dim, out_dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = self.text_embedding(x) + self.trainable_cond_mask.weight[0]
        shift, scale = self.time_projection(t).unsqueeze(1).chunk(2, dim=-1)
        for block in self.blocks:
            h = block(h, shift, scale)
        return self.head(h)


def make_tiny_dit(seed: int = 0, dtype: torch.dtype = torch.float32, device: str = "cpu") -> TinyDiT:
    torch.manual_seed(seed)
    with torch.device(device):
        return TinyDiT().to(dtype)


def make_inputs(seed: int = 1, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 16, 32, generator=generator).to(dtype)
    t = torch.randn(2, 64, generator=generator).to(dtype)
    return x, t


@pytest.fixture
def tiny_dit():
    return make_tiny_dit


@pytest.fixture
def inputs():
    return make_inputs
