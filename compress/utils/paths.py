"""Path checks: recipe paths, and every file the toolkit opens on a recipe's behalf, may not escape their roots."""

from __future__ import annotations

import os
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
    resolved = path.resolve()
    if not is_inside(resolved, roots):
        shown = f"{path} (which leads to {resolved})" if resolved != path.absolute() else str(path)
        raise UserInputError(f"{what}: {shown} is outside the working root and the declared roots "
                             f"({', '.join(map(str, roots))})")
    return resolved


def check_folder(path: Path, roots: list[Path], what: str) -> Path:
    """`check_inside` for a path and, when it is a directory, for everything below it (symlinked files or folders;
    symlinked folders are not descended, as the toolkit's own walks do not descend them)."""
    resolved = check_inside(path, roots, what)
    if resolved.is_dir():
        for folder, dirs, files in os.walk(path):
            for name in dirs + files:
                check_inside(Path(folder) / name, roots, what)
    return resolved


def resolve_within(root: Path, extra: list[str], value: str) -> Path:
    """`value` resolved against `root`, refused unless it (and, for a directory, each entry) lies in the working root
    or a declared root."""
    return check_folder(root / value, allowed_roots(root, extra), f"path '{value}'")
