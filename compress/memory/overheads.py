"""Per-GPU costs outside the tensors (a light module: the `vram` command's option defaults come from here)."""

from __future__ import annotations

from dataclasses import dataclass

from compress.errors import UserInputError


MAX_CONTEXT_GIB = 64


@dataclass(frozen=True)
class Overheads:
    """Per-GPU costs outside the tensors: the CUDA context (driver, kernels, cuBLAS/cuDNN workspaces), and
    caching-allocator slack (fragmentation, block rounding) as a fraction of the non-weight bytes."""

    cuda_context_bytes: int = 768 * 2**20
    fragmentation: float = 0.10

    def __post_init__(self):
        if not 0 <= self.cuda_context_bytes <= MAX_CONTEXT_GIB * 2**30:
            raise UserInputError(f"CUDA context: expected 0 to {MAX_CONTEXT_GIB} GiB; found "
                                 f"{self.cuda_context_bytes} bytes")
        if not 0 <= self.fragmentation <= 1:  # NaN fails too
            raise UserInputError(f"fragmentation: expected a fraction from 0 to 1; found {self.fragmentation}")
