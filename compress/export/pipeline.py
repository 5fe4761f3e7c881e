"""The whole export: exportable modules, float ONNX + parity, op coverage, QDQ quantization + errors, HTP
placement and run, latency, sizes and the frame budget, written as `report.json` beside the models.

    out/model.onnx            float export (static shapes)
    out/model.qdq.onnx        QDQ quantized (w8a16 / w8a8)
    out/model.qnn_ctx.onnx    offline QNN context model + model.qnn_ctx_qnn.bin (HTP targets, when QNN runs)
    out/report.json           with, for a lip-sync student, the per-frame chain's cost (`compress.export.chain`)

Core ML and LiteRT targets take the torch model through their own converters instead (`compress.export.coreml`:
model.mlpackage; `compress.export.litert`: model.tflite + model.w8a16.tflite), with the same cost figures.

The HTP's output is a gate: beyond HTP_TOLERANCE from onnxruntime's QDQ run (or from the float model, over
the QDQ's own error) the export fails naming the worst output and a suspect node (`compress.export.bisect`),
unless `allow_wrong_htp` keeps it, marked WRONG in the report.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import onnx
import torch

from compress.errors import CompressError, UserInputError
from compress.export import chain, onnx_export, qdq, qnn, report
from compress.export.bisect import Bisector
from compress.export.targets import TargetProfile
from compress.utils.console import untracked

FLOAT_FILE, QDQ_FILE, REPORT_FILE = "model.onnx", "model.qdq.onnx", "report.json"
HTP_TOLERANCE = 0.02  # rel L2: HTP vs onnxruntime's QDQ, and HTP vs float beyond the QDQ's own error
WRONG = "HTP output wrong"
NATIVE_RUNTIMES = ("coreml", "litert")  # converted from torch by their own tools, not through ONNX


class UnsupportedOpsError(UserInputError):
    """The float export uses ops the target does not run (listed in the report before quantizing)."""


class WrongHtpOutputError(CompressError):
    """The HTP ran the whole graph but its output departs from onnxruntime's QDQ or the float model."""


@dataclass
class ExportRequest:
    model: torch.nn.Module
    target: TargetProfile
    precision: str | None = None  # None: the target's default
    calibration: list[dict] = field(default_factory=list)  # forward kwargs, same shapes as the example inputs
    calibration_source: str | dict[str, str] = "example_inputs"  # per input name, or one for all
    teacher: list[tuple[dict, torch.Tensor]] = field(default_factory=list)  # (inputs, teacher output) pairs
    latency_repeats: int = 20
    allow_wrong_htp: bool = False  # keep an export whose HTP output is wrong (marked WRONG in the report)
    example: dict | None = None  # the export's (and the HTP check's) input; None: the model's example_inputs
    example_source: str = "the model's example_inputs (random)"


def require_converter(target: TargetProfile) -> None:
    """A clear error, before any work, when the target's converter is not installed here."""
    if target.runtime == "coreml":
        from compress.export.coreml import require_coreml

        require_coreml()
    elif target.runtime == "litert":
        from compress.export.litert import require_litert

        require_litert()


def example_inputs(model: torch.nn.Module, target: TargetProfile, **extra) -> dict:
    """The model's static example inputs at the target's shapes (only the shape arguments it accepts)."""
    if not hasattr(model, "example_inputs"):
        raise UserInputError(f"{type(model).__name__} has no example_inputs(); export needs its static input shapes")
    accepted = inspect.signature(model.example_inputs).parameters
    wanted = {**target.shapes.model_dump(exclude_none=True), **extra}
    return model.example_inputs(**{k: v for k, v in wanted.items() if k in accepted})


