"""3-axis rotary position embedding (time, height, width) at arbitrary integer positions.

Upstream keeps a complex128 table, one entry per token, head and channel pair, and multiplies q/k in
float64 (`rope_table` / `apply_rope_complex`, the plain forward). The lean forward computes the angles in
float64, keeps cos/sin [L, 1, head_dim // 2] in float32 and rotates in float32 (`rope_cos_sin` /
`apply_rope`), which agrees to float32 rounding.
"""

from __future__ import annotations

import numpy as np
import torch

ROPE_THETA = 10000.0


def axis_dims(head_dim: int) -> tuple[int, int, int]:
    """Rotary channels given to time, height and width: d - 4*(d//6), 2*(d//6), 2*(d//6)."""
    if head_dim % 2:
        raise ValueError(f"head_dim must be even for rotary embedding, got {head_dim}")
    return head_dim - 4 * (head_dim // 6), 2 * (head_dim // 6), 2 * (head_dim // 6)


def spread(start: int, extent: int, count: int) -> np.ndarray:
    """`count` positions spread over [start, start + extent - 1], truncated to int (upstream's linspace)."""
    return np.linspace(start, start + extent - 1, count).astype(int)


def spread_backwards(start: int, extent: int, count: int) -> np.ndarray:
    """Negative counterpart of `spread` for history frames: start < 0, positions run towards zero."""
    return -np.linspace(-start, -start - extent + 1, count).astype(int)


def grid(f: np.ndarray, h: np.ndarray, w: np.ndarray) -> torch.Tensor:
    """[len(f) * len(h) * len(w), 3] positions in token order (time-major, then height, then width)."""
    axes = torch.meshgrid(*(torch.as_tensor(np.asarray(a), dtype=torch.long) for a in (f, h, w)), indexing="ij")
    return torch.stack([a.reshape(-1) for a in axes], dim=-1)


def _angles(positions: torch.Tensor, head_dim: int, device=None) -> torch.Tensor:
    """[L, 1, head_dim // 2] float64 rotation angles for [L, 3] integer positions."""
    angles = []
    for axis, dim in enumerate(axis_dims(head_dim)):
        inv_freq = 1.0 / torch.pow(ROPE_THETA, torch.arange(0, dim, 2, dtype=torch.float64).div(dim))
        angles.append(positions[:, axis : axis + 1].to(torch.float64) * inv_freq)
    return torch.cat(angles, dim=1).unsqueeze(1).to(device)


def rope_cos_sin(positions: torch.Tensor, head_dim: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin, each [L, 1, head_dim // 2] float32, for [L, 3] integer positions."""
    angles = _angles(positions, head_dim, device)
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate interleaved channel pairs of x [B, L, heads, head_dim]; returns float32."""
    real, imag = x.float().unflatten(-1, (-1, 2)).unbind(-1)
    return torch.stack([real * cos - imag * sin, real * sin + imag * cos], dim=-1).flatten(-2)


def rotate(x: torch.Tensor, rope) -> torch.Tensor:
    """Rotate x [B, L, heads, head_dim] by a (cos, sin) pair or by upstream's complex table; returns float32."""
    return apply_rope_complex(x, rope) if isinstance(rope, torch.Tensor) else apply_rope(x, *rope)


def rope_span(rope, start: int, end: int):
    """The (cos, sin) pair of tokens [start, end)."""
    return tuple(t[start:end] for t in rope)


def rope_table(positions: torch.Tensor, head_dim: int, batch: int, heads: int, device=None) -> torch.Tensor:
    """Upstream's table: [B, L, heads, head_dim // 2] complex128, materialised for every batch entry and head."""
    angles = _angles(positions, head_dim, device)
    return torch.polar(torch.ones_like(angles), angles).expand(batch, -1, heads, -1).contiguous()


def apply_rope_complex(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Upstream's rotation: x [B, L, heads, head_dim] in complex128 times the table; returns float32."""
    return torch.view_as_real(torch.view_as_complex(x.double().unflatten(-1, (-1, 2))) * table).flatten(-2).float()
