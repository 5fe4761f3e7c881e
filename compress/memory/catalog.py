"""GPU targets and non-DiT component constants, from the packaged catalog.yaml plus optional user files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from compress.errors import UserInputError
from compress.utils.yamlio import load_plain

BUILTIN = Path(__file__).with_name("catalog.yaml")
MIB = 2**20


@dataclass(frozen=True)
class Target:
    key: str
    name: str
    memory_bytes: int  # total, as the driver reports it
    fp8: bool = False

    def to_dict(self) -> dict:
        return {"key": self.key, "name": self.name, "memory_bytes": self.memory_bytes, "fp8": self.fp8}


@dataclass(frozen=True)
class Component:
    key: str
    name: str
    parameters: int
    dtype: torch.dtype

    @property
    def bytes(self) -> int:
        return self.parameters * self.dtype.itemsize


@dataclass(frozen=True)
class Catalog:
    gpus: dict[str, Target]
    components: dict[str, Component]

    def target(self, key: str) -> Target:
        if key not in self.gpus:
            raise UserInputError(f"unknown GPU '{key}'; known: {', '.join(sorted(self.gpus))} "
                                 "(add more with --catalog)")
        return self.gpus[key]


def _dtype(name: str, where: str) -> torch.dtype:
    dtype = getattr(torch, str(name), None)
    if not isinstance(dtype, torch.dtype):
        raise UserInputError(f"{where}: unknown dtype {name!r}")
    return dtype


def _read(path: Path) -> dict:
    try:
        data = load_plain(Path(path)) or {}
    except OSError as err:
        raise UserInputError(f"{path}: cannot read GPU catalog ({err})") from None
    if not isinstance(data, dict) or set(data) - {"gpus", "components"}:
        raise UserInputError(f"{path}: a catalog is a mapping with 'gpus' and/or 'components'")
    return data


def load_catalog(*extra: str | Path) -> Catalog:
    """The built-in catalog, with the entries of each `extra` file added or overriding by key."""
    gpus, components = {}, {}
    for path in (BUILTIN, *extra):
        data = _read(path)
        try:
            for key, g in (data.get("gpus") or {}).items():
                gpus[key] = Target(key, g.get("name", key), int(g["memory_mib"]) * MIB, bool(g.get("fp8", False)))
            for key, c in (data.get("components") or {}).items():
                components[key] = Component(key, c.get("name", key), int(c["parameters"]),
                                            _dtype(c["dtype"], f"{path}: components.{key}"))
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise UserInputError(f"{path}: malformed catalog entry ({err!r})") from None
    return Catalog(gpus, components)
