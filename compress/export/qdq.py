"""Static QDQ quantization of a float ONNX export with onnxruntime: `quant_pre_process`, then calibrated
`quantize_static` (QDQ format, per-channel weights). w8a16 = uint16 activations + int8 weights (the usual
choice for generative models on HTP), w8a8 = uint8 activations + int8 weights.
"""

from __future__ import annotations

import math
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, StaticQuantConfig, quantize
from onnxruntime.quantization.shape_inference import quant_pre_process

from compress.errors import UserInputError
from compress.export.onnx_export import PROTOBUF_LIMIT

ACTIVATION_TYPES = {"w8a16": QuantType.QUInt16, "w8a8": QuantType.QUInt8}
#: calibrated peak |x| above which a GroupNormalization's input is scaled down for the HTP (`prescale_group_norms`)
GROUP_NORM_HTP_PEAK = 2.0**15


class ArrayReader(CalibrationDataReader):
    """Calibration batches (dicts of numpy arrays keyed by graph input name), read once in order."""

    def __init__(self, batches: list[dict[str, np.ndarray]]):
        if not batches:
            raise UserInputError("quantization needs at least one calibration batch")
        self.batches = batches
        self._next = iter(batches)

    def get_next(self) -> dict | None:
        return next(self._next, None)

    def rewind(self) -> None:
        self._next = iter(self.batches)


def quantize_qdq(float_path: Path, out_path: Path, calibration: list[dict[str, np.ndarray]], precision: str,
                 for_qnn: bool) -> Path:
    """Quantize `float_path` into `out_path` (QDQ); `for_qnn` applies the QNN EP's HTP constraints
    (onnxruntime's `get_qnn_qdq_config`: op-specific types and symmetric weights the HTP accepts)."""
    if precision not in ACTIVATION_TYPES:
        raise UserInputError(f"quantize: expected one of {', '.join(ACTIVATION_TYPES)}; found '{precision}'")
    float_path, out_path = Path(float_path), Path(out_path)
    large = _is_large(float_path)
    prepared = out_path.with_name(out_path.stem + ".pre.onnx")
    # for the HTP, onnxruntime's graph optimizations are skipped: with them the students' HTP outputs departed
    # from onnxruntime's QDQ outputs (rel 0.35-1.1 measured; 0.0003-0.001 without). Cost: Linear layers on 3-D
    # inputs stay MatMul, whose weights get_qnn_qdq_config quantizes per tensor (Conv and Gemm: per channel).
    quant_pre_process(str(float_path), str(prepared), skip_optimization=for_qnn, save_as_external_data=large,
                      all_tensors_to_one_file=True)
    if for_qnn:
        peaks = input_peaks(prepared, "GroupNormalization", calibration, large)
        _rewrite(prepared, large, split_silu, lambda model: prescale_group_norms(model, peaks))
    reader = ArrayReader(calibration)
    activation, weight = ACTIVATION_TYPES[precision], QuantType.QInt8
    if for_qnn:
        from onnxruntime.quantization.execution_providers.qnn import get_qnn_qdq_config

        config = get_qnn_qdq_config(str(prepared), reader, activation_type=activation, weight_type=weight,
                                    per_channel=True)
        config.use_external_data_format = large
    else:
        config = StaticQuantConfig(reader, quant_format=QuantFormat.QDQ, activation_type=activation,
                                   weight_type=weight, per_channel=True, use_external_data_format=large)
    try:
        quantize(str(prepared), str(out_path), config)
    finally:
        prepared.unlink(missing_ok=True)
        prepared.with_name(prepared.name + ".data").unlink(missing_ok=True)
    return out_path


def split_silu(model: onnx.ModelProto) -> int:
    """Rewrite each SiLU, Mul(x, Sigmoid(x)), as a + a * Tanh(a) with a = x / 2 (the same function).

    The HTP backend fuses x * sigmoid(x) into its 16-bit Swish, whose output is wrong at some shapes and
    ranges (rel L2 against onnxruntime's QDQ, measured: 0.7-0.86 at 12x12 and 10x10, 0.0001 at 8x8 and 14x14;
    the trained 96x96 quickstart student: 0.39 on random inputs, 0.60-0.72 on its calibration batches). The
    form a * (1 + Tanh(a)) still fails where a value sits at the top of its uint16 range (the HTP folds the
    constant Add into the Tanh: 0.036 on a reference batch); this form has no constant to fold (0.0002).
    Returns the number of SiLUs rewritten."""
    producers = {out: node for node in model.graph.node for out in node.output}
    nodes, count = [], 0
    for node in model.graph.node:
        x = _silu_input(node, producers)
        if x is None:
            nodes.append(node)
            continue
        count += 1
        name, out = node.name or node.output[0], node.output[0]
        half = _scalar(model, f"{name}_half", 0.5)
        nodes += [onnx.helper.make_node("Mul", [x, half], [f"{name}_a"], name=f"{name}_half_x"),
                  onnx.helper.make_node("Tanh", [f"{name}_a"], [f"{name}_tanh"], name=f"{name}_tanh"),
                  onnx.helper.make_node("Mul", [f"{name}_a", f"{name}_tanh"], [f"{name}_b"], name=f"{name}_a_tanh"),
                  onnx.helper.make_node("Add", [f"{name}_a", f"{name}_b"], [out], name=name)]
    used = {name for node in nodes for name in node.input} | {o.name for o in model.graph.output}
    del model.graph.node[:]
    model.graph.node.extend(n for n in nodes if n.op_type != "Sigmoid" or n.output[0] in used)
    return count


