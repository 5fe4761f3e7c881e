"""Typed references to earlier stages: `reference: StageRef["reference"]`, `input: ModelRef | None`.

A field annotated with a `StageRef` holds the name of an earlier stage (or a list of names); the recipe checks at
validation that each name is an earlier stage of an accepted kind, and the runner puts the artifact hash of
every referenced stage into the resume key (`Stage.referenced_stages`, derived from these annotations).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, get_args, get_origin

SOURCE = "source"


class _ModelStages:
    """The marker for 'any model-producing stage, or the source', in `StageRef[MODEL, ...]`."""

    def __repr__(self) -> str:
        return "MODEL"


MODEL = _ModelStages()


@dataclass(frozen=True)
class Refers:
    """What a stage-reference field accepts: stages of `kinds`, and with `models` every stage that produces a model
    (and 'source', the recipe's model)."""

    kinds: tuple[str, ...] = ()
    models: bool = False

    def accepts(self, kind: str, produces_model: bool) -> bool:
        return kind in self.kinds or (self.models and produces_model)

    def describe(self) -> str:
        """'reference' stage, model-producing stage, model-producing or 'export' stage."""
        names = (["model-producing"] if self.models else []) + [f"'{k}'" for k in self.kinds]
        return f"{' or '.join(names)} stage"


class StageRef:
    """`StageRef["reference"]`, `StageRef["a", "b"]`, `StageRef[MODEL, "export"]`: the annotation of a field naming an
    earlier stage of one of those kinds (a plain `str` to pydantic)."""

    def __class_getitem__(cls, kinds: Any) -> Any:
        kinds = kinds if isinstance(kinds, tuple) else (kinds,)
        return Annotated[str, Refers(tuple(k for k in kinds if k is not MODEL), any(k is MODEL for k in kinds))]


#: the stage (or 'source') whose model a field names
ModelRef = StageRef[MODEL]


def find_refers(annotation: Any, metadata: list = ()) -> Refers | None:
    """The `Refers` marker of a field's annotation (pydantic keeps a top-level `Annotated`'s in `metadata`), looking
    inside `X | None` and `list[X]`."""
    found = next((m for m in metadata if isinstance(m, Refers)), None)
    if found is not None:
        return found
    if get_origin(annotation) is Annotated:
        return find_refers(get_args(annotation)[0], annotation.__metadata__)
    return next(filter(None, (find_refers(arg) for arg in get_args(annotation))), None)
