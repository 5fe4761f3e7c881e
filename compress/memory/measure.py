"""Measured memory: one real DiT forward on a CUDA GPU, read from the caching allocator's statistics."""

from __future__ import annotations

import time
from collections import Counter

import torch

from compress.errors import UserInputError
from compress.models.s2v.motion import MOTION_FRAMES

from .simulate import ForwardMemory, materialize
from .spec import dtype_name


def measure_dit(spec, batch: int, latent_frames: int, latent_hw: tuple[int, int], motion: bool,
                memory_mode: str = "lean", chunk_size: int | None = None, device: str = "cuda") -> ForwardMemory:
    """Weights as allocated, and max_memory_allocated above them around one forward in `memory_mode`
    (uninitialised weights: the values do not change what is allocated)."""
    if not torch.cuda.is_available():
        raise UserInputError("source 'measured' needs a CUDA GPU; use 'simulated' or 'analytic' here")
    start = time.perf_counter()
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated(device)
    model = materialize(spec.meta_model(fresh=True), {k: dtype for k, (_, dtype) in spec.tensors.items()},
                        device=device).set_memory_mode(memory_mode, chunk_size)
    weights = Counter()
    for tensor in [*model.parameters(), *model.buffers()]:
        weights[dtype_name(tensor.dtype)] += tensor.untyped_storage().nbytes()
    inputs = model.example_inputs(batch=batch, frames=latent_frames, height=latent_hw[0], width=latent_hw[1],
                                  text_tokens=spec.config["text_len"], motion_frames=MOTION_FRAMES,
                                  device=device, dtype=spec.compute_dtype)
    if not motion:
        del inputs["motion_latents"]
    torch.cuda.synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    with torch.no_grad():
        model(**inputs, drop_motion_frames=not motion)
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device)
    # activations as the other sources count them: the forward's peak above the weights, inputs included
    result = ForwardMemory(dict(weights), peak - base + (base - before - sum(weights.values())), "", 0.0)
    del model, inputs
    torch.cuda.empty_cache()
    result.seconds = time.perf_counter() - start
    return result