def prescale_group_norms(model: onnx.ModelProto, peaks: dict[str, float], limit: float = GROUP_NORM_HTP_PEAK) -> int:
    """Rewrite each GroupNormalization whose input x peaks above `limit` (`peaks`: calibrated max |x| by tensor
    name) to read x * s with epsilon * s^2 (the same function), s the power of two that brings the peak into
    (0.5, 1]: the same quantization grid, scaled.

    The HTP's 16-bit GroupNormalization is wrong on large inputs, at any shape (HTP vs onnxruntime's QDQ rel L2,
    measured on standard normal inputs times std, 64 channels at 8x8 and 448 at 32x32, 32 groups: 0.0004 up to
    std 1e4, 0.0009 at 3e4, 0.014 at 4e4, 0.07 at 6e4, 0.23 at 1e5, 0.60 at 1e6). The briefly trained
    lipsync-450m's up-path norms read peaks of 2e5 to 1.4e7 at 256x256 (0.04 to 0.83 each); scaled as here, 0.0004
    for any s from 2^-14 to 2^-24. Not every GroupNorm: scaling a small input further down fails too (std 1e-5
    times 2^-10: 0.035), and the students' other norms peak below 2e4, where the HTP agrees (0.0004-0.0006).
    Returns the number of GroupNormalizations rewritten."""
    count = 0
    for index, node in reversed(list(enumerate(model.graph.node))):
        peak = peaks.get(node.input[0], 0.0) if node.op_type == "GroupNormalization" else 0.0
        if peak <= limit:
            continue
        count += 1
        scale = 2.0 ** -math.ceil(math.log2(peak))
        name = node.name or node.output[0]
        epsilon = next((a for a in node.attribute if a.name == "epsilon"), None)
        if epsilon is None:
            node.attribute.append(onnx.helper.make_attribute("epsilon", 1e-5))  # the operator's default
            epsilon = node.attribute[-1]  # (append stored a copy)
        epsilon.f = epsilon.f * scale * scale
        scaled = f"{name}_prescaled"
        model.graph.node.insert(index, onnx.helper.make_node(
            "Mul", [node.input[0], _scalar(model, f"{name}_prescale", scale)], [scaled], name=f"{name}_prescale"))
        node.input[0] = scaled
    return count


def input_peaks(path: Path, op_type: str, calibration: list[dict[str, np.ndarray]], large: bool) -> dict[str, float]:
    """Max |x| over the calibration batches of each tensor that an `op_type` node reads or writes (onnxruntime's
    MinMax calibrator on the float model at `path`); empty when the model has no such node."""
    from onnxruntime.quantization.calibrate import create_calibrator

    if not any(node.op_type == op_type for node in onnx.load(path, load_external_data=False).graph.node):
        return {}
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        calibrator = create_calibrator(path, [op_type], augmented_model_path=str(Path(tmp) / "augmented.onnx"),
                                       use_external_data_format=large)
        calibrator.collect_data(ArrayReader(calibration))
        ranges = calibrator.compute_data()
    return {name: float(np.abs(np.asarray(data.range_value, np.float64)).max()) for name, data in ranges.items()}


def _silu_input(node, producers) -> str | None:
    """x when `node` is Mul(x, Sigmoid(x)) in either order, else None."""
    if node.op_type != "Mul":
        return None
    for x, gate in (node.input, node.input[::-1]):
        sigmoid = producers.get(gate)
        if sigmoid is not None and sigmoid.op_type == "Sigmoid" and sigmoid.input[0] == x:
            return x
    return None


def _scalar(model: onnx.ModelProto, name: str, value: float) -> str:
    model.graph.initializer.append(numpy_helper.from_array(np.array(value, np.float32), name))
    return name


def _rewrite(path: Path, large: bool, *rewrites) -> None:
    """Apply each of `rewrites` to the ONNX model at `path`, in place."""
    model = onnx.load(path)
    for rewrite in rewrites:
        rewrite(model)
    onnx.save(model, path, save_as_external_data=large, all_tensors_to_one_file=True,
              location=path.name + ".data")


def _is_large(path: Path) -> bool:
    return path.stat().st_size + sum(p.stat().st_size for p in path.parent.glob(path.name + ".data")) >= PROTOBUF_LIMIT


def qdq_summary(model: onnx.ModelProto) -> dict:
    """What the QDQ graph really stores: activation and weight integer types, per-channel weight axes."""
    initializers = {init.name: init for init in model.graph.initializer}
    activations, weights, axes = Counter(), Counter(), Counter()
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and node.input[0] not in initializers and len(node.input) > 2:
            activations[_dtype_name(initializers.get(node.input[2]))] += 1
        elif node.op_type == "DequantizeLinear" and node.input[0] in initializers:
            weights[_dtype_name(initializers[node.input[0]])] += 1
            scale = initializers.get(node.input[1])
            per_channel = scale is not None and numpy_helper.to_array(scale).size > 1
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            axes[f"axis {axis}" if per_channel else "per-tensor"] += 1
    return {"activation_types": dict(activations), "weight_types": dict(weights), "weight_granularity": dict(axes)}


def _dtype_name(init) -> str:
    if init is None:
        return "unknown"
    return onnx.helper.tensor_dtype_to_np_dtype(init.data_type).name
