"""The chain's second network and its frames: the tiny VAE decoder exported beside a lip-sync student
(`out/decoder/`, the same checks and HTP numerics gate), calibrated on the student's own latents, then the
chain's frames (student latents -> decoder) from onnxruntime float, QDQ and the HTP against the torch chain (PSNR).

The decoder (`latents: image`, trained on the teacher frames' image latents) decodes each student latent behind the
reference latent (`previous`), one frame per latent; the driving-frame encoder of `target` mode stays in torch (cost
only, see `compress.export.chain`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from compress.export import qnn, report
from compress.export.pipeline import FLOAT_FILE, QDQ_FILE, ExportRequest, example_inputs, run_export, write_report
from compress.utils.psnr import psnr_of_mse

DECODER_DIR = "decoder"


def export_decoder(request: ExportRequest, decoder: torch.nn.Module, out_dir: Path, log: Callable = print,
                   track: Callable = lambda it, description, total=None: it) -> dict:
    """Export `decoder` into `out_dir/decoder` for the student's target, checked on the student's latents of its
    example input and calibrated on those of its calibration batches, and add the chain's frame PSNRs; returns
    the decoder's report."""
    student, target = request.model.eval(), request.target
    batches = [request.example or example_inputs(student, target)] + request.calibration
    with torch.no_grad():
        inputs = [{"latents": student(**b), "previous": b["ref_latent"]} for b in batches]
    decoder_request = ExportRequest(decoder.eval(), target, request.precision, inputs[1:],
                                    f"the student's latents on its calibration ({request.calibration_source})",
                                    latency_repeats=request.latency_repeats, allow_wrong_htp=request.allow_wrong_htp,
                                    example=inputs[0],
                                    example_source=f"the student's latents on {request.example_source}")
    result = run_export(decoder_request, Path(out_dir) / DECODER_DIR, log, track)
    with torch.no_grad():
        torch_frames = [decoder(**x).numpy() for x in inputs]
    result["chain_frames"] = chain_psnr(Path(out_dir), batches, torch_frames, result)
    write_report(Path(out_dir) / DECODER_DIR, result)
    frames = result["chain_frames"]
    log("  chain frames vs torch: " + (", ".join(f"{k} {v:.1f} dB" for k, v in frames.items() if isinstance(v, float))
                                       or f"not run ({frames.get('not_run')})"))
    return result


def chain_psnr(out_dir: Path, batches: list[dict], torch_frames: list[np.ndarray], decoder_report: dict) -> dict:
    """PSNR (dB, 0..255 pixels, worst batch) of the chain's frames against the torch chain: from onnxruntime float and
    QDQ, and from the HTP when both networks ran there; for LiteRT from its CPU interpreter (float and quantized);
    for Core ML only where it predicts (macOS)."""
    result = {"source": "measured: student latents -> decoder frames, vs the torch chain"}
    if "coreml" in decoder_report:  # where Core ML predicts (macOS) the chain is not wired yet either
        return {**result, "not_run": decoder_report["coreml"].get("reason", "Core ML chain frames: not run")}
    if "litert" in decoder_report:
        runs = {f"{name}_tflite_cpu": _litert(out_dir, part["file"])
                for name, part in decoder_report["litert"].items() if name in ("float", "quantized")}
    else:
        runs = {"float_onnx": _cpu(out_dir, FLOAT_FILE)}
        if "quantized" in decoder_report:
            runs["qdq_cpu"] = _cpu(out_dir, QDQ_FILE)
            if decoder_report.get("htp", {}).get("status") == "ran":
                runs["qdq_htp"] = _htp(out_dir, decoder_report["htp"]["options"])
    for name, run in runs.items():
        frames = run(batches)
        result[f"{name}_psnr_db"] = min(_psnr(f, t) for f, t in zip(frames, torch_frames)) if frames else None
    return result


def _cpu(out_dir: Path, file: str) -> Callable[[list[dict]], list[np.ndarray]]:
    def run(batches):
        student = report.cpu_session(out_dir / file)
        decoder = report.cpu_session(out_dir / DECODER_DIR / file)
        latents = [student.run(None, report.feeds(student, b))[0] for b in batches]
        return [decoder.run(None, {"latents": z, "previous": _np(b["ref_latent"])})[0]
                for z, b in zip(latents, batches)]
    return run


def _litert(out_dir: Path, file: str) -> Callable[[list[dict]], list[np.ndarray]]:
    def run(batches):
        from compress.export import litert

        latents = litert.run(out_dir / file, batches)
        return litert.run(out_dir / DECODER_DIR / file,
                          [{"latents": z, "previous": b["ref_latent"]} for z, b in zip(latents, batches)])
    return run


def _htp(out_dir: Path, options: dict) -> Callable[[list[dict]], list[np.ndarray] | None]:
    def run(batches):
        student = report.cpu_session(out_dir / QDQ_FILE)
        with tempfile.TemporaryDirectory() as scratch:  # the context models: not part of the artifact twice
            latents = qnn.verify_on_htp(out_dir / QDQ_FILE, [report.feeds(student, b) for b in batches],
                                        Path(scratch), options).get("outputs")
            if latents is None:
                return None
            feeds = [{"latents": z[0], "previous": _np(b["ref_latent"])} for z, b in zip(latents, batches)]
            frames = qnn.verify_on_htp(out_dir / DECODER_DIR / QDQ_FILE, feeds, Path(scratch), options).get("outputs")
        return None if frames is None else [f[0] for f in frames]
    return run


def _np(value) -> np.ndarray:
    return np.ascontiguousarray(value.detach().float().numpy())


def _psnr(frames: np.ndarray, reference: np.ndarray) -> float:
    """PSNR of [-1, 1] frames as 0..255 pixels (clipped as a display would)."""
    return psnr_of_mse(float(np.mean((_pixels(frames) - _pixels(reference)) ** 2)))


def _pixels(frames) -> np.ndarray:
    return (np.clip(np.asarray(frames, np.float64), -1, 1) + 1) * 127.5
