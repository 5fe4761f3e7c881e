"""Quantization config: which scheme, at which granularity, applied to which Linear layers."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from compress.quant.schemes import SCHEMES, QuantScheme, Scheme

FORMAT_VERSION = 1

Granularity = Literal["per_channel", "per_tensor"]

# LiveAvatar's FP8 recipe for Wan2.2-S2V keeps these in high precision (native module names; our model's
# own list, in our names, is WanS2VTransformer3DModel._keep_in_high_precision).
WAN_S2V_HIGH_PRECISION = (
    "text_embedding.*",
    "time_embedding.*",
    "time_projection.*",
    "head.*",
    "casual_audio_encoder.encoder.final_linear",
)


def default_ignore(model, ignore: Sequence[str] | None = None, keep_first_last_blocks: bool = True) -> list[str]:
    """The Linear layers of `model` kept in high precision by default (the quantize stage's and the memory
    planner's): `ignore`, or else the model's own `_keep_in_high_precision` globs, and, with
    `keep_first_last_blocks`, its first and last transformer blocks (`blocks.N`)."""
    patterns = list(ignore if ignore is not None else getattr(model, "_keep_in_high_precision", []))
    num_blocks = len(getattr(model, "blocks", []))
    if keep_first_last_blocks and num_blocks:
        patterns += ["blocks.0.*", f"blocks.{num_blocks - 1}.*"]
    return patterns


class QuantConfig(BaseModel):
    """What to quantize and how.

    scheme: a name in compress.quant.schemes.SCHEMES (fp8_weight_only, fp8_dynamic, int8_weight_only,
      int8_dynamic), where each scheme's storage, kernel and constraints are described.
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
    def quant_scheme(self) -> QuantScheme:
        return SCHEMES[self.scheme]

    @property
    def weight_only(self) -> bool:
        return self.quant_scheme.weight_only

    def skip_reason(self, name: str, out_features: int, in_features: int) -> str | None:
        """Why the Linear `name` of this shape stays in high precision, or None if it gets quantized."""
        if not any(fnmatch.fnmatchcase(name, pattern) for pattern in self.targets):
            return "not in targets"
        for pattern in self.ignore:
            if fnmatch.fnmatchcase(name, pattern):
                return f"matched ignore pattern {pattern!r}"
        return self.quant_scheme.shape_problem(out_features, in_features)

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
