"""Streaming safetensors I/O: fill a meta-device model shard by shard, strict key checks, sharded writing.

A directory holds `diffusion_pytorch_model.safetensors`, or shards listed by
`diffusion_pytorch_model.safetensors.index.json`, plus `config.json`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn

from compress.errors import CheckpointError
from compress.utils.shards import ShardedWriter
from compress.utils.weights import weight_files as checkpoint_weight_files

WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
INDEX_NAME = WEIGHTS_NAME + ".index.json"
CONFIG_NAME = "config.json"
#: weight files loading would unpickle: never loaded, named when they are all a directory holds
PICKLED = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")


class CheckpointKeyError(CheckpointError):
    """The checkpoint's tensors do not match the model: every offending key is named."""

    def __init__(self, source, missing=(), unexpected=(), mismatched=()):
        self.missing, self.unexpected, self.mismatched = list(missing), list(unexpected), list(mismatched)
        lines = [f"{source}: checkpoint does not match the model"]
        lines += [f"  missing: {k}" for k in self.missing]
        lines += [f"  unexpected: {k}" for k in self.unexpected]
        lines += [f"  wrong shape: {k}: checkpoint {tuple(a)} vs model {tuple(b)}" for k, a, b in self.mismatched]
        super().__init__("\n".join(lines))


def require_weight_files(directory: Path) -> list[Path]:
    """The safetensors files of a checkpoint directory (from its index when there is one); none is an error, which
    names any pickled weight file found instead (those are never loaded)."""
    files = checkpoint_weight_files(directory)
    if not files:
        pickled = ", ".join(sorted(p.name for pattern in PICKLED for p in Path(directory).glob(pattern)))
        found = f"; found only pickled weights ({pickled}), which are never loaded: convert them to safetensors"
        raise CheckpointError(f"{directory}: no {WEIGHTS_NAME} or {INDEX_NAME}{found if pickled else ''}")
    return files


def check_finite(name: str, tensor: torch.Tensor, source) -> None:
    """Refuse a floating tensor holding NaN or inf (float8 tensors are not checked)."""
    if tensor.is_floating_point() and tensor.element_size() > 1 and not torch.isfinite(tensor).all():
        raise CheckpointError(f"{source}: tensor {name!r} holds NaN or inf values; refusing to load it")


def check_model_finite(model: nn.Module, source) -> nn.Module:
    """`check_finite` for every parameter of a loaded model."""
    for name, tensor in model.named_parameters():
        check_finite(name, tensor.detach(), source)
    return model


def _read_shapes(files: list[Path]) -> dict[str, tuple[Path, tuple[int, ...]]]:
    """key -> (file, shape), from the file headers alone."""
    found = {}
    for f in files:
        try:
            with safe_open(f, framework="pt") as handle:
                for key in handle.keys():
                    if key in found:
                        raise CheckpointError(f"{f}: tensor {key!r} also stored in {found[key][0]}")
                    found[key] = (f, tuple(handle.get_slice(key).get_shape()))
        except CheckpointError:
            raise
        except Exception as err:  # safetensors raises its own error types for truncated/corrupt files
            raise CheckpointError(f"{f}: unreadable safetensors file ({err})") from None
    return found


def keeps_fp32(name: str, keep_in_fp32: Iterable[str]) -> bool:
    parts = name.split(".")
    return any(k in parts for k in keep_in_fp32)


def cast_model(model: nn.Module, dtype: torch.dtype, keep_in_fp32: Iterable[str] = ()) -> nn.Module:
    """Cast floating parameters and buffers to dtype, except those under `keep_in_fp32` names (float32)."""
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if tensor.is_floating_point():
            tensor.data = tensor.data.to(torch.float32 if keeps_fp32(name, keep_in_fp32) else dtype)
    return model


def _assign(model: nn.Module, name: str, tensor: torch.Tensor) -> None:
    module_name, _, attr = name.rpartition(".")
    module = model.get_submodule(module_name)
    if attr in module._parameters:
        old = module._parameters[attr]
        module._parameters[attr] = nn.Parameter(tensor, requires_grad=old.requires_grad)
    else:
        module._buffers[attr] = tensor


def load_weights(
    model: nn.Module,
    directory: Path,
    to_model: Callable[[str], str | None] = lambda k: k,
    to_stored: Callable[[str], str | None] = lambda k: k,
    torch_dtype: torch.dtype | None = None,
    device: str | torch.device = "cpu",
    keep_in_fp32: Iterable[str] = (),
) -> nn.Module:
    """Fill `model` (built on the meta device) from a checkpoint directory, one tensor at a time.

    `to_model` maps a stored key to the model's name (None: no such parameter), `to_stored` the other way
    (for naming missing keys as stored). Keys and shapes are checked from the headers before any data is
    read. torch_dtype None keeps the stored dtypes; `keep_in_fp32` names stay float32 otherwise."""
    files = require_weight_files(directory)
    stored, unexpected = {}, []
    for key, (_, shape) in _read_shapes(files).items():
        name = to_model(key)
        if name is None or name in stored:
            unexpected.append(key)
        else:
            stored[name] = (key, shape)
    expected = {n: tuple(t.shape) for n, t in model.state_dict(keep_vars=True).items()}
    missing = [to_stored(n) or n for n in expected if n not in stored]
    unexpected += [key for name, (key, _) in stored.items() if name not in expected]
    mismatched = [(key, shape, expected[n]) for n, (key, shape) in stored.items()
                  if n in expected and shape != expected[n]]
    if missing or unexpected or mismatched:
        raise CheckpointKeyError(directory, missing, unexpected, mismatched)

    for f in files:
        try:
            with safe_open(f, framework="pt", device=str(device)) as handle:
                for key in handle.keys():
                    name, tensor = to_model(key), handle.get_tensor(key)
                    check_finite(key, tensor, f)
                    if tensor.is_floating_point() and torch_dtype is not None:
                        tensor = tensor.to(torch.float32 if keeps_fp32(name, keep_in_fp32) else torch_dtype)
                    _assign(model, name, tensor)
        except CheckpointError:
            raise
        except Exception as err:
            raise CheckpointError(f"{f}: failed while reading tensors ({err})") from None
    return model.eval()


def _parse_size(size: int | str) -> int:
    if isinstance(size, int):
        return size
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]i?B)\s*", size, flags=re.IGNORECASE)
    if not match:
        raise ValueError(f"cannot parse shard size {size!r}; use bytes or e.g. '10GB', '500MiB'")
    unit = match.group(2).upper()
    scale = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}[unit]
    return int(float(match.group(1)) * scale)


def write_checkpoint(
    directory: Path, tensors: Iterable[tuple[str, torch.Tensor]], config: dict, max_shard_size: int | str = "10GB"
) -> list[Path]:
    """Write (name, tensor) pairs as safetensors shards of at most max_shard_size (a single file when one
    shard suffices) plus config.json. Tensors are consumed lazily, one in memory at a time."""
    directory = Path(directory)
    for stale in directory.glob("diffusion_pytorch_model*"):
        stale.unlink()
    writer = ShardedWriter(directory, WEIGHTS_NAME.removesuffix(".safetensors"), _parse_size(max_shard_size))
    for name, tensor in tensors:
        writer.add(name, tensor)
    final = writer.close()
    (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return final
