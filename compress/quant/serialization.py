"""Saving and restoring quantized models as plain safetensors plus a quantization_config.json."""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict
from safetensors.torch import load_file, save_file
from torch import nn

from compress.quant.config import QuantConfig
from compress.quant.linear import QuantizedLinear
from compress.utils.weights import weight_files

QUANT_CONFIG_NAME = "quantization_config.json"
WEIGHTS_NAME = "model.safetensors"


class QuantizedStructure(BaseModel):
    """Contents of quantization_config.json: the config and the names of the modules it quantized."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    quant_method: Literal["compress.quant"] = "compress.quant"
    config: QuantConfig
    quantized_modules: tuple[str, ...]

    def save(self, directory: str | PathLike) -> Path:
        path = Path(directory) / QUANT_CONFIG_NAME
        path.write_text(self.model_dump_json(indent=2) + "\n")
        return path

    @classmethod
    def load(cls, source: QuantizedStructure | Mapping | str | PathLike) -> QuantizedStructure:
        """From an instance, a dict, JSON text, a quantization_config.json path or the directory holding it."""
        if isinstance(source, QuantizedStructure):
            return source
        if isinstance(source, Mapping):
            return cls.model_validate(source)
        if isinstance(source, str) and source.lstrip().startswith("{"):
            return cls.model_validate_json(source)
        path = Path(source)
        return cls.model_validate_json((path / QUANT_CONFIG_NAME if path.is_dir() else path).read_text())


def quantized_module_names(model: nn.Module) -> list[str]:
    return [name for name, module in model.named_modules() if isinstance(module, QuantizedLinear)]


def apply_quantized_structure(model: nn.Module, structure: QuantizedStructure | Mapping | str | PathLike,
                              allow_emulation: bool | None = None) -> nn.Module:
    """Swap the named Linears of a freshly built (possibly meta-device) model for empty QuantizedLinears,
    so that `model.load_state_dict(quantized_state_dict, assign=True)` restores the quantized model."""
    structure = QuantizedStructure.load(structure)
    config = structure.config
    if allow_emulation is not None:
        config = config.model_copy(update={"allow_emulation": allow_emulation})
    for name in structure.quantized_modules:
        module = model.get_submodule(name)
        if not isinstance(module, nn.Linear):
            raise TypeError(f"quantization_config.json lists {name!r}, but that module is a "
                            f"{type(module).__name__}, not an nn.Linear")
        model.set_submodule(name, QuantizedLinear.empty_like(module, config))
    return model


def save_quantized(model: nn.Module, directory: str | PathLike, config: QuantConfig) -> Path:
    """Write model.safetensors (the quantized state dict, plain tensors) and quantization_config.json."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {key: tensor.contiguous() for key, tensor in model.state_dict().items()}
    save_file(state, directory / WEIGHTS_NAME, metadata={"format": "pt"})
    QuantizedStructure(config=config, quantized_modules=quantized_module_names(model)).save(directory)
    return directory


def checkpoint_files(directory: str | PathLike) -> list[Path]:
    """The safetensors files of a checkpoint directory (see compress.utils.weights.weight_files)."""
    files = weight_files(Path(directory))
    if not files:
        raise FileNotFoundError(f"{directory}: no *.safetensors files")
    return files


def load_checkpoint(directory: str | PathLike, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    for path in checkpoint_files(directory):
        state.update(load_file(path, device=str(device)))
    return state


def load_quantized(model: nn.Module, directory: str | PathLike, allow_emulation: bool | None = None,
                   device: str | torch.device = "cpu") -> nn.Module:
    """Restore a quantized checkpoint (from save_quantized or quantize_checkpoint) into a freshly built model."""
    apply_quantized_structure(model, directory, allow_emulation)
    model.load_state_dict(load_checkpoint(directory, device), assign=True)
    return model
