"""Core ML for the Apple Neural Engine: the model as an `mlprogram` (coremltools 9, from `torch.export`) with the
target's compute precision and weight compression, and checks of what was written.

    out/model.mlpackage     the converted model (float16 compute, int8 linear or 6-bit palettized weights)

The conversion runs on Linux. Its checks: the spec is an ML program of the expected specification version; the ops
compute in the target's precision (the dtype of every non-constant op's outputs); the weights carry the compression
the profile asks for (constexpr decompression ops and their share of the weight bytes); ops outside the profile's list
may leave the ANE. Core ML predicts only on macOS: elsewhere the report says "conversion only" with coremltools'
reason, and the numbers it can give are torch's float16 emulation (named as such), never a Core ML run. Before
converting, a model whose float16 run is not finite (activations beyond float16's range, which the ANE computes in)
is refused (`Float16OverflowError`, exit 1).
"""

from __future__ import annotations

import copy
import importlib.util
import math
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from compress.errors import CompressError, UserInputError
from compress.export import report
from compress.export.targets import CoreMLSettings, TargetProfile

MODEL_FILE = "model.mlpackage"
#: coremltools' ML program dtypes (proto enum values of `MILSpec.DataType`)
_DTYPE_NAMES = {10: "float16", 11: "float32", 12: "float64", 21: "int8", 22: "int16", 23: "int32", 24: "int64",
                1: "bool", 31: "uint8"}
COMPRESSION_OPS = ("constexpr_affine_dequantize", "constexpr_blockwise_shift_scale", "constexpr_lut_to_dense")


class Float16OverflowError(CompressError):
    """The model run in float16, the ANE's compute precision, gives inf or NaN (activations beyond float16's range)."""


def coreml_status() -> tuple[bool, str]:
    """Whether coremltools 9 is importable here, and why not."""
    if importlib.util.find_spec("coremltools") is None:
        return False, ("coremltools is not installed (pip install 'coremltools>=9,<10'; a dependency of compress on "
                       "x86-64 Linux and macOS): no Core ML conversion")
    import coremltools

    if not coremltools.__version__.startswith("9."):
        return False, f"coremltools {coremltools.__version__} is installed; the Core ML export needs 9.x"
    return True, ""


def require_coreml() -> None:
    available, reason = coreml_status()
    if not available:
        raise UserInputError(f"Core ML target: {reason}")


def convert(model: torch.nn.Module, inputs: dict, settings: CoreMLSettings, precision: str, path: Path):
    """`model(**inputs)` as an ML program at `path` (.mlpackage): float16 or float32 compute and, for a quantized
    precision, the profile's weight compression. Returns the MLModel."""
    import coremltools as ct

    if precision not in ("w8a16", "none"):
        raise UserInputError(f"Core ML export: precision '{precision}' is not offered (w8a16: compressed weights, "
                             "float16 compute; none: float32)")
    with torch.no_grad():
        program = torch.export.export(model.eval(), (), kwargs=inputs).run_decompositions({})
    compute = ct.precision.FLOAT16 if computes_in_float16(settings, precision) else ct.precision.FLOAT32
    mlmodel = ct.convert(program, inputs=[ct.TensorType(name=n, shape=tuple(v.shape)) for n, v in inputs.items()],
                         convert_to="mlprogram", compute_precision=compute,
                         minimum_deployment_target=getattr(ct.target, settings.minimum_deployment_target),
                         skip_model_load=True)
    if precision != "none":
        mlmodel = compress_weights(mlmodel, settings.weights)
    mlmodel.save(str(path))
    return mlmodel


def compress_weights(mlmodel, weights: str):
    """The profile's weight compression (coremltools.optimize.coreml): 8-bit symmetric per-channel linear, or
    6-bit k-means palettization; weights under coremltools' 2048-element threshold stay as they are."""
    from coremltools.optimize import coreml as cto

    if weights == "linear-int8":
        config = cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(
            mode="linear_symmetric", dtype="int8", granularity="per_channel"))
        return cto.linear_quantize_weights(mlmodel, config)
    if weights == "palettize-6bit":
        if importlib.util.find_spec("sklearn") is None:
            raise UserInputError("Core ML weights 'palettize-6bit': coremltools' k-means needs scikit-learn "
                                 "(pip install scikit-learn); 'linear-int8' (the a17-pro default) does not")
        return cto.palettize_weights(mlmodel, cto.OptimizationConfig(
            global_config=cto.OpPalettizerConfig(nbits=6, mode="kmeans")))
    return mlmodel


