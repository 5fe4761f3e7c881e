"""LiteRT (.tflite) for MediaTek's APU: the model converted with litert-torch, statically quantized with
ai-edge-quantizer (w8a16: int8 weights, int16 activations; w8a8), and run on LiteRT's CPU interpreter here.

    out/model.tflite        float conversion
    out/model.w8a16.tflite  quantized (what the phone's NeuroPilot plugin compiles for the APU)

The converted copy computes GroupNorm in elementary ops (litert-torch's own lowering broadcasts the group statistics
with BROADCAST_TO, which the APU's op list lacks; ours keeps groups of very different scales within int16, see
ExportableGroupNorm) and splits a convolution whose float weight exceeds 32 MiB over its output channels
(ai-edge-quantizer 0.10 quantizes such a constant in chunks of a 2-D view and fails on a conv's 4-D weight: "input
operand has more dimensions than allowed by the axis remapping"). The APU compile itself (LiteRT's ahead-of-time
MediaTek plugin) needs MediaTek's NeuroPilot SDK, which its PyPI package downloads from MediaTek at install time:
not available here, so the report's "verified on" is the CPU interpreter (the quantized graph's own integer
kernels), and ops outside the profile's list are named as not on the APU.
"""

from __future__ import annotations

import copy
import importlib.util
import math
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from torch import nn

from compress.errors import UserInputError
from compress.export import report
from compress.export.onnx_export import make_exportable
from compress.export.targets import TargetProfile

FLOAT_FILE = "model.tflite"
SIGNATURE = "serving_default"
APU_COMPILE = ("not compiled for the APU: LiteRT's MediaTek plugin needs the NeuroPilot SDK, which "
               "ai-edge-litert-sdk-mediatek downloads from MediaTek at install (not reachable here)")


def litert_status() -> tuple[bool, str]:
    """Whether litert-torch, ai-edge-litert and ai-edge-quantizer are importable here, and why not."""
    missing = [name for name, module in (("litert-torch", "litert_torch"), ("ai-edge-litert", "ai_edge_litert"),
                                         ("ai-edge-quantizer", "ai_edge_quantizer"))
               if importlib.util.find_spec(module) is None]
    if missing:
        return False, (f"{', '.join(missing)} not installed (bash scripts/setup_litert.sh: the `litert` extra, "
                       "~760 MB with jax, in its own .venv-litert): no LiteRT conversion")
    return True, ""


def require_litert() -> None:
    available, reason = litert_status()
    if not available:
        raise UserInputError(f"LiteRT target: {reason}")


def quantized_file(precision: str) -> str:
    return f"model.{precision}.tflite"


def convert(model: torch.nn.Module, inputs: dict, path: Path) -> Path:
    """`model(**inputs)` as a float .tflite at `path` (litert-torch, static shapes)."""
    import litert_torch

    with torch.no_grad():
        litert_torch.convert(model.eval(), (), sample_kwargs=inputs).export(str(path))
    return path


def quantize(float_path: Path, calibration: list[dict], precision: str, path: Path) -> Path:
    """Static quantization of `float_path` on `calibration` (ai-edge-quantizer's min/max recipes): w8a16 = int8
    weights and int16 activations, w8a8 = int8 both."""
    from ai_edge_quantizer import quantizer, recipe

    recipes = {"w8a16": recipe.static_wi8_ai16, "w8a8": recipe.static_wi8_ai8}
    if precision not in recipes:
        raise UserInputError(f"LiteRT export: precision '{precision}' is not offered ({', '.join(recipes)}, none)")
    quant = quantizer.Quantizer(str(float_path))
    quant.load_quantization_recipe(recipes[precision]())
    ranges = quant.calibrate({SIGNATURE: [_arrays(b) for b in calibration]}, num_threads=1)
    quant.quantize(ranges, serialize_to_path=str(path), enable_progress_report=False)
    return path


