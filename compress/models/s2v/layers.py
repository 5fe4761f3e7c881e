"""Attention and transformer block of the S2V DiT.

Numerics follow upstream run under bf16 autocast: the residual stream, norms and AdaLN modulation are
float32; every linear layer sees its input cast to the compute dtype, which the caller conveys as the
dtype of `context` (the embedded text or audio tokens).

Two forwards compute the same maths: `plain` keeps every intermediate referenced until the block returns
(upstream's memory behaviour), `lean` works on spans of tokens (projections, attention queries, FFN) and,
with autograd off, adds residuals into the stream in place (see `chunks.py`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.attention import FeedForward
from diffusers.models.normalization import FP32LayerNorm
from torch import nn

from .chunks import add_residual, fill, local_split, spans
from .rope import rope_span, rotate


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

    def _heads(self, x: torch.Tensor, rope, dtype: torch.dtype) -> torch.Tensor:
        x = x.unflatten(-1, (self.num_heads, -1))
        return x if rope is None else rotate(x, rope).to(dtype)

    def query(self, x: torch.Tensor, rope=None) -> torch.Tensor:
        """[B, L, heads, head_dim] normalised (and rotated) queries of x."""
        return self._heads(self.norm_q(self.to_q(x)), rope, x.dtype)

    def key_value(self, context: torch.Tensor, rope=None) -> tuple[torch.Tensor, torch.Tensor]:
        k = self._heads(self.norm_k(self.to_k(context)), rope, context.dtype)
        return k, self.to_v(context).unflatten(-1, (self.num_heads, -1))

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Output projection of softmax attention; every query row is independent of the others."""
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return self.to_out[0](out.transpose(1, 2).flatten(2))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, rope=None) -> torch.Tensor:
        k, v = self.key_value(x if context is None else context, rope)
        return self.attend(self.query(x, rope), k, v)


def modulate_parts(x: torch.Tensor, split: int, shift: torch.Tensor, scale: torch.Tensor) -> list[torch.Tensor]:
    """AdaLN with two segments: tokens [:split] use shift/scale[:, 0], the rest [:, 1]."""
    return [p * (1 + scale[:, i : i + 1]) + shift[:, i : i + 1] for i, p in enumerate((x[:, :split], x[:, split:]))]


def gated_parts(y: torch.Tensor, split: int, gate: torch.Tensor) -> list[torch.Tensor]:
    return [p * gate[:, i : i + 1] for i, p in enumerate((y[:, :split], y[:, split:]))]


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

    def forward(self, x, temb, num_noisy, context, rope, chunk_size: int | None = None):
        """x [B, L, D] float32; temb [B, 6, 2, D] float32 (segment 0: noisy tokens' t, 1: t=0 for the rest);
        context [B, text_len, D] in the compute dtype; rope: (cos, sin) or upstream's complex table.
        chunk_size None runs the plain forward; a token count runs the lean one, which with autograd off
        updates x in place and returns it."""
        mod = (self.scale_shift_table.float().unsqueeze(2) + temb).unbind(1)
        if chunk_size is None:
            return self._plain(x, mod, num_noisy, context, rope)
        return self._lean(x, mod, num_noisy, context, rope, chunk_size)

    def _plain(self, x, mod, split, context, rope):
        """Upstream's block as written: each intermediate stays referenced until the block returns."""
        dtype = context.dtype
        shift, scale, gate, c_shift, c_scale, c_gate = mod
        parts = modulate_parts(self.norm1(x), split, shift, scale)
        norm_x = torch.cat(parts, dim=1)
        z = gated_parts(self.attn1(norm_x.to(dtype), rope=rope), split, gate)
        y = torch.cat(z, dim=1)
        x1 = x + y
        x2 = x1 + self.attn2(self.norm2(x1).to(dtype), context=context)
        parts2 = modulate_parts(self.norm3(x2), split, c_shift, c_scale)
        norm2_x = torch.cat(parts2, dim=1)
        z2 = gated_parts(self.ffn(norm2_x.to(dtype)), split, c_gate)
        y2 = torch.cat(z2, dim=1)
        return x2 + y2

    def _lean(self, x, mod, split, context, rope, chunk_size):
        dtype = context.dtype
        shift, scale, gate, c_shift, c_scale, c_gate = mod
        ranges = spans(x.shape[1], chunk_size)

        def modulated(norm, h, start, shift, scale):
            return torch.cat(modulate_parts(norm(h), local_split(split, start, h), shift, scale), dim=1).to(dtype)

        def self_attention(h, start, end):  # queries of one span against every key
            q = self.attn1.query(modulated(self.norm1, h, start, shift, scale), rope_span(rope, start, end))
            return torch.cat(gated_parts(self.attn1.attend(q, k, v), local_split(split, start, h), gate), dim=1)

        def cross_attention(h, start, end):
            return self.attn2.attend(self.attn2.query(self.norm2(h).to(dtype)), *text_kv)

        def ffn(h, start, end):
            y = self.ffn(modulated(self.norm3, h, start, c_shift, c_scale))
            return torch.cat(gated_parts(y, local_split(split, start, h), c_gate), dim=1)

        k, v = fill(ranges, lambda s, e: self.attn1.key_value(modulated(self.norm1, x[:, s:e], s, shift, scale),
                                                              rope_span(rope, s, e)))
        x = add_residual(x, ranges, self_attention)
        del k, v
        text_kv = self.attn2.key_value(context)
        x = add_residual(x, ranges, cross_attention)
        del text_kv
        return add_residual(x, ranges, ffn)
