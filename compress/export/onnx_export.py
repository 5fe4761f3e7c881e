"""Float ONNX export with the dynamo exporter, static shapes only, after swapping modules that do not map
cleanly onto the target's ops (RMSNorm, LayerNorm) for exact equivalents built from elementary ops.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections import Counter
from pathlib import Path

import onnx
import torch
from torch import nn

from compress.errors import UserInputError

#: protobuf's limit: larger models keep their weights in an external data file beside model.onnx
PROTOBUF_LIMIT = 2 * 1024**3


class ExportableRMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * weight (+ bias) over the last dimension, in elementary ops. A division,
    not `x * rsqrt(...)`: rsqrt exports as Sqrt + Reciprocal, and the HTP's 16-bit Reciprocal of a
    wide-range input is far from onnxruntime's (0.40 relative difference measured, 0.0005 with Div)."""

    def __init__(self, eps: float, weight: torch.Tensor | None, bias: torch.Tensor | None = None):
        super().__init__()
        self.eps = eps
        self.weight = None if weight is None else nn.Parameter(weight.detach().clone(), requires_grad=False)
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        y = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        if self.weight is not None:
            y = y * self.weight.float()
        if self.bias is not None:
            y = y + self.bias.float()
        return y.to(dtype)


class ExportableLayerNorm(nn.Module):
    """LayerNorm over the last dimension in elementary ops: HTP rejects a w8a16 LayerNormalization node
    (its 8-bit scale with 16-bit activations), while mean/variance/multiply quantize and place cleanly."""

    def __init__(self, eps: float, weight: torch.Tensor | None, bias: torch.Tensor | None):
        super().__init__()
        self.eps = eps
        self.weight = None if weight is None else nn.Parameter(weight.detach().clone(), requires_grad=False)
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centered = x - x.mean(-1, keepdim=True)
        # centered * centered, not pow(2): onnxruntime's LayerNormFusion (run by quant_pre_process) would fuse the
        # Pow form back into the LayerNormalization node that the HTP rejects
        y = centered / torch.sqrt((centered * centered).mean(-1, keepdim=True) + self.eps)
        if self.weight is not None:
            y = y * self.weight
        return y if self.bias is None else y + self.bias


def _replacement(module: nn.Module) -> nn.Module | None:
    """The exportable equivalent of `module`, or None when it exports cleanly as it is."""
    if isinstance(module, nn.LayerNorm) and len(module.normalized_shape) == 1:
        return ExportableLayerNorm(module.eps, module.weight, module.bias)
    if type(module).__name__.endswith("RMSNorm") and hasattr(module, "eps"):
        eps = module.eps if module.eps is not None else torch.finfo(torch.float32).eps
        return ExportableRMSNorm(eps, getattr(module, "weight", None), getattr(module, "bias", None))
    return None


def make_exportable(model: nn.Module, replacement=_replacement) -> list[str]:
    """Swap, in place, every module that does not export cleanly for its equivalent (`replacement(module)`, None to
    keep it); returns their names."""
    replaced = []
    for name, module in list(model.named_modules()):
        new = replacement(module)
        if new is None or not name:
            continue
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, new)
        replaced.append(f"{name} ({type(module).__name__})")
    return replaced


def check_exportable(model_class: type, spec: str) -> None:
    """Refuse, before any loading or tracing, a model whose class says it is no device model
    (`onnx_export_refusal`: why, and what to export instead)."""
    reason = getattr(model_class, "onnx_export_refusal", None)
    if reason:
        raise UserInputError(f"{spec}: a {model_class.__name__} is not exported to ONNX: {reason}")


def check_static_inputs(inputs: dict) -> None:
    """Example inputs must be tensors (or plain constants that the export bakes in)."""
    for name, value in inputs.items():
        if isinstance(value, torch.Tensor) and any(d == 0 for d in value.shape):
            raise UserInputError(f"input '{name}' has an empty dimension {tuple(value.shape)}; export needs real shapes")


def check_static_graph(model: onnx.ModelProto, where: str = "model") -> None:
    """Every graph input and output has fixed dimensions, or a UserInputError names the tensor and dim."""
    for kind, values in (("input", model.graph.input), ("output", model.graph.output)):
        for value in values:
            dims = value.type.tensor_type.shape.dim
            for index, dim in enumerate(dims):
                if not dim.HasField("dim_value"):
                    symbol = dim.dim_param or "unknown"
                    raise UserInputError(
                        f"{where}: {kind} '{value.name}' dimension {index} is dynamic ('{symbol}'); NPU targets "
                        f"need static shapes: fix it in the model (e.g. no data-dependent sizes) or in the "
                        f"target's shapes")


def export_onnx(model: nn.Module, inputs: dict, path: Path, opset: int) -> Path:
    """Export `model(**inputs)` to `path` (dynamo exporter, fixed shapes); weights go to an external data
    file when the model exceeds protobuf's 2 GB. Returns `path`."""
    check_static_inputs(inputs)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    with _quiet_exporter(), torch.no_grad():
        program = torch.onnx.export(model.eval(), (), kwargs=inputs, dynamo=True, opset_version=opset,
                                    external_data=size >= PROTOBUF_LIMIT, verbose=False)
    program.save(path, external_data=size >= PROTOBUF_LIMIT)
    check_static_graph(onnx.load(path, load_external_data=False), str(path))
    return path


def op_counts(model: onnx.ModelProto) -> dict[str, int]:
    """Node count by op type (top-level graph), most frequent first."""
    return dict(Counter(node.op_type for node in model.graph.node).most_common())


def count_macs(model: nn.Module, inputs: dict) -> int:
    """Multiply-accumulates of one forward (analytic: torch's FlopCounterMode, FLOPs / 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(**inputs)
    return counter.get_total_flops() // 2


@contextlib.contextmanager
def _quiet_exporter():
    """Without the exporter's step-by-step prints and optional-package warnings."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.onnx._internal.exporter._registration")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