def run(path: Path, batches: list[dict]) -> list[np.ndarray]:
    """The model's first output on each batch from LiteRT's CPU interpreter; integer inputs and outputs are
    quantized and dequantized with the model's own scales."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    runner = interpreter.get_signature_runner(SIGNATURE)
    details = runner.get_input_details()
    output = next(iter(runner.get_output_details().values()))
    results = []
    for batch in batches:
        feeds = {name: _quantized(value, details[name]) for name, value in _arrays(batch).items() if name in details}
        results.append(_dequantized(next(iter(runner(**feeds).values())), output))
    return results


def op_counts(path: Path) -> dict[str, int]:
    """Builtin op counts of a .tflite (without delegates, so every op shows)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_path=str(path),
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    return dict(Counter(op["op_name"] for op in interpreter._get_ops_details()).most_common())


class ExportableGroupNorm(nn.Module):
    """GroupNorm in elementary ops, normalized per group and scaled per channel: litert-torch lowers nn.GroupNorm
    with a BROADCAST_TO of the group statistics to the channels per norm, an op outside the APU's list.

    Written so that its int16 quantization neither squares the input's range nor divides by a zero. A trained
    lipsync-120m's groups span 2000x in scale (a 450m's 500,000x): their variance spans the square, more than int16
    holds, a small group's variance quantizes to zero and the integer DIV kernel stops. So each group is scaled to
    about one first: x / sqrt(var + eps) = z / sqrt(mean(z^2) + floor^2) with z = x / s, floor = sqrt(eps) / s holds
    for any s > 0. s = sqrt(range(x)) * sqrt(mean(relu(x))) + sqrt(eps) (for centered x mean(relu(x)) is half the mean
    absolute value; the quantizer has no ABS; max as -min(-x), since it leaves REDUCE_MAX in float), plus SCALE_FLOOR
    of the largest group's, so no divisor falls below int16's step. The geometric mean because each scale alone
    costs precision: by the range, the trained lipsync-30m's w8a16 error vs torch rose from 0.0036 to 0.0135; by the
    mean absolute value, the trained tiny decoder's from 0.0019 to 0.0056 (a spiky group's z spans far more than
    one); by both 0.0039 and 0.0021. The last divisor is at least n^(-1/4) for a group of n values, and is floored
    at DIVISOR_FLOOR for groups under about 1e-6 of the largest group's scale, which int16 zeroes anyway.
    """

    SCALE_FLOOR, DIVISOR_FLOOR = 1e-3, 1e-4

    def __init__(self, norm: nn.GroupNorm):
        super().__init__()
        self.groups, self.eps, self.weight, self.bias = norm.num_groups, norm.eps, norm.weight, norm.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grouped = x.reshape(x.shape[0], self.groups, -1)
        centered = grouped - grouped.mean(-1, keepdim=True)
        spread = _amax(centered, -1) - centered.amin(-1, keepdim=True)
        # the square roots first: their product spans the scales' range, the product of the two would span its square
        scale = torch.sqrt(spread) * torch.sqrt(torch.relu(centered).mean(-1, keepdim=True)) + math.sqrt(self.eps)
        scale = scale + self.SCALE_FLOOR * _amax(scale, 1)
        z, floor = centered / scale, math.sqrt(self.eps) / scale
        divisor = torch.sqrt((z * z).mean(-1, keepdim=True) + floor * floor)
        y = (z / torch.clamp(divisor, min=self.DIVISOR_FLOOR)).reshape(x.shape)
        if self.weight is None:
            return y
        per_channel = (1, -1) + (1,) * (x.dim() - 2)
        return y * self.weight.reshape(per_channel) + self.bias.reshape(per_channel)


def _amax(x: torch.Tensor, dim: int) -> torch.Tensor:
    """x.amax(dim, keepdim=True) as REDUCE_MIN: ai-edge-quantizer quantizes REDUCE_MIN, not REDUCE_MAX."""
    return -(-x).amin(dim, keepdim=True)


#: ai-edge-quantizer 0.10 quantizes a constant larger than this in chunks of a [-1, last dim] view, broadcasting the
#: per-channel scales (of the weight's rank) onto it: a 4-D conv weight fails (uniform_quantize_tensor.py)
QUANTIZER_CHUNKED_BYTES = 32 * 1024**2


