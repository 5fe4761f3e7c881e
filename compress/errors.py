"""User-facing error types. Bad input exits with code 2, a failure while running with code 1."""

from __future__ import annotations


class CompressError(Exception):
    """A failure while running (exit code 1)."""

    exit_code = 1


class UserInputError(CompressError):
    """Bad input: usage, recipe, missing file (exit code 2)."""

    exit_code = 2


class RecipeError(UserInputError):
    """A recipe with one or more problems; each problem is one line of the message."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"invalid recipe ({count}):\n" + "\n".join(f"  - {p}" for p in problems))


class CheckpointError(UserInputError, ValueError):
    """A checkpoint directory that cannot be read: missing, truncated or corrupt files."""


class LockError(CompressError):
    """Another run holds the output directory."""


class StageError(CompressError):
    """A stage failed while running."""
