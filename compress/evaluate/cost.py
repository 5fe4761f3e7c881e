"""What an artifact costs: parameters, bytes by dtype, GMACs per output frame, latency, peak memory, predicted fit.

Every figure says how it was obtained: `counted` (safetensors headers, torch's flop counter), `measured`
(wall clock, RSS, CUDA allocator) or `analytic` (the memory planner).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from compress.artifacts import Artifact
from compress.errors import UserInputError
from compress.evaluate.suite import Cost, Fit
from compress.pipelines.sampling import UPSTREAM, SamplingConfig
from compress.utils.weights import summarize, weight_files

ONNX_FILE = "model.onnx"
EXPORT_REPORT = "report.json"
_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
               "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int8)": np.int8,
               "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_}


def size_cost(artifact: Artifact) -> dict:
    """Stored tensor elements and bytes by dtype (safetensors headers), and every file's bytes on disk."""
    model_dir = artifact.model_dir
    stored = summarize(weight_files(model_dir)) if model_dir is not None else {}
    if artifact.manifest.get("external_model_dir"):
        disk = sum(p.stat().st_size for p in Path(model_dir).rglob("*") if p.is_file())
    else:  # the files the artifact was committed with (results written into eval/ later do not count)
        disk = sum(f["bytes"] for f in artifact.manifest.get("files", {}).values())
    return {"parameters": stored.get("parameters"), "bytes": stored.get("bytes"),
            "bytes_by_dtype": stored.get("bytes_by_dtype", {}), "disk_bytes": disk,
            "size_source": "counted (safetensors headers, files on disk)"}


def median_seconds(run: Callable[[], object], repeats: int, warmup: int = 0) -> float:
    """Median wall time of `repeats` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _synchronize(module: torch.nn.Module) -> None:
    device = next(module.parameters()).device
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class ForwardTimer:
    """Wall seconds spent inside `model`'s forward calls while the context is open (e.g. the DiT's share of a
    clip's generation, apart from the encoders and the VAE)."""

    def __init__(self, model: torch.nn.Module):
        self.model, self.seconds, self._start = model, 0.0, 0.0

    def __enter__(self) -> "ForwardTimer":
        self._handles = [self.model.register_forward_pre_hook(self._begin),
                         self.model.register_forward_hook(self._end)]
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()

    def _begin(self, module, *_) -> None:
        _synchronize(module)
        self._start = time.perf_counter()

    def _end(self, module, *_) -> None:
        _synchronize(module)  # CUDA runs asynchronously: wait for the forward's kernels
        self.seconds += time.perf_counter() - self._start


def gmacs_per_frame(run: Callable[[], dict]) -> dict:
    """Multiply-accumulates (flops / 2) of one `run()` per output frame, in total and per top-level model."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        frames = len(run()["frames"])
    per_model = {name: sum(ops.values()) / 2e9 / frames for name, ops in counter.get_flop_counts().items()
                 if name != "Global" and "." not in name}
    return {"gmacs_per_frame": counter.get_total_flops() / 2e9 / frames, "gmacs_per_frame_by_model": per_model,
            "gmacs_source": "counted (torch.utils.flop_counter, one generation)"}


def generation_latency(run: Callable[[], dict], cost: Cost, frames: int, device: torch.device) -> dict:
    """Median wall time of generating one input, and per output frame (warm: after `cost.warmup` runs)."""
    with torch.no_grad():
        seconds = median_seconds(run, cost.latency_repeats, cost.warmup)
    return {"latency_s_per_input": seconds, "latency_ms_per_frame": 1e3 * seconds / frames,
            "latency_repeats": cost.latency_repeats, "latency_device": _device_name(device),
            "latency_source": "measured (wall clock, median)"}


def summed_size(*artifacts: Artifact) -> dict:
    """`size_cost` of models run together (a lip-sync student and its decoder): parameters and bytes added up."""
    sizes = [size_cost(a) for a in artifacts]
    by_dtype: dict[str, int] = {}
    for size in sizes:
        for dtype, count in size["bytes_by_dtype"].items():
            by_dtype[dtype] = by_dtype.get(dtype, 0) + count
    total = {k: None if any(s[k] is None for s in sizes) else sum(s[k] for s in sizes)
             for k in ("parameters", "bytes", "disk_bytes")}
    names = " + ".join(a.name for a in artifacts)
    return {**total, "bytes_by_dtype": by_dtype,
            "size_source": f"counted (safetensors headers, files on disk): {names}"}


def forward_latency(model, cost: Cost) -> dict:
    """Median ms of one forward on the model's own `example_inputs()` (models that define them)."""
    if not callable(getattr(model, "example_inputs", None)):
        return {}
    device = next(model.parameters()).device
    inputs = model.example_inputs(device=device)
    with torch.no_grad():
        seconds = median_seconds(lambda: model(**inputs), cost.latency_repeats, cost.warmup)
    return {"forward_ms": 1e3 * seconds, "forward_inputs": "example_inputs()"}


