"""Path checks: recipe paths may not escape their declared roots."""

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


def resolve_within(root: Path, extra: list[str], value: str) -> Path:
    """`value` resolved against `root`, refused unless it lies in the working root or a declared root."""
    path = (root / value).resolve()
    if not is_inside(path, allowed_roots(root, extra)):
        raise UserInputError(f"path '{value}' is outside the working root and the declared roots")
    return path