def run_export(request: ExportRequest, out_dir: Path, log: Callable[[str], None] = print,
               track: Callable = untracked) -> dict:
    out_dir = Path(out_dir)
    model, target = request.model.eval(), request.target
    onnx_export.check_exportable(type(model), type(model).__name__)
    require_converter(target)
    precision = request.precision or target.precision
    inputs = example_inputs(model, target)
    if request.example:
        inputs = _check_shapes(request.example, inputs)
    batches = [inputs] + [_check_shapes(b, inputs) for b in request.calibration]
    steps = iter(track(range(5), f"export for {target.name}", total=5))
    result = {"target": target.name, "runtime": target.runtime, "opset": target.opset, "precision": precision,
              "calibration": {"batches": len(request.calibration), "source": request.calibration_source},
              "example_input": request.example_source}

    next(steps)
    with torch.no_grad():
        before = [_output(model, b) for b in batches]
        result["replaced_modules"] = onnx_export.make_exportable(model)
        torch_out = [_output(model, b) for b in batches]
    result["replacement_parity"] = report.worst([report.errors(a, b) for a, b in zip(torch_out, before)])
    macs = onnx_export.count_macs(model, inputs)
    result["macs_per_call"] = {"value": macs, "source": "analytic (torch FlopCounterMode)"}
    result["budget"] = report.budget_report(target, macs, _frames_per_call(model, torch_out[0]))
    if (per_frame := chain.chain_report(model, target)) is not None:
        result["chain"] = per_frame
    if target.runtime in NATIVE_RUNTIMES:
        list(steps)
        return _native_export(request, precision, batches, torch_out, out_dir, result, log)
    float_path = onnx_export.export_onnx(model, inputs, out_dir / FLOAT_FILE, target.opset)
    float_model = onnx.load(float_path, load_external_data=False)
    result["float"] = {"file_bytes": report.file_bytes(float_path), "ops": onnx_export.op_counts(float_model),
                       "inputs": {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim]
                                  for i in float_model.graph.input}}

    next(steps)
    float_session = report.cpu_session(float_path)
    float_out = [float_session.run(None, report.feeds(float_session, b))[0] for b in batches]
    result["float"]["parity_vs_torch"] = report.worst([report.errors(o, t) for o, t in zip(float_out, torch_out)])
    unsupported = target.unsupported_ops(result["float"]["ops"])
    result["op_coverage"] = {"allowed_ops": "all" if target.allowed_ops is None else len(target.allowed_ops),
                             "unsupported": unsupported}
    if unsupported:
        write_report(out_dir, result)
        raise UnsupportedOpsError(f"{target.name} does not run op(s) {', '.join(unsupported)} of the float export "
                                  f"({out_dir / REPORT_FILE} has the node counts); not quantizing")
    latency = {"float_ms": report.median_latency_ms(float_session, report.feeds(float_session, inputs),
                                                    request.latency_repeats)}
    if precision != "none":
        next(steps)
        result["quantized"], qdq_session = _quantize(request, float_path, out_dir, batches, float_out, precision)
        latency["quantized_ms"] = report.median_latency_ms(qdq_session, report.feeds(qdq_session, inputs),
                                                           request.latency_repeats)
        latency["quantized_over_float"] = latency["quantized_ms"] / latency["float_ms"]
        if request.teacher:
            result["quantized"]["vs_teacher"] = _teacher_errors(qdq_session, request.teacher)
            result["float"]["vs_teacher"] = _teacher_errors(float_session, request.teacher)
        next(steps)
        if target.runtime == "qnn-htp":
            checks = {"example input": inputs, **({"calibration batch 1": batches[1]} if len(batches) > 1 else {})}
            result["htp"] = _htp(out_dir, target, {name: report.feeds(qdq_session, b) for name, b in checks.items()},
                                 qdq_session, float_session)
    result["cpu_latency"] = {**latency, "source": "measured (onnxruntime CPU EP, median)",
                             "repeats": request.latency_repeats, "threads": "onnxruntime default"}
    next(steps, None)
    write_report(out_dir, result)
    if result.get("htp", {}).get("numerics") == WRONG and not request.allow_wrong_htp:
        raise WrongHtpOutputError(f"{WRONG}: {result['htp']['problem']} ({out_dir / REPORT_FILE}; to keep "
                                  "the export, marked, set allow_wrong_htp: true in the export stage or pass "
                                  "--allow-wrong-htp)")
    log(f"  {target.name}: float parity {result['float']['parity_vs_torch']['rel_l2']:.2e}"
        + (f", {precision} error {result['quantized']['vs_float']['rel_l2']:.3g}" if "quantized" in result else "")
        + (f", HTP {result['htp']['status']}" if "htp" in result else "")
        + (f" ({result['htp']['numerics']}, rel L2 {result['htp']['vs_cpu_qdq']['rel_l2']:.3g} vs QDQ)"
           if "numerics" in result.get("htp", {}) else ""))
    return result


def _native_export(request, precision, batches, torch_out, out_dir, result, log) -> dict:
    """Core ML and LiteRT targets: their own converters take the torch model (no ONNX), with their own checks."""
    from compress.export import coreml, litert

    model, target = request.model, request.target
    out_dir.mkdir(parents=True, exist_ok=True)
    if target.runtime == "coreml":
        result["coreml"] = coreml.export_coreml(model, target, precision, batches, torch_out, out_dir)
    else:
        result["litert"] = litert.export_litert(model, target, precision, batches, batches[1:], torch_out, out_dir)
    write_report(out_dir, result)
    part = result[target.runtime]
    quantized = part.get("quantized", {}).get("vs_torch")
    log(f"  {target.name}: verified on {part['verified_on']}"
        + (f", {precision} vs torch rel L2 {quantized['rel_l2']:.3g}" if quantized else "")
        + (f" ({part['reason']})" if part.get("reason") else ""))
    return result


def _quantize(request, float_path, out_dir, batches, float_out, precision):
    calibration = [report.feeds(report.cpu_session(float_path), b) for b in batches[1:] or batches]
    qdq_path = qdq.quantize_qdq(float_path, out_dir / QDQ_FILE, calibration, precision,
                                for_qnn=request.target.runtime == "qnn-htp")
    session = report.cpu_session(qdq_path)
    outputs = [session.run(None, report.feeds(session, b))[0] for b in batches]
    info = {"file": QDQ_FILE, "file_bytes": report.file_bytes(qdq_path),
            "ops": onnx_export.op_counts(onnx.load(qdq_path, load_external_data=False)),
            "types": qdq.qdq_summary(onnx.load(qdq_path, load_external_data=False)),
            "vs_float": report.worst([report.errors(q, f) for q, f in zip(outputs, float_out)])}
    return info, session


