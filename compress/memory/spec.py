"""ModelSpec: what the planner knows about a DiT without loading it: config, and every tensor's shape and
stored dtype (from the preset, or from safetensors headers), plus the quantization structure if any."""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch

from compress.errors import UserInputError
from compress.models.auto import checkpoint_layout, get_preset, meta_model
from compress.quant.api import selected_linears
from compress.quant.config import QuantConfig, default_ignore
from compress.quant.schemes import get_scheme
from compress.quant.serialization import (
    QUANT_CONFIG_NAME,
    QuantizedStructure,
    apply_quantized_structure,
    checkpoint_files,
)
from compress.sources import resolve
from compress.utils.weights import DTYPE_NAMES, read_header

_UNIT = re.compile(r"^((?:blocks|audio_injectors)\.\d+)\.")


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


@dataclass
class ModelSpec:
    name: str
    model_class: type
    config: dict
    tensors: dict[str, tuple[tuple[int, ...], torch.dtype]]  # state-dict key (our names) -> (shape, dtype)
    quant: QuantizedStructure | None = None
    _meta: object = field(default=None, repr=False)

    # ---- construction ----------------------------------------------------------------------------

    @classmethod
    def load(cls, model: str | Path, dtype: torch.dtype = torch.bfloat16) -> ModelSpec:
        """A preset name (all tensors at `dtype`, as the release stores them), an artifact or a model directory."""
        resolved = resolve(model)
        if resolved.kind == "preset":
            return cls.from_preset(resolved.spec, dtype)
        return cls.from_dir(resolved.model_dir(), name=str(model) if resolved.kind == "artifact" else None)

    @classmethod
    def from_preset(cls, name: str, dtype: torch.dtype = torch.bfloat16) -> ModelSpec:
        preset = get_preset(name)
        if preset.weights_dir is not None:
            return cls.from_dir(preset.weights_dir, name=name)
        return cls.from_config(preset.model_class, preset.config, dtype, name)

    @classmethod
    def from_config(cls, model_class: type, config: dict, dtype: torch.dtype = torch.bfloat16,
                    name: str = "model") -> ModelSpec:
        """A model of this class and config with every floating tensor at `dtype`."""
        spec = cls(name, model_class, dict(config), {})
        spec.tensors = {k: (tuple(t.shape), dtype if t.is_floating_point() else t.dtype)
                        for k, t in spec.meta_model().state_dict().items()}
        return spec

    @classmethod
    def from_dir(cls, directory: Path, name: str | None = None) -> ModelSpec:
        directory = Path(directory)
        model_class, config, rename = checkpoint_layout(directory)
        try:
            files = checkpoint_files(directory)
        except FileNotFoundError as err:
            raise UserInputError(str(err)) from None
        tensors = {}
        for path in files:
            for key, info in read_header(path).items():
                key = rename(key) if rename else key
                if key is not None:
                    tensors[key] = (tuple(info["shape"]), getattr(torch, DTYPE_NAMES[info["dtype"]]))
        quant = QuantizedStructure.load(directory) if (directory / QUANT_CONFIG_NAME).is_file() else None
        return cls(name or str(directory), model_class, dict(config), tensors, quant)

    def meta_model(self, fresh: bool = False):
        """The model built on the meta device, quantized modules swapped in (cached unless `fresh`)."""
        if self._meta is None or fresh:
            model = meta_model(self.model_class, self.config)
            if self.quant is not None:
                apply_quantized_structure(model, self.quant)
            if fresh:
                return model
            self._meta = model
        return self._meta

    def quantized(self, scheme: str) -> ModelSpec:
        """The spec a `quantize` stage with default settings would produce: every Linear quantized except the
        default high-precision layers (compress.quant.default_ignore); weights in the scheme's storage dtype
        plus fp32 row scales."""
        storage = get_scheme(scheme).storage_dtype()
        if self.quant is not None:
            raise UserInputError(f"{self.name} is already quantized ({self.quant.config.scheme})")
        model = self.meta_model()
        config = QuantConfig(scheme=scheme, ignore=default_ignore(model))
        tensors, names = dict(self.tensors), []
        for name, linear, reason in selected_linears(model, config):
            if reason is None:
                names.append(name)
                tensors[f"{name}.weight"] = (tuple(linear.weight.shape), storage)
                tensors[f"{name}.weight_scale"] = ((linear.out_features, 1), torch.float32)
        structure = QuantizedStructure(config=config, quantized_modules=tuple(names))
        return ModelSpec(f"{self.name} ({scheme})", self.model_class, self.config, tensors, structure)

    # ---- what it weighs -------------------------------------------------------------------------

    @functools.cached_property
    def tensor_bytes(self) -> dict[str, int]:
        return {k: math.prod(shape) * dtype.itemsize for k, (shape, dtype) in self.tensors.items()}

    @property
    def total_bytes(self) -> int:
        return sum(self.tensor_bytes.values())

    def bytes_by_dtype(self) -> dict[str, int]:
        counts = Counter()
        for key, (_, dtype) in self.tensors.items():
            counts[dtype_name(dtype)] += self.tensor_bytes[key]
        return dict(counts)

    @property
    def parameters(self) -> int:
        return sum(math.prod(shape) for shape, _ in self.tensors.values())

    def units(self, wrap: str) -> tuple[int, dict[str, int]]:
        """(root bytes, {unit: bytes}) for FSDP wrapping / block offloading. `block`: each `blocks.N` is a unit
        and everything else stays in the root (upstream Wan's FSDP policy); `module`: also each audio injector
        and each top-level submodule; `model`: a single root unit."""
        root, units = 0, Counter()
        for key, size in self.tensor_bytes.items():
            match = _UNIT.match(key)
            if wrap == "block" and key.startswith("blocks."):
                units[match[1]] += size
            elif wrap == "module" and (match or "." in key):
                units[match[1] if match else key.split(".")[0]] += size
            else:
                root += size
        return root, dict(units)

    @property
    def compute_dtype(self) -> torch.dtype:
        """The dtype activations run in: that of the patch embedding (as the model's forward does)."""
        return self.tensors["patch_embedding.weight"][1]

    def linear_scheme(self, module: str) -> str | None:
        """The quantization scheme of Linear `module`, or None when it runs in high precision."""
        if self.quant is not None and module in self.quant.quantized_modules:
            return self.quant.config.scheme
        return None
