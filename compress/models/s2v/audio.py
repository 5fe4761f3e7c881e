"""Audio path of the S2V DiT: causal audio encoder (upstream `casual_audio_encoder`) and audio injectors."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import Attention


class CausalConv1d(nn.Conv1d):
    """Conv1d that only sees the past: replicate-pads kernel_size - 1 steps on the left."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.kernel_size[0] - 1, 0), mode="replicate"))


def _norm_act(x: torch.Tensor) -> torch.Tensor:
    return F.silu(F.layer_norm(x, x.shape[-1:], eps=1e-6))


class CausalAudioEncoder(nn.Module):
    """wav2vec2 hidden states [B, layers, audio_dim, T] -> per latent frame one global token and
    `num_tokens` local tokens plus a learned padding token. Two stride-2 convs downsample time 4x."""

    def __init__(self, audio_dim: int, num_layers: int, dim: int, num_tokens: int):
        super().__init__()
        if dim % 4:
            raise ValueError(f"the audio encoder needs a model dim divisible by 4, got {dim}")
        self.num_tokens = num_tokens
        self.layer_weights = nn.Parameter(torch.full((1, num_layers, 1, 1), 0.01))
        self.conv1_local = CausalConv1d(audio_dim, dim // 4 * num_tokens, 3)
        self.conv1_global = CausalConv1d(audio_dim, dim // 4, 3)
        self.conv2 = CausalConv1d(dim // 4, dim // 2, 3, stride=2)
        self.conv3 = CausalConv1d(dim // 2, dim, 3, stride=2)
        self.final_linear = nn.Linear(dim, dim)
        self.padding_tokens = nn.Parameter(torch.zeros(1, 1, 1, dim))

    def _downsample(self, x: torch.Tensor) -> torch.Tensor:
        """[N, T, C] after the first conv -> [N, ceil(T / 4), dim]."""
        x = _norm_act(x)
        x = _norm_act(self.conv2(x.transpose(1, 2)).transpose(1, 2))
        return _norm_act(self.conv3(x.transpose(1, 2)).transpose(1, 2))

    def forward(self, features: torch.Tensor, pad_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Prepends `pad_frames` copies of the first step (the motion history window), then encodes.
        Returns global [B, T', dim] and local [B, T', num_tokens + 1, dim], T' = ceil((T + pad_frames) / 4)."""
        x = features.to(self.layer_weights.dtype)
        x = torch.cat([x[..., :1].expand(*x.shape[:-1], pad_frames), x], dim=-1)
        weights = F.silu(self.layer_weights)
        x = (x * weights / weights.sum(dim=1, keepdim=True)).sum(dim=1)  # [B, audio_dim, T]
        batch = x.shape[0]

        local = self.conv1_local(x).unflatten(1, (self.num_tokens, -1)).flatten(0, 1).transpose(1, 2)
        local = self._downsample(local).unflatten(0, (batch, self.num_tokens)).transpose(1, 2)
        local = torch.cat([local, self.padding_tokens.expand(batch, local.shape[1], 1, -1)], dim=2)

        glob = self.final_linear(self._downsample(self.conv1_global(x).transpose(1, 2)))
        return glob, local


class AudioAdaLayerNorm(nn.Module):
    """LayerNorm (eps 1e-5, no affine) with shift, scale = linear(silu(audio)) (shift first)."""

    def __init__(self, dim: int):
        super().__init__()
        self.linear = nn.Linear(dim, 2 * dim)

    def forward(self, x: torch.Tensor, emb: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        shift, scale = self.linear(F.silu(emb).to(dtype)).float().chunk(2, dim=-1)
        return F.layer_norm(x.float(), x.shape[-1:], eps=1e-5) * (1 + scale[:, None]) + shift[:, None]


class AudioInjector(nn.Module):
    """Runs after one DiT block on the noisy tokens: per latent frame, AdaLN from the global audio token,
    then cross-attention of the frame's video tokens to that frame's audio tokens. Returns the residual."""

    def __init__(self, dim: int, num_heads: int, eps: float, head_dim: int | None = None):
        super().__init__()
        self.norm = AudioAdaLayerNorm(dim)
        self.attn = Attention(dim, num_heads, eps, head_dim)

    def forward(self, x: torch.Tensor, audio_global: torch.Tensor, audio_tokens: torch.Tensor) -> torch.Tensor:
        """x [B, F*n, D] float32; audio_global [B, F, D] float32; audio_tokens [B, F, k, D] in compute dtype."""
        batch, frames = audio_tokens.shape[:2]
        h = x.reshape(batch * frames, -1, x.shape[-1])
        h = self.norm(h, audio_global.flatten(0, 1), audio_tokens.dtype)
        out = self.attn(h.to(audio_tokens.dtype), context=audio_tokens.flatten(0, 1))
        return out.reshape(x.shape)

    def zero_init(self) -> None:
        for linear in (self.attn.to_out[0], self.norm.linear):
            nn.init.zeros_(linear.weight)
            nn.init.zeros_(linear.bias)
