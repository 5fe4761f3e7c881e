"""The stage base class and the registry that finds stage kinds by name.

A stage is a typed pydantic config with a `run` method, so the same object is built from YAML
(`kind: quantize`) and from Python (`QuantizeStage(scheme=...)`). Subclasses register themselves
by their `kind`.
"""

from __future__ import annotations

import functools
import importlib
import re
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from compress.artifacts import Artifact, ArtifactWriter
from compress.stages.context import StageContext
from compress.stages.refs import ModelRef, Refers, find_refers
from compress.utils.paths import outside_problem
from compress.utils.problems import field_path

_REGISTRY: dict[str, type["Stage"]] = {}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class Stage(BaseModel):
    """Base of every stage kind. Fields shared by all kinds: `kind`, `name`, `input`."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    kind: ClassVar[str]
    #: short human description, shown by `compress recipe validate`
    summary: ClassVar[str] = ""
    #: metrics shown in summary tables (others stay in the manifest)
    key_metrics: ClassVar[tuple[str, ...]] = ()
    #: whether the artifact holds model weights (a reference dataset stage does not)
    produces_model: ClassVar[bool] = True
    #: whether every torchrun rank runs `run` (sharing one output directory); otherwise rank 0 alone
    distributed: ClassVar[bool] = False
    #: fields of `paths()` naming what the stage writes (they need not exist yet)
    written_paths: ClassVar[tuple[str, ...]] = ()
    #: bump when this kind's finished artifacts no longer serve (e.g. they lack a record later stages need): they
    #: are then redone, while other kinds' artifacts stay valid
    artifact_version: ClassVar[int] = 1

    name: str | None = Field(default=None, description="unique name in the recipe; defaults to the kind")
    input: ModelRef | None = Field(
        default=None, description="name of an earlier stage (or 'source') to start from; default: the latest model"
    )

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        kind = cls.__dict__.get("kind")
        if kind:
            if kind in _REGISTRY and _REGISTRY[kind] is not cls:
                raise ValueError(f"stage kind '{kind}' is registered twice ({_REGISTRY[kind].__name__}, {cls.__name__})")
            _REGISTRY[kind] = cls

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str | None) -> str | None:
        if value is not None and (not _NAME.match(value) or value == "source"):
            raise ValueError("a name of letters, digits, '_', '-' or '.', not 'source'")
        return value

    @property
    def display_name(self) -> str:
        return self.name or self.kind

    def config_dict(self) -> dict:
        """The stage's configuration as plain JSON-able data (kind included)."""
        return {"kind": self.kind, **self.model_dump(mode="json", exclude={"name"})}

    @classmethod
    @functools.cache
    def reference_fields(cls) -> dict[str, Refers]:
        """{field: what it accepts} of the fields annotated with a `StageRef` (`input` among them)."""
        found = {name: find_refers(f.annotation, f.metadata) for name, f in cls.model_fields.items()}
        return {name: refers for name, refers in found.items() if refers is not None}

    def references(self) -> list[tuple[tuple, str, Refers]]:
        """(location, stage name, what the field accepts) of every earlier stage this one reads; the location is
        `(field,)`, or `(field, i)` for the i-th name of a list field."""
        found = []
        for field, refers in self.reference_fields().items():
            value = getattr(self, field)
            names = enumerate(value) if isinstance(value, list) else [(None, value)] if value is not None else []
            found += [((field,) if i is None else (field, i), name, refers) for i, name in names]
        return found

    def referenced_stages(self) -> dict[str, str]:
        """{field (`field[i]` in a list): stage name} of `references()`: the runner puts their artifact hashes in
        the resume key."""
        return {field_path(loc): name for loc, name, _ in self.references()}

    def paths(self) -> dict[str, str]:
        """{field: path as written} of the files and folders the stage reads (or, `written_paths`, writes)."""
        return {}

    def path_problems(self, label: str, root: Path, allowed: list[Path]) -> list[str]:
        """One line per path of `paths()` outside the `allowed` roots, or read but missing."""
        problems = []
        for field, value in self.paths().items():
            path = (root / value).resolve()
            if outside := outside_problem(f"{label}.{field}", value, root / value, allowed):
                problems.append(outside)
            elif field not in self.written_paths and not path.exists():
                problems.append(f"{label}.{field}: expected an existing file or folder; found '{value}' (not there)")
        return problems

    def data_fingerprint(self, ctx: StageContext) -> dict | None:
        """Identity of external data the stage reads (files named in its config), part of its resume key."""
        return None

    def run(self, source: Artifact, out: ArtifactWriter, ctx: StageContext) -> dict:
        """Do the work on `source`, write files into `out`, return metrics."""
        raise NotImplementedError


_BUILTIN_MODULES = ("compress.stages.quantize", "compress.stages.reference", "compress.stages.prune",
                    "compress.stages.evaluate", "compress.stages.distill", "compress.stages.sync_expert",
                    "compress.stages.export")


def registered_kinds() -> list[str]:
    for module in _BUILTIN_MODULES:  # importing a stage module registers its kind
        importlib.import_module(module)
    return sorted(_REGISTRY)


def stage_class(kind: str) -> type[Stage]:
    registered_kinds()
    try:
        return _REGISTRY[kind]
    except KeyError:
        raise KeyError(f"unknown stage kind '{kind}'; known kinds: {', '.join(sorted(_REGISTRY))}") from None
