"""quantize_: swap the selected nn.Linear modules of any model for QuantizedLinear, in place."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from compress.quant.config import QuantConfig
from compress.quant.linear import QuantizedLinear

QUANTIZED = "quantized"


@dataclass(frozen=True)
class LayerDecision:
    name: str
    shape: tuple[int, int]  # (out_features, in_features)
    reason: str  # QUANTIZED, or why the layer stays in high precision
    bytes_before: int  # weight bytes
    bytes_after: int  # weight (+ weight_scale) bytes

    @property
    def quantized(self) -> bool:
        return self.reason == QUANTIZED


@dataclass
class QuantReport:
    """Every Linear (or candidate weight) seen, what happened to it, and the byte totals of all tensors."""

    scheme: str
    layers: list[LayerDecision] = field(default_factory=list)
    bytes_before: int = 0
    bytes_after: int = 0

    @property
    def quantized(self) -> list[str]:
        return [layer.name for layer in self.layers if layer.quantized]

    @property
    def kept(self) -> dict[str, str]:
        return {layer.name: layer.reason for layer in self.layers if not layer.quantized}

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        lines = [f"{self.scheme}: {len(self.quantized)} of {len(self.layers)} linear layers quantized, "
                 f"{self.bytes_before / 2**20:.1f} MiB -> {self.bytes_after / 2**20:.1f} MiB"]
        lines += [f"  kept {name}: {reason}" for name, reason in self.kept.items()]
        return "\n".join(lines)


def _nbytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()


def tensor_bytes(model: nn.Module) -> int:
    """Bytes of all parameters and buffers of `model` (each shared tensor counted once)."""
    return sum(_nbytes(t) for t in [*model.parameters(), *model.buffers()])


def linear_module_names(model: nn.Module) -> list[str]:
    """Names of the nn.Linear modules of `model` (works on meta-device models)."""
    return [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]


def _skip_reason(name: str, module: nn.Linear, config: QuantConfig) -> str | None:
    if isinstance(module, nn.modules.linear.NonDynamicallyQuantizableLinear):
        return "out_proj of nn.MultiheadAttention (its weight is read directly)"
    return config.skip_reason(name, module.out_features, module.in_features)


def selected_linears(model: nn.Module, config: QuantConfig) -> list[tuple[str, nn.Linear, str | None]]:
    """(name, linear, skip reason or None) for every nn.Linear of `model`."""
    if isinstance(model, nn.Linear):
        raise ValueError("quantize_ swaps submodules in place: wrap a bare nn.Linear in a container module")
    return [(name, module, _skip_reason(name, module, config))
            for name, module in model.named_modules() if isinstance(module, nn.Linear)]


def quantize_(model: nn.Module, config: QuantConfig) -> QuantReport:
    """Quantize the Linear layers of `model` selected by `config`, in place; returns what was done."""
    report = QuantReport(config.scheme, bytes_before=tensor_bytes(model))
    for name, linear, reason in selected_linears(model, config):
        before = after = _nbytes(linear.weight)
        if reason is None:
            qlinear = QuantizedLinear.from_linear(linear, config)
            model.set_submodule(name, qlinear)
            after = _nbytes(qlinear.weight) + _nbytes(qlinear.weight_scale)
        report.layers.append(LayerDecision(name, (linear.out_features, linear.in_features), reason or QUANTIZED,
                                           before, after))
    report.bytes_after = tensor_bytes(model)
    return report
