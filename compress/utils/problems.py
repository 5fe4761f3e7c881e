"""Turning pydantic validation errors into one readable line per problem."""

from __future__ import annotations

import difflib

from pydantic import BaseModel, ValidationError

from compress.utils.yamlio import line_of


def field_path(loc: tuple, prefix: str = "") -> str:
    path = prefix
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def _describe(error: dict, model: type[BaseModel] | None) -> str:
    kind, found = error["type"], error.get("input")
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        field = error["loc"][-1]
        known = list(model.model_fields) if model is not None else []
        close = difflib.get_close_matches(str(field), known, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"unknown field '{field}'{hint}; allowed fields: {', '.join(known)}"
    message = error["msg"]
    message = message.removeprefix("Value error, ").removeprefix("Input should be ")
    return f"expected {message}; found {found!r}"


def problems_from(
    err: ValidationError, data, model: type[BaseModel] | None, prefix: str = "", skip: tuple = ()
) -> list[str]:
    """One line per pydantic error: `file:line: field.path: what was expected, what was found`."""
    lines = []
    for error in err.errors():
        if error["loc"][:1] in [(field,) for field in skip]:
            continue
        text = f"{field_path(tuple(error['loc']), prefix)}: {_describe(error, model)}"
        lines.append(located(data, error["loc"], text))
    return lines


def located(data, loc: tuple, text: str) -> str:
    """`text` prefixed with `file:line: ` of `loc` in `data` (a loaded YAML tree) where it is known."""
    where = line_of(data, loc)
    return f"{where}: {text}" if where else text
