"""Quantization config: which scheme, at which granularity, applied to which Linear layers."""

from __future__ import annotations

import fnmatch
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict

FORMAT_VERSION = 1

Scheme = Literal["fp8_weight_only", "fp8_dynamic", "int8_weight_only", "int8_dynamic"]
Granularity = Literal["per_channel", "per_tensor"]

WEIGHT_ONLY_SCHEMES = ("fp8_weight_only", "int8_weight_only")

# LiveAvatar's FP8 recipe for Wan2.2-S2V keeps these in high precision (native module names).
WAN_S2V_HIGH_PRECISION = (
    "text_embedding.*",
    "time_embedding.*",
    "time_projection.*",
    "head.*",
    "casual_audio_encoder.encoder.final_linear",
)

# torch._scaled_mm needs both matrix dimensions of the weight to be multiples of 16.
FP8_MATMUL_MULTIPLE = 16


class QuantConfig(BaseModel):
    """What to quantize and how.

    scheme:
      fp8_weight_only   e4m3 weights, dequantized to the activation dtype for the matmul
      fp8_dynamic       e4m3 weights and activations, torch._scaled_mm (CUDA compute capability >= 8.9)
      int8_weight_only  symmetric int8 weights, dequantized for the matmul
      int8_dynamic      int8 weights, per-token int8 activations, integer matmul (W8A8)
    granularity: weight scales per output channel or one per tensor. For fp8_dynamic the activation
      scales follow it (per token for per_channel, one per tensor for per_tensor); int8_dynamic
      activations are always per token.
    targets / ignore: fnmatch globs on module names (as in `model.named_modules()`); a Linear is
      quantized when it matches a target and no ignore pattern. `*` also matches dots.
    allow_emulation: for fp8_dynamic without FP8 kernels, emulate the numerics in fp32 instead of raising.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: Literal[1] = FORMAT_VERSION
    scheme: Scheme
    granularity: Granularity = "per_channel"
    targets: tuple[str, ...] = ("*",)
    ignore: tuple[str, ...] = ()
    allow_emulation: bool = False

    @property
    def weight_only(self) -> bool:
        return self.scheme in WEIGHT_ONLY_SCHEMES

    def skip_reason(self, name: str, out_features: int, in_features: int) -> str | None:
        """Why the Linear `name` of this shape stays in high precision, or None if it gets quantized."""
        if not any(fnmatch.fnmatchcase(name, pattern) for pattern in self.targets):
            return "not in targets"
        for pattern in self.ignore:
            if fnmatch.fnmatchcase(name, pattern):
                return f"matched ignore pattern {pattern!r}"
        if self.scheme == "fp8_dynamic" and (out_features % FP8_MATMUL_MULTIPLE or in_features % FP8_MATMUL_MULTIPLE):
            return (f"shape ({out_features}, {in_features}) not divisible by {FP8_MATMUL_MULTIPLE} "
                    "(fp8 scaled matmul)")
        return None

    def with_ignore(self, *patterns: str) -> QuantConfig:
        """A copy that also ignores `patterns` (e.g. the most sensitive layers, for mixed precision)."""
        return self.model_copy(update={"ignore": self.ignore + tuple(p for p in patterns if p not in self.ignore)})

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict) -> QuantConfig:
        return cls.model_validate(data)

    @classmethod
    def from_json(cls, text: str) -> QuantConfig:
        return cls.model_validate_json(text)