class OutputSplitConv2d(nn.Module):
    """A Conv2d as convolutions over near-equal slices of its output channels, concatenated: the same function, each
    weight at most `max_bytes`, and, quantized per output channel, the same int8 weights as the whole one's."""

    def __init__(self, conv: nn.Conv2d, max_bytes: int = QUANTIZER_CHUNKED_BYTES):
        super().__init__()
        channels_per_piece = max(1, max_bytes // (conv.weight[0].numel() * conv.weight.element_size()))
        count = -(-conv.out_channels // channels_per_piece)
        weights = conv.weight.detach().tensor_split(count)
        biases = [None] * count if conv.bias is None else conv.bias.detach().tensor_split(count)
        self.pieces = nn.ModuleList(_conv_with(conv, w, b) for w, b in zip(weights, biases))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([piece(x) for piece in self.pieces], dim=1)


def _conv_with(conv: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Conv2d:
    """`conv`'s hyperparameters with these weights (a slice of its output channels)."""
    piece = nn.Conv2d(conv.in_channels, len(weight), conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                      bias=bias is not None, padding_mode=conv.padding_mode, device="meta")
    piece.weight = nn.Parameter(weight.clone(), requires_grad=False)
    if bias is not None:
        piece.bias = nn.Parameter(bias.clone(), requires_grad=False)
    return piece


def _too_large_to_quantize(module: nn.Module) -> bool:
    return (isinstance(module, nn.Conv2d) and module.groups == 1
            and module.weight.numel() * module.weight.element_size() > QUANTIZER_CHUNKED_BYTES)


def _for_apu(module: nn.Module) -> nn.Module | None:
    if isinstance(module, nn.GroupNorm):
        return ExportableGroupNorm(module)
    return OutputSplitConv2d(module) if _too_large_to_quantize(module) else None


def export_litert(model: torch.nn.Module, target: TargetProfile, precision: str, batches: list[dict],
                  calibration: list[dict], torch_out: list[torch.Tensor], out_dir: Path) -> dict:
    """Convert (a copy, GroupNorms in elementary ops, convolutions too large for the quantizer split), quantize, run
    both on the CPU interpreter against torch; the report's LiteRT part."""
    require_litert()
    out_dir = Path(out_dir)
    model = copy.deepcopy(model)
    replaced = make_exportable(model, _for_apu)
    float_path = convert(model, batches[0], out_dir / FLOAT_FILE)
    reference = [t.numpy() for t in torch_out]
    result = {"replaced_modules": replaced, "float": _checked(float_path, batches, reference, target)}
    if precision != "none":
        path = quantize(float_path, calibration or batches, precision, out_dir / quantized_file(precision))
        result["quantized"] = _checked(path, batches, reference, target)
    result.update(verified_on="CPU interpreter", apu=APU_COMPILE)
    return result


def _checked(path: Path, batches: list[dict], reference: list[np.ndarray], target: TargetProfile) -> dict:
    ops = op_counts(path)
    return {"file": path.name, "file_bytes": path.stat().st_size, "ops": ops,
            "not_on_apu": target.unsupported_ops(ops),
            "vs_torch": report.worst([report.errors(o, r) for o, r in zip(run(path, batches), reference)])}


def _arrays(batch: dict) -> dict[str, np.ndarray]:
    return {k: np.ascontiguousarray(v.detach().float().numpy() if hasattr(v, "detach") else v, np.float32)
            for k, v in batch.items()}


def _quantized(value: np.ndarray, detail: dict) -> np.ndarray:
    dtype = detail["dtype"]
    if np.issubdtype(dtype, np.floating):
        return value.astype(dtype)
    scale, zero = _scale(detail)
    info = np.iinfo(dtype)
    return np.clip(np.round(value / scale) + zero, info.min, info.max).astype(dtype)


def _dequantized(value: np.ndarray, detail: dict) -> np.ndarray:
    if np.issubdtype(value.dtype, np.floating):
        return value.astype(np.float32)
    scale, zero = _scale(detail)
    return ((value.astype(np.float32) - zero) * scale).astype(np.float32)


def _scale(detail: dict) -> tuple[float, float]:
    params = detail["quantization_parameters"]
    return float(params["scales"][0]), float(params["zero_points"][0])
