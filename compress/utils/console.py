"""Terminal output: log lines, progress bars and tables on stderr, silenced by --quiet."""

from __future__ import annotations

from typing import Iterable

from rich.console import Console as RichConsole
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class Console:
    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.rich = RichConsole(stderr=True, quiet=quiet)

    def log(self, message: str) -> None:
        self.rich.print(message)

    def track(self, iterable: Iterable, description: str, total: int | None = None) -> Iterable:
        if self.quiet:
            yield from iterable
            return
        columns = (TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TimeRemainingColumn())
        with Progress(*columns, console=self.rich, transient=True) as progress:
            yield from progress.track(iterable, total=total, description=description)
