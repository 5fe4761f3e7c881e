"""Simulated memory: run the real model code on fake tensors (nothing is allocated) and track the bytes of
every live storage, freed when its last reference goes, as the CUDA caching allocator would see them.

Tensors are fake CPU tensors: their attention takes the fused (flash) path, as on a GPU; fake CUDA tensors
would fall back to the math path and materialise L x L scores. The quantized matmuls are steered onto
their CUDA kernel paths. `torch.distributed._tools.mem_tracker.MemTracker` was not used: it needs
parameters that require grad and, like plain fake tensors, stops at data-dependent shapes.
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections import Counter
from dataclasses import dataclass
from unittest import mock

import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode, _disable_current_modes
from torch.utils._pytree import tree_flatten
from torch.utils.weak import WeakIdKeyDictionary

from compress.models.s2v.motion import MOTION_FRAMES
from compress.quant import kernels

from .spec import dtype_name

_aten = torch.ops.aten


class MemoryTracker(TorchDispatchMode):
    """Live and peak bytes of the storages created under it (plus those `track`ed before), and the module
    that was running at the peak."""

    def __init__(self, names: dict[int, str] | None = None):
        super().__init__()
        self.live = self.peak = 0
        self.where = ""
        self._seen = WeakIdKeyDictionary()
        self._values = WeakIdKeyDictionary()  # small index tensors built from Python lists: their values
        self._names, self._stack, self._hooks = names or {}, [], []

    def track(self, tensor: torch.Tensor) -> int:
        """Count `tensor`'s storage if it is new; returns the bytes added."""
        storage = tensor.untyped_storage()
        if storage in self._seen:
            return 0
        size = storage.nbytes()
        self._seen[storage] = True
        weakref.finalize(storage, self._free, size)
        self.live += size
        if self.live > self.peak:
            self.peak, self.where = self.live, self._stack[-1] if self._stack else ""
        return size

    def _free(self, size: int) -> None:
        self.live -= size

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        # repeat_interleave's output length depends on data that fake tensors lack; supply it from the
        # recorded values (our forward builds the segment ids this way)
        if func is _aten.repeat_interleave.Tensor and kwargs.get("output_size") is None and args[0] in self._values:
            kwargs = {**kwargs, "output_size": sum(self._values[args[0]])}
        out = func(*args, **kwargs)
        if func is _aten.lift_fresh.default and args[0].numel() <= 64:
            with _disable_current_modes():
                self._values[out] = args[0].tolist()
        for tensor in tree_flatten(out)[0]:
            if isinstance(tensor, torch.Tensor):
                self.track(tensor)
        return out

    def __enter__(self):
        if self._names:
            self._hooks = [nn.modules.module.register_module_forward_pre_hook(self._enter_module),
                           nn.modules.module.register_module_forward_hook(self._exit_module)]
        return super().__enter__()

    def __exit__(self, *exc):
        for hook in self._hooks:
            hook.remove()
        return super().__exit__(*exc)

    def _enter_module(self, module, args):
        self._stack.append(self._names.get(id(module), "?"))

    def _exit_module(self, module, args, output):
        self._stack.pop()


def materialize(model: nn.Module, dtypes: dict[str, torch.dtype] | None = None, default=None, device="cpu"):
    """Replace every parameter and buffer of a meta-device model with an empty tensor on `device` (a fake one
    under FakeTensorMode), of dtype dtypes[state-dict key], else `default`, else its own."""
    dtypes = dtypes or {}
    for prefix, module in model.named_modules():
        for table in (module._parameters, module._buffers):
            for name, tensor in table.items():
                if tensor is None:
                    continue
                key = f"{prefix}.{name}" if prefix else name
                dtype = dtypes.get(key) or (default if tensor.is_floating_point() and default else tensor.dtype)
                new = torch.empty(tensor.shape, dtype=dtype, device=device)
                table[name] = nn.Parameter(new, requires_grad=False) if table is module._parameters else new
    return model


def _cuda_kernel_paths():
    """Let the quantized Linears take the kernels they would use on a GPU (fake tensors compute no values)."""
    stack = contextlib.ExitStack()
    stack.enter_context(mock.patch.object(kernels, "fp8_kernels_available", lambda device: True))
    stack.enter_context(mock.patch.object(kernels, "_cpu_has_int8_units", lambda: False))
    stack.enter_context(mock.patch.object(kernels, "_int_mm_supported", lambda a, b: True))
    return stack


@dataclass
class ForwardMemory:
    """What one simulated (or measured) forward holds."""

    weights_by_dtype: dict[str, int]
    activations: int  # peak bytes above the weights (inputs included)
    where: str  # module running at the peak
    seconds: float


def _run(model: nn.Module, inputs: list[torch.Tensor], call) -> ForwardMemory:
    start = time.perf_counter()
    tracker = MemoryTracker({id(m): name for name, m in model.named_modules()})
    weights = Counter()
    for tensor in [*model.parameters(), *model.buffers()]:
        weights[dtype_name(tensor.dtype)] += tracker.track(tensor)
    for tensor in inputs:
        tracker.track(tensor)
    with torch.no_grad(), tracker:
        call()
    activations = tracker.peak - sum(weights.values())
    return ForwardMemory(dict(weights), activations, tracker.where, time.perf_counter() - start)


def simulate_dit(spec, batch: int, latent_frames: int, latent_hw: tuple[int, int], motion: bool,
                 memory_mode: str = "lean", chunk_size: int | None = None) -> ForwardMemory:
    """One DiT forward of `spec` (its stored dtypes, quantized modules included) on fake tensors, in the
    model's `memory_mode` ("lean" or "plain") with `chunk_size` tokens per span (None: the model's default)."""
    with _cuda_kernel_paths(), FakeTensorMode():
        model = materialize(spec.meta_model(fresh=True), {k: dtype for k, (_, dtype) in spec.tensors.items()})
        model.set_memory_mode(memory_mode, chunk_size)
        inputs = model.example_inputs(batch=batch, frames=latent_frames, height=latent_hw[0], width=latent_hw[1],
                                      text_tokens=spec.config["text_len"], motion_frames=MOTION_FRAMES,
                                      dtype=spec.compute_dtype)
        if not motion:
            del inputs["motion_latents"]
        return _run(model, list(inputs.values()), lambda: model(**inputs, drop_motion_frames=not motion))


def simulate_vae_decode(width: int, height: int, latent_frames: int, dtype: torch.dtype) -> ForwardMemory:
    """A Wan2.1 VAE decode (diffusers AutoencoderKLWan, the class our pipeline uses) of one clip's latents."""
    from diffusers import AutoencoderKLWan

    with torch.device("meta"):
        vae = AutoencoderKLWan()  # its default configuration is the Wan2.1 VAE
    with FakeTensorMode():
        materialize(vae, default=dtype)
        latents = torch.empty(1, vae.config.z_dim, latent_frames, height // 8, width // 8, dtype=dtype)
        return _run(vae, [latents], lambda: vae.decode(latents))
