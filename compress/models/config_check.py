"""Model configs checked before anything is built or allocated.

`read_model_config` reads a model folder's config.json: a JSON mapping whose size fields (the constructor's `int`
parameters, or the official release's `dim`, `num_heads`, `num_layers`...) are whole numbers in range, that builds
on the meta device. `check_fits` compares the parameter count with the memory available before the weights load.
Every refusal is a UserInputError naming the file and the key.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
import typing
from pathlib import Path

from compress.errors import CheckpointError, UserInputError
from compress.utils.yamlio import read_text

MAX_DEPTH = 256  # layers or blocks: the release has 40; building more on the meta device alone takes seconds
MAX_WIDTH = 1 << 16  # widths, heads, channels, token counts
_DEPTH = re.compile(r"(layers|blocks|blocks_per_\w+)$")
_BUILD_ERRORS = (ValueError, TypeError, ZeroDivisionError, IndexError, RuntimeError)


def read_model_config(path: Path) -> dict:
    """The config.json at `path`, checked: a JSON mapping, sizes in range, buildable (see the module)."""
    if not Path(path).is_file():
        raise CheckpointError(f"{path}: not found")
    try:
        raw = json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(raw, dict):
        raise UserInputError(f"{path}: expected a JSON object of model settings; found {type(raw).__name__}")
    layout = _layout(raw, path)
    if layout is not None:
        parameter_count(*layout, path)
    return raw


def check_fits(model_class: type, config: dict, path: Path) -> None:
    """Refuse a model whose weights cannot fit in the memory available now, at 1 byte per parameter (the least any
    stored dtype takes), before anything is allocated."""
    import psutil

    count = parameter_count(model_class, json.dumps(config, sort_keys=True, default=str), path)
    memory = psutil.virtual_memory().available + psutil.swap_memory().free
    if count > memory:
        raise UserInputError(f"{path}: the config describes a {model_class.__name__} of {count:,} parameters: at "
                             f"least {count / 1e9:.1f} GB, more than the {memory / 1e9:.1f} GB of memory available "
                             f"(check num_layers and the widths)")


@functools.lru_cache(maxsize=64)
def parameter_count(model_class: type, config_json: str, path: Path) -> int:
    """Parameters of `model_class(**config)` (`config_json`: the config as JSON), counted on the meta device."""
    from compress.models.auto import meta_model

    try:
        model = meta_model(model_class, json.loads(config_json))
    except _BUILD_ERRORS as err:
        raise UserInputError(f"{path}: not a valid {model_class.__name__} config: {err}") from None
    return sum(p.numel() for p in model.parameters())


def _layout(raw: dict, path: Path) -> tuple[type, str] | None:
    """(model class, its checked config as JSON) of a config; None for a class the toolkit does not know."""
    from compress.models.auto import model_class
    from compress.models.s2v import WanS2VTransformer3DModel
    from compress.models.s2v.keymap import UPSTREAM_DEFAULTS, from_official_config, is_official_config

    if is_official_config(raw):
        for key, default in UPSTREAM_DEFAULTS.items():
            if _is_int(default) and key in raw:
                _check_size(raw, key, path)
        if raw.get("dim", 1) % raw.get("num_heads", 1):
            raise UserInputError(f"{path}: dim: expected a multiple of num_heads ({raw['num_heads']}); found "
                                 f"{raw['dim']}")
        try:
            raw, cls = from_official_config(raw), WanS2VTransformer3DModel
        except ValueError as err:
            raise UserInputError(f"{path}: {err}") from None
    elif "_class_name" not in raw:
        return None  # the caller says what is missing
    else:
        try:
            cls = model_class(raw["_class_name"])
        except UserInputError as err:
            raise UserInputError(f"{path}: _class_name: {err}") from None
    _check_signature(cls, raw, path)
    return cls, json.dumps(raw, sort_keys=True, default=str)


def _check_signature(cls: type, config: dict, path: Path) -> None:
    """Every constructor parameter hinted `int` (or `int | None`, or a tuple or list of ints) that `config` sets."""
    hints = typing.get_type_hints(cls.__init__)
    for name in inspect.signature(cls.__init__).parameters:
        hint = hints.get(name)
        if name not in config or hint is None:
            continue
        if hint is int or (hint == int | None and config[name] is not None):
            _check_size(config, name, path)
        elif _int_sequence(hint):
            _check_sequence(config, name, path)


def _check_size(config: dict, key: str, path: Path) -> None:
    high = MAX_DEPTH if _DEPTH.search(key) else MAX_WIDTH
    value = config[key]
    if not _is_int(value) or not 1 <= value <= high:
        raise UserInputError(f"{path}: {key}: expected a whole number from 1 to {high:,}; found {value!r}")


def _check_sequence(config: dict, key: str, path: Path) -> None:
    value = config[key]
    if (not isinstance(value, (list, tuple)) or len(value) > MAX_DEPTH
            or not all(_is_int(v) and 0 <= v <= MAX_WIDTH for v in value)):
        raise UserInputError(f"{path}: {key}: expected a list of at most {MAX_DEPTH} whole numbers from 0 to "
                             f"{MAX_WIDTH:,}; found {value!r}")


def _int_sequence(hint) -> bool:
    """Whether `hint` is tuple[int, ...] or list[int] (or a union of them)."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, type(int | None)) else (hint,)
    return any(typing.get_origin(o) in (list, tuple) and set(typing.get_args(o)) - {Ellipsis} == {int}
               for o in options)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
