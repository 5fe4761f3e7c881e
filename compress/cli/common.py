"""What the command modules share: the stdout console and the `--set` help."""

from __future__ import annotations

import sys

from rich.console import Console as RichConsole

SET_HELP = "override a recipe field, e.g. --set stages.int8.scheme=fp8_weight_only (repeatable)"


def stdout(width: int = 160) -> RichConsole:
    """The console for results; logs and pipes get the whole table (`width` columns), a terminal its own width."""
    return RichConsole(width=None if sys.stdout.isatty() else width)
