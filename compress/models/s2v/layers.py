"""Attention and transformer block of the S2V DiT.

Numerics follow upstream run under bf16 autocast: the residual stream, norms and AdaLN modulation are
float32; every linear layer sees its input cast to the compute dtype, which the caller conveys as the
dtype of `context` (the embedded text or audio tokens).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.attention import FeedForward
from diffusers.models.normalization import FP32LayerNorm
from torch import nn

from .rope import apply_rope


class RMSNorm(nn.Module):
    """RMS norm computed in float32, cast back, then scaled (upstream WanRMSNorm)."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        return (x32 * torch.rsqrt(x32.pow(2).mean(dim=-1, keepdim=True) + self.eps)).to(x.dtype) * self.weight


class Attention(nn.Module):
    """Multi-head attention with q/k RMSNorm across all heads; RoPE when `rope` is given, no mask.
    The inner width num_heads * head_dim (head_dim default dim // num_heads) may be narrower than dim."""

    def __init__(self, dim: int, num_heads: int, eps: float, head_dim: int | None = None):
        super().__init__()
        self.num_heads = num_heads
        inner = num_heads * (head_dim or dim // num_heads)
        self.to_q = nn.Linear(dim, inner)
        self.to_k = nn.Linear(dim, inner)
        self.to_v = nn.Linear(dim, inner)
        self.to_out = nn.ModuleList([nn.Linear(inner, dim)])
        self.norm_q = RMSNorm(inner, eps)
        self.norm_k = RMSNorm(inner, eps)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, rope=None) -> torch.Tensor:
        context = x if context is None else context
        q = self.norm_q(self.to_q(x)).unflatten(-1, (self.num_heads, -1))
        k = self.norm_k(self.to_k(context)).unflatten(-1, (self.num_heads, -1))
        v = self.to_v(context).unflatten(-1, (self.num_heads, -1))
        if rope is not None:
            q, k = apply_rope(q, *rope).to(v.dtype), apply_rope(k, *rope).to(v.dtype)
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return self.to_out[0](out.transpose(1, 2).flatten(2))


def modulate(x: torch.Tensor, split: int, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """AdaLN with two segments: tokens [:split] use shift/scale[:, 0], the rest [:, 1]."""
    return torch.cat(
        [x[:, :split] * (1 + scale[:, :1]) + shift[:, :1], x[:, split:] * (1 + scale[:, 1:]) + shift[:, 1:]], dim=1
    )


def gated(y: torch.Tensor, split: int, gate: torch.Tensor) -> torch.Tensor:
    return torch.cat([y[:, :split] * gate[:, :1], y[:, split:] * gate[:, 1:]], dim=1)


class TransformerBlock(nn.Module):
    """Self-attention (RoPE) + text cross-attention + FFN, AdaLN-modulated per token segment."""

    def __init__(self, dim: int, ffn_dim: int, num_heads: int, eps: float, head_dim: int | None = None):
        super().__init__()
        self.norm1 = FP32LayerNorm(dim, eps, elementwise_affine=False)
        self.attn1 = Attention(dim, num_heads, eps, head_dim)
        self.norm2 = FP32LayerNorm(dim, eps, elementwise_affine=True)
        self.attn2 = Attention(dim, num_heads, eps, head_dim)
        self.norm3 = FP32LayerNorm(dim, eps, elementwise_affine=False)
        self.ffn = FeedForward(dim, inner_dim=ffn_dim, activation_fn="gelu-approximate")
        self.scale_shift_table = nn.Parameter(torch.randn(1, 6, dim) / dim**0.5)

    def forward(self, x, temb, num_noisy, context, rope):
        """x [B, L, D] float32; temb [B, 6, 2, D] float32 (segment 0: noisy tokens' t, 1: t=0 for the rest);
        context [B, text_len, D] in the compute dtype; rope (cos, sin)."""
        dtype = context.dtype
        mod = self.scale_shift_table.float().unsqueeze(2) + temb
        shift, scale, gate, c_shift, c_scale, c_gate = mod.unbind(1)
        h = modulate(self.norm1(x), num_noisy, shift, scale)
        x = x + gated(self.attn1(h.to(dtype), rope=rope), num_noisy, gate)
        x = x + self.attn2(self.norm2(x).to(dtype), context=context)
        h = modulate(self.norm3(x), num_noisy, c_shift, c_scale)
        return x + gated(self.ffn(h.to(dtype)), num_noisy, c_gate)
