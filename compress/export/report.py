"""Measurements for the export report: onnxruntime CPU runs, errors, latency medians, sizes and the
frame-rate budget. Every figure says where it comes from (measured here, or analytic)."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from compress.export.targets import TargetProfile


def cpu_session(path: Path, threads: int | None = None) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])


def feeds(session: ort.InferenceSession, inputs: dict) -> dict[str, np.ndarray]:
    """The graph's inputs taken from `inputs` (tensors or arrays; baked-in constants are dropped)."""
    names = [i.name for i in session.get_inputs()]
    missing = [n for n in names if n not in inputs]
    if missing:
        raise ValueError(f"no value for graph input(s) {missing}; have {sorted(inputs)}")
    return {n: np.ascontiguousarray(_numpy(inputs[n])) for n in names}


def _numpy(value) -> np.ndarray:
    return value.detach().cpu().float().numpy() if hasattr(value, "detach") else np.asarray(value, np.float32)


def errors(actual, reference) -> dict:
    """max abs error, relative max error (max abs / max |ref|) and relative L2 error (||a - r|| / ||r||)."""
    actual, reference = np.asarray(actual, np.float64), np.asarray(reference, np.float64)
    diff = np.abs(actual - reference)
    scale, norm = np.abs(reference).max(), np.linalg.norm(reference)
    return {"max_abs": float(diff.max()), "rel_max": float(diff.max() / scale) if scale else float(diff.max()),
            "rel_l2": float(np.linalg.norm(actual - reference) / norm) if norm else float(np.linalg.norm(actual))}


def worst(per_batch: list[dict]) -> dict:
    """The largest of each error over several batches."""
    return {key: max(e[key] for e in per_batch) for key in per_batch[0]}


def median_latency_ms(session: ort.InferenceSession, feed: dict, repeats: int = 20, warmup: int = 3) -> float:
    """Median wall time of `session.run` in milliseconds (measured, after warm-up runs)."""
    for _ in range(warmup):
        session.run(None, feed)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def file_bytes(path: Path) -> int:
    """Size of an ONNX model with its external data file, if any."""
    path = Path(path)
    return path.stat().st_size + sum(p.stat().st_size for p in path.parent.glob(path.name + ".data"))


def budget_report(target: TargetProfile, macs_per_call: int, frames_per_call: int) -> dict | None:
    """GMACs per frame and the frame rate it implies on the target (analytic, from the profile's throughput)."""
    if target.budget is None:
        return None
    gmacs_per_frame = macs_per_call / 1e9 / frames_per_call
    ms_per_frame = gmacs_per_frame / target.budget.effective_gmacs_per_s * 1000
    return {"source": target.budget.source, "gmacs_per_frame": gmacs_per_frame, "frames_per_call": frames_per_call,
            "implied_ms_per_frame": ms_per_frame, "implied_fps": 1000 / ms_per_frame if ms_per_frame else None,
            "budget_fps": target.budget.fps, "budget_ms_per_frame": target.budget.ms_per_frame,
            "share_of_budget": ms_per_frame / target.budget.ms_per_frame}
