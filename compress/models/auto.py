"""Model classes and presets by name, so artifacts and recipes can name models without importing them.

A preset is a model class plus a config (and optionally shipped weights): `tiny` and
`wan2.2-s2v-14b` for the S2V teacher, and the students' size presets (`compress.models.builtin`). More can be
registered from Python with `register_preset`.

This module is light: the built-in presets' names and parameter counts come from `presets/catalog.json`
(written by scripts/write_preset_catalog.py, checked against the models by tests/models/test_preset_catalog.py),
so the command line names and inspects them without importing torch; building a model imports it.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from compress.errors import CheckpointError, UserInputError
from compress.models.config_check import check_fits, read_model_config
from compress.utils.hashing import sha256_file

if TYPE_CHECKING:
    from torch import nn

CATALOG = Path(__file__).resolve().parent / "presets" / "catalog.json"
BF16_BYTES = 2  # presets are counted at bfloat16, as the release stores its weights

_CLASSES: dict[str, type] = {}
_PRESETS: dict[str, "Preset"] = {}


@dataclass
class Preset:
    name: str
    model_class: type
    config: dict = field(default_factory=dict)
    weights_dir: Path | None = None  # shipped weights (loaded with from_pretrained) instead of a random init
    description: str = ""


def register_model_class(cls: type) -> type:
    _CLASSES[cls.__name__] = cls
    return cls


def register_preset(preset: Preset) -> Preset:
    register_model_class(preset.model_class)
    _PRESETS[preset.name] = preset
    return preset


def _builtins() -> None:
    import compress.models.builtin  # noqa: F401  (registers the built-in classes and presets)


@functools.cache
def builtin_catalog() -> dict[str, dict]:
    """{preset: {class, description, parameters, breakdown?}} of the built-in presets."""
    return json.loads(CATALOG.read_text())


def preset_names() -> list[str]:
    """The built-in presets and those registered from Python (without importing any model)."""
    return sorted({*builtin_catalog(), *_PRESETS})


def preset_class_name(name: str) -> str | None:
    """The model class name of a preset, without importing it (None for an unknown name)."""
    if name in _PRESETS:
        return _PRESETS[name].model_class.__name__
    return builtin_catalog().get(name, {}).get("class")


def get_preset(name: str) -> Preset:
    _builtins()
    if name not in _PRESETS:
        raise UserInputError(f"unknown preset '{name}'; known presets: {', '.join(sorted(_PRESETS))}")
    return _PRESETS[name]


def model_class(name: str) -> type:
    _builtins()
    if name not in _CLASSES:
        raise UserInputError(f"unknown model class '{name}'; known: {', '.join(sorted(_CLASSES))}")
    return _CLASSES[name]


def preset_fingerprint(name: str) -> str | None:
    """The hash of a preset's shipped weights (None for random-init presets)."""
    preset = get_preset(name)
    if preset.weights_dir is None:
        return None
    return ",".join(sha256_file(p) for p in sorted(preset.weights_dir.glob("*.safetensors")))


def build_preset(name: str, seed: int = 0, device=None, torch_dtype=None):
    """The preset's model: its shipped weights, or a random init that depends only on the seed."""
    import torch

    preset = get_preset(name)
    if preset.weights_dir is not None:
        return preset.model_class.from_pretrained(preset.weights_dir, torch_dtype=torch_dtype).to(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = preset.model_class.from_config(preset.config)
    return model if device is None and torch_dtype is None else model.to(device=device, dtype=torch_dtype)


def meta_model(model_class: type, config: dict) -> "nn.Module":
    """The model built on the meta device: its structure, nothing allocated."""
    import torch

    with torch.device("meta"):
        return model_class.from_config(config)


def count_preset(name: str) -> dict:
    """{class, description, parameters, breakdown?} of a preset, counted on the meta device."""
    preset = get_preset(name)
    model = meta_model(preset.model_class, preset.config)
    counts = {"class": preset.model_class.__name__, "description": preset.description,
              "parameters": sum(p.numel() for p in model.parameters())}
    if hasattr(model, "parameter_breakdown"):
        counts["breakdown"] = model.parameter_breakdown()
    return counts


def inspect_preset(name: str) -> dict:
    """Parameter count and bytes at bfloat16: a built-in preset's from the catalog (no torch; the same numbers as
    counting: tests/models/test_preset_catalog.py), any other registered preset counted on the meta device."""
    counts = builtin_catalog().get(name) or count_preset(name)  # count_preset raises for unknown names
    params = counts["parameters"]
    info = {"class": counts["class"], "description": counts["description"],
            "model": {"parameters": params, "bytes_by_dtype": {"bfloat16": params * BF16_BYTES},
                      "bytes": params * BF16_BYTES}}
    if "breakdown" in counts:
        info["breakdown"] = counts["breakdown"]
    return info


def checkpoint_layout(path: Path) -> tuple[type, dict, Callable[[str], str | None] | None]:
    """(model class, constructor config, key rename) of a model directory: the diffusers layout written by
    `save_pretrained` (no rename), or the official Wan2.2-S2V release layout (native key names)."""
    from compress.models.s2v import WanS2VTransformer3DModel
    from compress.models.s2v.keymap import from_official_config, is_official_config, native_to_ours

    config_path = Path(path) / "config.json"
    if not config_path.is_file():
        raise UserInputError(f"{path}: no config.json, not a model directory")
    raw = read_model_config(config_path)
    if is_official_config(raw):
        return WanS2VTransformer3DModel, from_official_config(raw), native_to_ours
    if "_class_name" not in raw:
        raise UserInputError(f"{config_path}: no _class_name; cannot tell which model this is")
    return model_class(raw["_class_name"]), raw, None


def load_model(path: Path, device=None, torch_dtype=None):
    """Load any model directory the toolkit knows: diffusers or official layout, or a quantized artifact
    (quantization_config.json beside the weights; its stored dtypes are kept)."""
    from safetensors import SafetensorError

    from compress.models.loading import check_model_finite, require_weight_files
    from compress.quant import QUANT_CONFIG_NAME, load_quantized

    cls, config, _ = checkpoint_layout(path)
    check_fits(cls, config, Path(path) / "config.json")
    files = require_weight_files(path)  # before diffusers looks further (it would fall back to pickled files)
    try:
        if (Path(path) / QUANT_CONFIG_NAME).is_file():
            model = load_quantized(meta_model(cls, config), path, device=device or "cpu")
        else:
            model = cls.from_pretrained(path, torch_dtype=torch_dtype)
    except CheckpointError:
        raise
    except (OSError, ValueError, RuntimeError, SafetensorError) as err:
        raise CheckpointError(f"{path}: cannot load its weights ({', '.join(f.name for f in files)}): "
                              f"{type(err).__name__}: {err}") from None
    check_model_finite(model, path)
    return model.to(device) if device is not None else model
