"""Quantize a safetensors checkpoint tensor by tensor, for checkpoints larger than RAM.

Peak memory is about twice the output shard size (safetensors serialises a shard through a bytes
copy) plus the largest tensor and its fp32 transients (which quantize_weight keeps to 64 MB chunks),
never the model size.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Collection, Iterator
from os import PathLike
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from compress.quant import kernels
from compress.quant.api import QUANTIZED, LayerDecision, QuantReport
from compress.quant.config import QuantConfig
from compress.quant.serialization import WEIGHTS_NAME, QuantizedStructure, checkpoint_files

INDEX_NAME = "model.safetensors.index.json"


def _nbytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()


class _ShardWriter:
    """Collects tensors and writes a shard whenever the next tensor would push it past shard_bytes."""

    def __init__(self, directory: Path, shard_bytes: int):
        self.directory, self.shard_bytes = directory, shard_bytes
        self.pending: dict[str, torch.Tensor] = {}
        self.pending_bytes = 0
        self.shards: list[list[str]] = []  # keys of each written shard
        self.total_bytes = 0

    def add_all(self, tensors: dict[str, torch.Tensor]) -> int:
        for key, tensor in tensors.items():
            self.add(key, tensor)
        return sum(_nbytes(t) for t in tensors.values())

    def add(self, key: str, tensor: torch.Tensor) -> None:
        if self.pending and self.pending_bytes + _nbytes(tensor) > self.shard_bytes:
            self.flush()
        self.pending[key] = tensor.contiguous()
        self.pending_bytes += _nbytes(tensor)
        self.total_bytes += _nbytes(tensor)

    def flush(self) -> None:
        save_file(self.pending, self._temp_name(len(self.shards)), metadata={"format": "pt"})
        self.shards.append(list(self.pending))
        self.pending, self.pending_bytes = {}, 0

    def _temp_name(self, index: int) -> Path:
        return self.directory / f"shard-{index:05d}.tmp"

    def close(self) -> None:
        """Flush the rest, give shards their final names, and write the index when there are several."""
        if self.pending or not self.shards:
            self.flush()
        if len(self.shards) == 1:
            self._temp_name(0).rename(self.directory / WEIGHTS_NAME)
            return
        weight_map = {}
        for index, keys in enumerate(self.shards):
            name = f"model-{index + 1:05d}-of-{len(self.shards):05d}.safetensors"
            self._temp_name(index).rename(self.directory / name)
            weight_map.update(dict.fromkeys(keys, name))
        index_json = {"metadata": {"total_size": self.total_bytes}, "weight_map": weight_map}
        (self.directory / INDEX_NAME).write_text(json.dumps(index_json, indent=2) + "\n")


def _source_tensors(src_dir: Path) -> Iterator[tuple[str, torch.Tensor]]:
    # safe_open memory-maps the file, and the pages read through a handle count towards RSS while it
    # lives: one handle per tensor keeps RSS at one tensor (a single handle per file let RSS grow with
    # the checkpoint in test_peak_memory_is_bounded_by_shard_and_tensor_not_model).
    for path in checkpoint_files(src_dir):
        with safe_open(path, framework="pt", device="cpu") as handle:
            keys = list(handle.keys())
        for key in keys:
            with safe_open(path, framework="pt", device="cpu") as handle:
                tensor = handle.get_tensor(key)
            yield key, tensor
            del tensor  # before the next read


def _convert(key: str, tensor: torch.Tensor, config: QuantConfig, dtype: torch.dtype | None,
             linear_names: Collection[str] | None) -> tuple[dict[str, torch.Tensor], LayerDecision | None]:
    """Output tensors for one source tensor, and the decision when it is a Linear weight."""
    name = key.removesuffix(".weight")
    is_linear = (key.endswith(".weight") and tensor.ndim == 2 and tensor.is_floating_point()
                 and (linear_names is None or name in linear_names))
    reason = config.skip_reason(name, *tensor.shape) if is_linear else "not a linear weight"
    if reason is None:
        qweight, scale = kernels.quantize_weight(tensor, config.scheme, config.granularity == "per_channel")
        outputs = {key: qweight, f"{name}.weight_scale": scale}
    else:
        outputs = {key: tensor.to(dtype) if dtype is not None and tensor.is_floating_point() else tensor}
    if not is_linear:
        return outputs, None
    after = sum(_nbytes(t) for t in outputs.values())
    return outputs, LayerDecision(name, tuple(tensor.shape), reason or QUANTIZED, _nbytes(tensor), after)


def quantize_checkpoint(src_dir: str | PathLike, dst_dir: str | PathLike, config: QuantConfig, *,
                        shard_bytes: int = 4 * 2**30, dtype: torch.dtype | None = None,
                        linear_names: Collection[str] | None = None,
                        rename: Callable[[str], str | None] | None = None) -> QuantReport:
    """Quantize the Linear weights of the safetensors checkpoint in `src_dir` into `dst_dir`.

    A 2-D floating `<name>.weight` is taken for a Linear named `<name>` and quantized when `config`
    selects `<name>`; it becomes `<name>.weight` (fp8/int8) + `<name>.weight_scale` (fp32), exactly the
    state dict of QuantizedLinear, so `load_quantized(model, dst_dir)` restores it. Every other tensor
    is copied, cast to `dtype` when given and floating. Pass `linear_names` (e.g. linear_module_names of
    a meta-device model) when the checkpoint holds other 2-D weights, such as nn.Embedding tables.
    `rename` maps source keys to output keys on the way (e.g. a release layout to ours); a key it maps
    to None is an error. The output is written to a temporary sibling directory renamed to `dst_dir`.
    """
    src, dst = Path(src_dir), Path(dst_dir)
    if dst.exists():
        raise FileExistsError(f"{dst} already exists")
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    report = QuantReport(config.scheme)
    try:
        writer = _ShardWriter(tmp, shard_bytes)
        for key, tensor in _source_tensors(src):
            if rename is not None:
                renamed = rename(key)
                if renamed is None:
                    raise KeyError(f"{key!r} in {src} has no counterpart in the target layout")
                key = renamed
            report.bytes_before += _nbytes(tensor)
            outputs, decision = _convert(key, tensor, config, dtype, linear_names)
            report.bytes_after += writer.add_all(outputs)
            del tensor, outputs  # what is still needed lives in the pending shard
            if decision is not None:
                report.layers.append(decision)
        writer.close()
        QuantizedStructure(config=config, quantized_modules=tuple(report.quantized)).save(tmp)
        tmp.rename(dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report
