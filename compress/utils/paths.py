"""Path checks: recipe paths, and every file the toolkit opens on a recipe's behalf, may not escape their roots."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from compress.errors import UserInputError


def looks_like_path(spec: str, root: Path) -> bool:
    return "/" in spec or spec.startswith(".") or (root / spec).exists()


def is_inside(path: Path, roots: list[Path]) -> bool:
    path = path.resolve()
    return any(path == r or r in path.parents for r in (r.resolve() for r in roots))


def allowed_roots(root: Path, extra: list[str]) -> list[Path]:
    """The working root plus the recipe's declared roots (relative to the working root)."""
    root = root.resolve()
    return [root, *((root / r).resolve() for r in extra)]


def check_inside(path: Path, roots: list[Path], what: str) -> Path:
    """`path` with symlinks resolved, refused (naming `what`) unless it lies inside one of `roots`."""
    if not is_inside(path, roots):
        raise UserInputError(f"{what}: {_shown(path)} is outside the working root and the declared roots "
                             f"({', '.join(map(str, roots))})")
    return path.resolve()


def check_folder(path: Path, roots: list[Path], what: str) -> Path:
    """`check_inside` for a path and, when it is a directory, for everything below it (symlinked files or folders;
    symlinked folders are not descended, as the toolkit's own walks do not descend them)."""
    for entry in _with_entries(path):
        check_inside(entry, roots, what)
    return path.resolve()


def outside_problem(where: str, value: str, path: Path, roots: list[Path]) -> str | None:
    """A recipe problem line when `path` (the recipe's `value` at `where`) or an entry below it leads outside
    `roots` (`check_folder`'s test, as a value); None when all stays inside."""
    escape = next((_shown(entry) for entry in _with_entries(path) if not is_inside(entry, roots)), None)
    if escape is None:
        return None
    return (f"{where}: expected a path inside {', '.join(map(str, roots))} (add its directory to 'roots:'); "
            f"found '{value}', where {escape} leads out")


def _with_entries(path: Path) -> Iterator[Path]:
    yield path
    if path.resolve().is_dir():
        for folder, dirs, files in os.walk(path):
            yield from (Path(folder) / name for name in dirs + files)


def _shown(path: Path) -> str:
    resolved = path.resolve()
    return f"{path} (which leads to {resolved})" if resolved != path.absolute() else str(path)


def resolve_within(root: Path, extra: list[str], value: str) -> Path:
    """`value` resolved against `root`, refused unless it (and, for a directory, each entry) lies in the working root
    or a declared root."""
    return check_folder(root / value, allowed_roots(root, extra), f"path '{value}'")
