"""Path checks: recipe paths, and every file the toolkit opens on a recipe's behalf, may not escape their roots."""

from __future__ import annotations

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
    """`check_inside` for a path and, when it is a directory, for each of its entries (symlinked files or folders)."""
    resolved = check_inside(path, roots, what)
    if resolved.is_dir():
        for entry in path.iterdir():
            check_inside(entry, roots, what)
    return resolved


def resolve_within(root: Path, extra: list[str], value: str) -> Path:
    """`value` resolved against `root`, refused unless it (and, for a directory, each entry) lies in the working root
    or a declared root."""
    return check_folder(root / value, allowed_roots(root, extra), f"path '{value}'")