def onnx_latency(path: Path, cost: Cost) -> dict:
    """Median ms of one onnxruntime CPU run of `path` on random inputs of its declared (static) shapes."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {}
    for spec in session.get_inputs():
        if not all(isinstance(d, int) for d in spec.shape):
            raise UserInputError(f"{path}: input '{spec.name}' has a dynamic shape {spec.shape}; export with static "
                                 f"shapes to time it")
        feeds[spec.name] = rng.standard_normal(spec.shape).astype(_ORT_DTYPES.get(spec.type, np.float32))
    seconds = median_seconds(lambda: session.run(None, feeds), cost.latency_repeats, cost.warmup)
    return {"onnx_ms": 1e3 * seconds, "onnx_provider": "CPUExecutionProvider", "onnx_file": path.name}


def memory_fit(artifact: Artifact, fit: Fit, sampling: SamplingConfig | None = None) -> dict:
    """The memory planner's analytic verdict per target for `fit`'s workload, sampled as `sampling` says (default:
    upstream's UniPC with CFG); `status` says why when not planned."""
    from compress.memory.planner import plan_memory
    from compress.memory.spec import ModelSpec
    from compress.memory.workload import Layout, Workload, parse_size

    width, height = parse_size(fit.size)
    try:
        spec = ModelSpec.load(artifact.path)
        sampling = sampling or UPSTREAM
        workload = Workload(width, height, fit.frames, cfg=sampling.cfg, sampler=sampling.sampler,
                            steps=sampling.num_inference_steps)
        plans = {t: plan_memory(spec, t, workload, Layout.parse(fit.layout), suggest=False) for t in fit.targets}
    except UserInputError as err:  # the record names the artifact already: the reason alone, without its path
        return {"status": f"not planned: {str(err).removeprefix(f'{artifact.path}: ')}"}
    return {"status": "ok", "source": "analytic (memory planner)",
            "workload": {"size": fit.size, "frames": fit.frames, "cfg": workload.cfg, "layout": fit.layout},
            "targets": {t: {"fits": p.fits, "peak_bytes": p.peak_bytes, "margin_bytes": p.margin_bytes,
                            "memory_bytes": p.target.memory_bytes} for t, p in plans.items()}}


class PeakMemory:
    """`with PeakMemory(device) as m:` then `m.result()`: peak RSS (sampled) and, on CUDA, the allocator's peak."""

    def __init__(self, device: torch.device):
        from compress.utils.resources import ResourceMonitor

        self.device, self.monitor = torch.device(device), ResourceMonitor()

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        self.monitor.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.monitor.__exit__(*exc)

    def result(self) -> dict:
        out = {"peak_rss_bytes": self.monitor.peak_rss_bytes, "peak_rss_note": "whole process, sampled every 20 ms"}
        if self.device.type == "cuda":
            out["peak_gpu_bytes"] = torch.cuda.max_memory_allocated(self.device)
        return out


def onnx_file(artifact: Artifact) -> Path | None:
    path = artifact.path / ONNX_FILE
    return path if path.is_file() else None


def export_report(artifact: Artifact) -> dict | None:
    """An export artifact's report.json (any target: ONNX, Core ML, LiteRT), or None for other artifacts."""
    import json

    path = artifact.path / EXPORT_REPORT
    return json.loads(path.read_text()) if artifact.kind == "export" and path.is_file() else None


def _device_name(device: torch.device) -> str:
    import os
    import platform

    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.machine()}, {len(os.sched_getaffinity(0))} cores, {torch.get_num_threads()} threads)"
