"""Per-layer quantization sensitivity, for choosing which layers to keep in high precision."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from compress.quant.api import selected_linears
from compress.quant.config import QuantConfig
from compress.quant.linear import QuantizedLinear
from compress.utils.console import untracked


def relative_error(actual: torch.Tensor, reference: torch.Tensor) -> float:
    """||actual - reference|| / ||reference|| (Frobenius norms, computed in float64)."""
    reference = reference.detach().double()
    diff = torch.linalg.vector_norm(actual.detach().double() - reference)
    norm = torch.linalg.vector_norm(reference)
    if norm == 0:
        return 0.0 if diff == 0 else float("inf")
    return (diff / norm).item()


@torch.no_grad()
def layer_sensitivity(model: nn.Module, config: QuantConfig,
                      run_fn: Callable[[nn.Module], torch.Tensor], track=untracked) -> dict[str, float]:
    """Relative output error of `run_fn(model)` when only one selected Linear is quantized, per layer.

    Each layer is swapped for its QuantizedLinear and restored before the next one, so the model is
    unchanged afterwards. Layers `config` does not select are not measured. `track(iterable, description, total)`
    shows progress (e.g. `StageContext.track`).
    """
    reference = run_fn(model)
    errors = {}
    layers = [(name, linear) for name, linear, reason in selected_linears(model, config) if reason is None]
    for name, linear in track(layers, "layer sensitivity", len(layers)):
        model.set_submodule(name, QuantizedLinear.from_linear(linear, config))
        try:
            errors[name] = relative_error(run_fn(model), reference)
        finally:
            model.set_submodule(name, linear)
    return errors


def most_sensitive(sensitivity: dict[str, float], n: int) -> list[str]:
    """The n layers with the largest error: candidates for `config.with_ignore(*names)` (mixed precision)."""
    return sorted(sensitivity, key=sensitivity.__getitem__, reverse=True)[:n]