def spec_summary(mlmodel) -> dict:
    """What the written spec holds: its type and version, op counts, the dtypes non-constant ops compute in, and
    the weight compression (decompression ops, compressed share of the constant bytes)."""
    spec = mlmodel.get_spec()
    ops = [op for function in spec.mlProgram.functions.values()
           for block in function.block_specializations.values() for op in block.operations]
    computed = Counter(_DTYPE_NAMES.get(out.type.tensorType.dataType, str(out.type.tensorType.dataType))
                       for op in ops if not op.type.startswith("const") for out in op.outputs)
    return {"type": spec.WhichOneof("Type"), "specification_version": spec.specificationVersion,
            "ops": dict(Counter(op.type for op in ops).most_common()),
            "compute_dtypes": dict(computed.most_common()),
            "compressed_weights": sum(op.type in COMPRESSION_OPS for op in ops),
            "inputs": {i.name: list(i.type.multiArrayType.shape) for i in spec.description.input}}


def computes_in_float16(settings: CoreMLSettings, precision: str) -> bool:
    """Whether the converted model computes in float16: a quantized precision on a float16 profile (none: float32)."""
    return precision != "none" and settings.compute_precision == "float16"


def check_spec(summary: dict, settings: CoreMLSettings, precision: str) -> list[str]:
    """What in the spec departs from the profile, in words (empty when nothing does)."""
    problems = []
    if summary["type"] != "mlProgram":
        problems.append(f"spec type {summary['type']}, expected mlProgram")
    float_dtypes = {d for d in summary["compute_dtypes"] if d.startswith("float")}
    expected = "float16" if computes_in_float16(settings, precision) else "float32"
    if float_dtypes - {expected}:
        problems.append(f"ops compute in {sorted(float_dtypes)}, expected {expected} only")
    if precision != "none" and settings.weights != "none" and not summary["compressed_weights"]:
        problems.append(f"no compressed weights ({settings.weights} asked)")
    return problems


def predict(mlmodel, batches: list[dict]) -> tuple[list[np.ndarray] | None, str]:
    """Core ML's outputs on `batches` where it can predict (macOS), else None and coremltools' reason."""
    try:
        outputs = [mlmodel.predict({k: v.detach().float().numpy() for k, v in b.items()}) for b in batches]
    except Exception as err:  # coremltools raises a bare Exception off macOS
        return None, f"Core ML prediction unavailable here ({type(err).__name__}: {err})"
    return [next(iter(o.values())) for o in outputs], ""


def float16_emulation(model: torch.nn.Module, batches: list[dict], torch_out: list[torch.Tensor]) -> dict:
    """Errors of the model run by torch in float16 on the CPU against float32: the ANE's compute precision,
    emulated (not Core ML, not the compressed weights)."""
    half = copy.deepcopy(model).half().eval()
    with torch.no_grad():
        outputs = [half(**{k: v.half() for k, v in b.items()}).float() for b in batches]
    return {**report.worst([report.errors(o.numpy(), t.numpy()) for o, t in zip(outputs, torch_out)]),
            "source": "torch float16 on the CPU vs float32 (an emulation of the ANE's precision, not Core ML)"}


def export_coreml(model: torch.nn.Module, target: TargetProfile, precision: str, batches: list[dict],
                  torch_out: list[torch.Tensor], out_dir: Path) -> dict:
    """Convert, check the spec, predict where Core ML can; the report's Core ML part."""
    require_coreml()
    import coremltools

    settings = target.coreml or CoreMLSettings()
    emulation = float16_emulation(model, batches, torch_out) if computes_in_float16(settings, precision) else None
    if emulation is not None and not math.isfinite(emulation["rel_l2"]):
        raise Float16OverflowError(
            f"{target.name}: {type(model).__name__} run in float16 (the ANE's compute precision, emulated by torch) "
            f"gives inf or NaN: its activations leave float16's range (+-65504), so the ANE's output would be wrong. "
            f"Train it with smaller activations (e.g. a lower learning rate), or export with precision none (float32 "
            f"compute)")
    path = Path(out_dir) / MODEL_FILE
    mlmodel = convert(model, batches[0], settings, precision, path)
    summary = spec_summary(mlmodel)
    result = {"file": MODEL_FILE, "file_bytes": _dir_bytes(path), "coremltools": coremltools.__version__,
              "compute_precision": settings.compute_precision if precision != "none" else "float32",
              "weights": settings.weights if precision != "none" else "none",
              "minimum_deployment_target": settings.minimum_deployment_target, **summary,
              "spec_problems": check_spec(summary, settings, precision),
              "may_leave_ane": target.unsupported_ops(summary["ops"])}
    outputs, reason = predict(_loaded(mlmodel, path), batches)
    if outputs is None:
        result.update(verified_on="conversion only", reason=reason)
        if emulation is not None:  # float16 compute: the ANE's precision, emulated
            result["float16_emulation"] = emulation
    else:
        result.update(verified_on="Core ML (this Mac)", vs_torch=report.worst(
            [report.errors(o, t.numpy()) for o, t in zip(outputs, torch_out)]))
    return result


def _loaded(mlmodel, path: Path):
    """The saved package, loaded for prediction where Core ML exists (conversion skipped loading it)."""
    import coremltools as ct

    try:
        return ct.models.MLModel(str(path))
    except Exception:  # noqa: BLE001 - off macOS loading fails as prediction does; predict() reports why
        return mlmodel


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
