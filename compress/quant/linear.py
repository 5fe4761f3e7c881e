"""QuantizedLinear: a drop-in nn.Linear replacement that stores a real fp8/int8 weight plus fp32 scales."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from compress.quant import kernels
from compress.quant.config import QuantConfig
from compress.quant.schemes import get_scheme

# Integer dtypes of the same width, used to move stored tensors without letting .to(dtype) cast them.
_SAME_WIDTH_INT = {1: torch.uint8, 4: torch.int32}
_STORED = ("weight", "weight_scale")


class QuantizedLinear(nn.Module):
    """y = x @ W^T + b with W stored quantized.

    State dict (plain tensors): `weight` (float8_e4m3fn or int8, (out, in)), `weight_scale` (fp32,
    (out, 1) per channel or (1, 1) per tensor) and `bias` (original dtype) when present.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool, scheme: str,
                 granularity: str = "per_channel", allow_emulation: bool = False,
                 device: torch.device | str | None = None, bias_dtype: torch.dtype = torch.float32):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.scheme, self.granularity, self.allow_emulation = scheme, granularity, allow_emulation
        self.quant_scheme = get_scheme(scheme)
        scale_rows = out_features if granularity == "per_channel" else 1
        self.register_buffer("weight", torch.empty(out_features, in_features,
                                                   dtype=self.quant_scheme.storage_dtype(), device=device))
        self.register_buffer("weight_scale", torch.empty(scale_rows, 1, dtype=torch.float32, device=device))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_features, dtype=bias_dtype, device=device), requires_grad=False)
        else:
            self.register_parameter("bias", None)

    @classmethod
    def empty_like(cls, linear: nn.Linear, config: QuantConfig) -> QuantizedLinear:
        """Uninitialised replacement for `linear` (same device, meta included), to be filled by load_state_dict."""
        bias = linear.bias
        return cls(linear.in_features, linear.out_features, bias is not None, config.scheme, config.granularity,
                   config.allow_emulation, device=linear.weight.device,
                   bias_dtype=bias.dtype if bias is not None else torch.float32)

    @classmethod
    @torch.no_grad()
    def from_linear(cls, linear: nn.Linear, config: QuantConfig) -> QuantizedLinear:
        qlinear = cls.empty_like(linear, config)
        qlinear.weight, qlinear.weight_scale = kernels.quantize_weight(
            linear.weight, qlinear.quant_scheme.storage_dtype(), per_channel=config.granularity == "per_channel")
        if linear.bias is not None:
            qlinear.bias = nn.Parameter(linear.bias.detach(), requires_grad=False)
        return qlinear

    def dequantized_weight(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return kernels.dequantize_weight(self.weight, self.weight_scale, dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.quant_scheme.weight_only:
            bias = None if self.bias is None else self.bias.to(x.dtype)
            return F.linear(x, self.dequantized_weight(x.dtype), bias)
        flat = x.reshape(-1, self.in_features)
        y = kernels.dynamic_matmul(self.quant_scheme.kernel, flat, self.weight, self.weight_scale,
                                   per_row=self.granularity == "per_channel", allow_emulation=self.allow_emulation)
        if self.bias is not None:
            y = y + self.bias.to(y.dtype)
        return y.to(x.dtype).reshape(*x.shape[:-1], self.out_features)

    def _apply(self, fn, recurse=True):
        # Module.to(dtype) / .half() would cast the fp8 weight (a floating dtype) and the fp32 scales.
        # Apply fn to same-width integer views instead: devices move (and to_empty works), dtypes stay.
        stored = {name: self._buffers.pop(name) for name in _STORED}
        super()._apply(fn, recurse)
        for name, tensor in stored.items():
            self._buffers[name] = fn(tensor.view(_SAME_WIDTH_INT[tensor.element_size()])).view(tensor.dtype)
        return self

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"scheme={self.scheme}, granularity={self.granularity}")
