"""Quantize a safetensors checkpoint tensor by tensor, for checkpoints larger than RAM.

Peak memory is about twice the output shard size (safetensors serialises a shard through a bytes
copy) plus the largest tensor and its fp32 transients (which quantize_weight keeps to 64 MB chunks),
never the model size.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Collection, Iterator
from os import PathLike
from pathlib import Path

import torch
from safetensors import safe_open

from compress.quant import kernels
from compress.quant.api import QUANTIZED, LayerDecision, QuantReport
from compress.quant.config import QuantConfig
from compress.quant.serialization import WEIGHTS_NAME, QuantizedStructure, checkpoint_files
from compress.utils.console import untracked
from compress.utils.shards import ShardedWriter


def _nbytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()


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


def _tensor_count(src_dir: Path) -> int:
    count = 0
    for path in checkpoint_files(src_dir):
        with safe_open(path, framework="pt", device="cpu") as handle:
            count += len(handle.keys())
    return count


def _convert(key: str, tensor: torch.Tensor, config: QuantConfig, dtype: torch.dtype | None,
             linear_names: Collection[str] | None) -> tuple[dict[str, torch.Tensor], LayerDecision | None]:
    """Output tensors for one source tensor, and the decision when it is a Linear weight."""
    name = key.removesuffix(".weight")
    is_linear = (key.endswith(".weight") and tensor.ndim == 2 and tensor.is_floating_point()
                 and (linear_names is None or name in linear_names))
    reason = config.skip_reason(name, *tensor.shape) if is_linear else "not a linear weight"
    if reason is None:
        qweight, scale = kernels.quantize_weight(tensor, config.quant_scheme.storage_dtype(),
                                                 config.granularity == "per_channel")
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
                        rename: Callable[[str], str | None] | None = None, track=untracked) -> QuantReport:
    """Quantize the Linear weights of the safetensors checkpoint in `src_dir` into `dst_dir`.

    A 2-D floating `<name>.weight` is taken for a Linear named `<name>` and quantized when `config`
    selects `<name>`; it becomes `<name>.weight` (fp8/int8) + `<name>.weight_scale` (fp32), exactly the
    state dict of QuantizedLinear, so `load_quantized(model, dst_dir)` restores it. Every other tensor
    is copied, cast to `dtype` when given and floating. Pass `linear_names` (e.g. linear_module_names of
    a meta-device model) when the checkpoint holds other 2-D weights, such as nn.Embedding tables.
    `rename` maps source keys to output keys on the way (e.g. a release layout to ours); a key it maps
    to None is an error. The output is written to a temporary sibling directory renamed to `dst_dir`.
    `track(iterable, description, total)` shows progress over the tensors (e.g. `StageContext.track`).
    """
    src, dst = Path(src_dir), Path(dst_dir)
    if dst.exists():
        raise FileExistsError(f"{dst} already exists")
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    report = QuantReport(config.scheme)
    try:
        writer = ShardedWriter(tmp, WEIGHTS_NAME.removesuffix(".safetensors"), shard_bytes)
        for key, tensor in track(_source_tensors(src), "quantizing tensors", _tensor_count(src)):
            if rename is not None:
                renamed = rename(key)
                if renamed is None:
                    raise KeyError(f"{key!r} in {src} has no counterpart in the target layout")
                key = renamed
            report.bytes_before += _nbytes(tensor)
            outputs, decision = _convert(key, tensor, config, dtype, linear_names)
            report.bytes_after += sum(writer.add(name, t) for name, t in outputs.items())
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