def _teacher_errors(session, teacher: list[tuple[dict, torch.Tensor]]) -> dict:
    return report.worst([report.errors(session.run(None, report.feeds(session, x))[0], y) for x, y in teacher])


def _htp(out_dir, target, feeds: dict[str, dict], qdq_session, float_session) -> dict:
    """Placement and, when the whole graph ran, the HTP's errors on each feed and output against onnxruntime's
    QDQ and float runs; the worst is judged against HTP_TOLERANCE (`numerics`: ok or WRONG, with a suspect)."""
    settings = target.qnn
    options = qnn.htp_options(settings.htp_arch if settings else None, settings.soc_model if settings else None)
    result = qnn.verify_on_htp(out_dir / QDQ_FILE, list(feeds.values()), out_dir, options)
    outputs = result.pop("outputs", None)
    if outputs is None:
        return result
    names = [o.name for o in qdq_session.get_outputs()]
    checks = {(feed, name): _htp_errors(htp, cpu, ref)
              for (feed, values), htp_out in zip(feeds.items(), outputs)
              for name, htp, cpu, ref in zip(names, htp_out, qdq_session.run(None, values),
                                             float_session.run(None, values))}
    feed, output = max(checks, key=lambda key: checks[key]["excess"])
    result.update(checks[feed, output], worst_input=feed, worst_output=output,
                  checks={f"{f}: {n}": e["vs_cpu_qdq"]["rel_l2"] for (f, n), e in checks.items()})
    result.pop("excess")
    problems = _htp_problems(result)
    result["numerics"] = WRONG if problems else "ok"
    if problems:
        suspect = Bisector(out_dir / QDQ_FILE, feeds[feed], options, HTP_TOLERANCE).suspect()
        result["suspect"] = suspect
        result["problem"] = f"output '{output}' on the {feed}: {problems}" + (
            f"; suspect: {suspect['node']} (its output rel L2 {suspect['rel_l2']:.3g} on the HTP vs onnxruntime's "
            f"QDQ, its inputs within {HTP_TOLERANCE})" if suspect else "")
    return result


def _htp_errors(htp, cpu_qdq, float_out) -> dict:
    errors = {"vs_cpu_qdq": report.errors(htp, cpu_qdq), "vs_float": report.errors(htp, float_out),
              "qdq_vs_float": report.errors(cpu_qdq, float_out)}
    over_qdq = errors["vs_float"]["rel_l2"] - errors["qdq_vs_float"]["rel_l2"]
    return {**errors, "excess": max(errors["vs_cpu_qdq"]["rel_l2"], over_qdq)}


def _htp_problems(errors: dict) -> str:
    """What exceeds HTP_TOLERANCE, in words ('' when nothing does)."""
    vs_qdq, vs_float, qdq = (errors[k]["rel_l2"] for k in ("vs_cpu_qdq", "vs_float", "qdq_vs_float"))
    problems = []
    if vs_qdq > HTP_TOLERANCE:
        problems.append(f"HTP vs onnxruntime QDQ rel L2 {vs_qdq:.3g} > {HTP_TOLERANCE}")
    if vs_float > qdq + HTP_TOLERANCE:
        problems.append(f"HTP vs float rel L2 {vs_float:.3g} > QDQ's {qdq:.3g} + {HTP_TOLERANCE}")
    return ", ".join(problems)


def _output(model, inputs) -> torch.Tensor:
    out = model(**inputs)
    out = getattr(out, "sample", out)
    if not isinstance(out, torch.Tensor):
        raise UserInputError(f"{type(model).__name__}.forward must return one tensor for export; got {type(out).__name__}")
    return out.float()


def _frames_per_call(model, output: torch.Tensor) -> int:
    """Video frames one forward produces: the model's `frames_per_call`, else its config's
    `frames_per_latent` (a decoder), else one per batch element."""
    config = getattr(model, "config", None)
    frames = getattr(model, "frames_per_call", None) or getattr(config, "frames_per_latent", None) or 1
    return int(frames) * output.shape[0]


def _check_shapes(batch: dict, example: dict) -> dict:
    for name, value in example.items():
        if isinstance(value, torch.Tensor) and tuple(batch[name].shape) != tuple(value.shape):
            raise UserInputError(f"calibration input '{name}' has shape {tuple(batch[name].shape)}; the export's "
                                 f"static shape is {tuple(value.shape)}")
    return batch


def write_report(out_dir: Path, result: dict) -> None:
    (out_dir / REPORT_FILE).write_text(json.dumps(result, indent=2, sort_keys=True, default=str) + "\n")
