"""The quantization schemes, one row each: what the kernels, QuantizedLinear, the quantize stage and the memory
planner know about a scheme, read from here rather than from its name.

Importable without torch (recipe parsing reads the scheme names): dtypes are stored by name and resolved on use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from compress.errors import UserInputError

if TYPE_CHECKING:
    import torch

Kernel = Literal["dequantize", "int8_mm", "fp8_scaled_mm"]


@dataclass(frozen=True)
class QuantScheme:
    """One scheme.

    storage: torch dtype name of the stored weight (and, for dynamic schemes, of the activations).
    kernel: the matmul of QuantizedLinear.forward (compress.quant.kernels):
      dequantize     the weight is dequantized to the activation dtype, then a plain matmul
      int8_mm        per-token int8 activations, integer GEMM (torch._int_mm, oneDNN, or exact emulation)
      fp8_scaled_mm  e4m3 activations, torch._scaled_mm (CUDA compute capability >= 8.9, or fp32 emulation)
    weight_multiple: both weight dimensions must be multiples of it (else the layer stays unquantized).
    """

    name: str
    storage: str
    kernel: Kernel
    weight_multiple: int = 1

    @property
    def weight_only(self) -> bool:
        """Activations stay in high precision (the weight is dequantized); otherwise they are quantized per call."""
        return self.kernel == "dequantize"

    @property
    def bytes_per_parameter(self) -> int:
        """Bytes of one stored weight (the fp32 scales come on top)."""
        return self.storage_dtype().itemsize

    @property
    def needs_fp8_kernels(self) -> bool:
        return self.kernel == "fp8_scaled_mm"

    def storage_dtype(self) -> torch.dtype:
        import torch

        return getattr(torch, self.storage)

    def shape_problem(self, out_features: int, in_features: int) -> str | None:
        """Why a weight of this shape cannot use the scheme's kernel, or None."""
        if out_features % self.weight_multiple or in_features % self.weight_multiple:
            return f"shape ({out_features}, {in_features}) not divisible by {self.weight_multiple} ({self.kernel} kernel)"
        return None


SCHEMES: dict[str, QuantScheme] = {s.name: s for s in (
    QuantScheme("fp8_weight_only", "float8_e4m3fn", "dequantize"),
    QuantScheme("fp8_dynamic", "float8_e4m3fn", "fp8_scaled_mm", weight_multiple=16),
    QuantScheme("int8_weight_only", "int8", "dequantize"),  # symmetric
    QuantScheme("int8_dynamic", "int8", "int8_mm"),  # W8A8
)}

# The type of a scheme field (QuantConfig.scheme, the quantize stage's `scheme`): one of the names above.
Scheme = Literal[tuple(SCHEMES)]  # type: ignore[valid-type]


def get_scheme(name: str) -> QuantScheme:
    try:
        return SCHEMES[name]
    except KeyError:
        raise UserInputError(f"unknown quantization scheme {name!r}; known: {', '.join(SCHEMES)}") from None
