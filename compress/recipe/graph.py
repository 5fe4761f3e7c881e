"""The stage graph of a recipe: unique names, and every stage reference naming an earlier stage of a kind the
field accepts (`compress.stages.refs`)."""

from __future__ import annotations

from compress.errors import RecipeError
from compress.stages.base import Stage
from compress.stages.refs import SOURCE, Refers
from compress.utils.problems import field_path


class StageGraphError(RecipeError):
    """Graph problems with their pydantic-style locations (("stages", 3, "reference")), so a loader that knows the
    YAML can name the line of each."""

    def __init__(self, located: list[tuple[tuple, str]]):
        self.located = located
        super().__init__([text for _, text in located])


def check_stage_graph(stages: list[Stage]) -> None:
    """Raise StageGraphError listing every duplicate name and every reference that is not an earlier stage of an
    accepted kind."""
    problems, earlier = [], {SOURCE: None}  # name -> stage (None: the recipe's model)
    for i, stage in enumerate(stages):
        label = f"stages[{i}] ({stage.display_name})"
        if stage.display_name in earlier:
            problems.append((("stages", i, "name"), f"{label}.name: expected a unique stage name; found a second "
                                                    f"'{stage.display_name}'"))
        for loc, name, refers in stage.references():
            problem = _reference_problem(refers, name, earlier)
            if problem:
                problems.append((("stages", i, *loc), f"{label}.{field_path(loc)}: {problem}"))
        earlier[stage.display_name] = stage
    if problems:
        raise StageGraphError(problems)


def _reference_problem(refers: Refers, name: str, earlier: dict[str, Stage | None]) -> str | None:
    accepted = [n for n, s in earlier.items() if _accepts(refers, s)]
    expected = f"{'' if not refers.models else repr(SOURCE) + ' or '}the name of an earlier {refers.describe()}"
    choices = f"({', '.join(accepted) or 'none so far'})"
    if name not in earlier:
        return f"expected {expected} {choices}; found '{name}', not an earlier stage"
    if not _accepts(refers, earlier[name]):
        return f"expected {expected} {choices}; found '{name}' (a '{earlier[name].kind}' stage)"
    return None


def _accepts(refers: Refers, stage: Stage | None) -> bool:
    return refers.models if stage is None else refers.accepts(stage.kind, stage.produces_model)

