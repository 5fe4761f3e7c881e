"""Per-GPU costs outside the tensors (a light module: the `vram` command's option defaults come from here)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Overheads:
    """Per-GPU costs outside the tensors: the CUDA context (driver, kernels, cuBLAS/cuDNN workspaces), and
    caching-allocator slack (fragmentation, block rounding) as a fraction of the non-weight bytes."""

    cuda_context_bytes: int = 768 * 2**20
    fragmentation: float = 0.10
