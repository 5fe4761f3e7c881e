"""What the command modules share: the stdout console, the `--set` help, range and choice checks for options."""

from __future__ import annotations

import math
import sys

import typer
from rich.console import Console as RichConsole

SET_HELP = "override a recipe field, e.g. --set stages.int8.scheme=fp8_weight_only (repeatable)"


def stdout(width: int = 160) -> RichConsole:
    """The console for results; logs and pipes get the whole table (`width` columns), a terminal its own width."""
    return RichConsole(width=None if sys.stdout.isatty() else width)


def bounded(low: float, high: float):
    """A typer callback refusing (exit 2, the option named) a number that is not finite or not in [low, high]."""
    def check(value: float | None) -> float | None:
        if value is not None and not (math.isfinite(value) and low <= value <= high):
            raise typer.BadParameter(f"expected a finite number from {low:g} to {high:g}; found {value}")
        return value
    return check


def one_of(choices: tuple[str, ...]):
    """A typer callback refusing (exit 2, the option named) a value that is not one of `choices`."""
    def check(value: str | None) -> str | None:
        if value is not None and value not in choices:
            raise typer.BadParameter(f"expected one of {', '.join(choices)}; found {value!r}")
        return value
    return check
