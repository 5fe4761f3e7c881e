"""Terminal output: log lines and progress on stderr, silenced by --quiet.

Progress is a live bar (rate, ETA) on a terminal and a plain line now and then (every 10% or 30 s) elsewhere, so
logs and CI output stay readable. `quiet_libraries` silences third-party bars, log lines and warnings for a run.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import logging
import os
import sys
import time
import warnings
from typing import Iterable, Iterator

from rich.console import Console as RichConsole
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.text import Text

LOG_EVERY_S = 30.0
LOG_EVERY_FRACTION = 0.1


class Console:
    def __init__(self, quiet: bool = False, live: bool | None = None):
        """`live`: draw bars in place (default: when stderr is a terminal) rather than print lines now and then."""
        self.quiet = quiet
        self.rich = RichConsole(stderr=True, quiet=quiet)
        self.live = self.rich.is_terminal if live is None else live
        self.bars: Progress | None = None  # the live bars shown now (nested loops share one display)

    def log(self, message: str) -> None:
        self.rich.print(message, soft_wrap=True)  # one line in logs too (not wrapped at 80 columns)

    def track(self, iterable: Iterable, description: str, total: int | None = None, unit: str = "it") -> Iterator:
        """The items of `iterable`, with progress shown as each one is done."""
        if total is None and hasattr(iterable, "__len__"):
            total = len(iterable)
        with self.progress(description, total, unit=unit) as bar:
            for item in iterable:
                yield item
                del item  # not held while the next one is made (streaming keeps one tensor in memory)
                bar.advance()

    def progress(self, description: str, total: int | None, done: int = 0, unit: str = "it") -> "Bar":
        """A context manager for a loop advanced by hand: `bar.advance(n, note=...)` (note: e.g. the loss)."""
        if self.quiet:
            return Bar()
        return (LiveBar if self.live else LogBar)(self, description, total, done, unit)


def untracked(iterable: Iterable, description: str, total: int | None = None) -> Iterable:
    """The `track` of a loop run without a console: the items, no progress."""
    return iterable


def rate_text(per_second: float | None, unit: str) -> str:
    """'12.3 it/s', or '4.5 s/it' when slower than one per second."""
    if not per_second:
        return f"- {unit}/s"
    value, text = (per_second, f"{unit}/s") if per_second >= 1 else (1 / per_second, f"s/{unit}")
    return f"{value:.3g} {text}" if value < 100 else f"{value:.0f} {text}"


def duration_text(seconds: float) -> str:
    """'M:SS', or 'H:MM:SS' from an hour on."""
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


class Bar:
    """Progress that shows nothing (quiet); LiveBar and LogBar show it."""

    def __init__(self, console: Console | None = None, description: str = "", total: int | None = None,
                 done: int = 0, unit: str = "it"):
        self.console, self.description, self.total, self.done, self.unit = console, description, total, done, unit
        self.note = ""

    def __enter__(self) -> "Bar":
        return self

    def __exit__(self, *exc) -> None:
        pass

    def advance(self, n: int = 1, note: str | None = None) -> None:
        self.done += n
        if note is not None:
            self.note = note


class _Rate(ProgressColumn):
    def render(self, task) -> Text:
        return Text(rate_text(task.speed, task.fields["unit"]), style="progress.data.speed")


class LiveBar(Bar):
    """A rich bar drawn in place: done / total, rate, note, ETA; gone when the loop ends."""

    def __enter__(self) -> "LiveBar":
        console = self.console
        if console.bars is None:
            console.bars = Progress(TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(), _Rate(),
                                    TextColumn("{task.fields[note]}"), TimeRemainingColumn(), console=console.rich,
                                    transient=True)
            console.bars.start()
        self.task = console.bars.add_task(self.description, total=self.total, completed=self.done, note="",
                                          unit=self.unit)
        return self

    def __exit__(self, *exc) -> None:
        bars = self.console.bars
        bars.remove_task(self.task)
        if not bars.tasks:
            bars.stop()
            self.console.bars = None

    def advance(self, n: int = 1, note: str | None = None) -> None:
        super().advance(n, note)
        self.console.bars.update(self.task, advance=n, note=self.note)


class LogBar(Bar):
    """A plain line every 10% (or every 30 s without a total, or when 10% takes longer) and when the loop ends."""

    def __enter__(self) -> "LogBar":
        self.start, self.first = time.monotonic(), self.done
        self.last_time, self.last_done = self.start, self.done
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None and self.done != self.last_done:
            self._line()

    def advance(self, n: int = 1, note: str | None = None) -> None:
        super().advance(n, note)
        now = time.monotonic()
        step = (self.total or 0) * LOG_EVERY_FRACTION
        if now - self.last_time >= LOG_EVERY_S or (step and self.done - self.last_done >= step) \
                or self.done == self.total:
            self._line(now)

    def _line(self, now: float | None = None) -> None:
        now = now or time.monotonic()
        elapsed = now - self.start
        rate = (self.done - self.first) / elapsed if elapsed > 0 else None
        count = f"{self.done}/{self.total} ({100 * self.done / self.total:.0f}%)" if self.total else str(self.done)
        eta = f", ETA {duration_text((self.total - self.done) / rate)}" if rate and self.total else ""
        note = f" {self.note}" if self.note else ""
        line = f"  {self.description}: {count}{note}, {rate_text(rate, self.unit)}, {duration_text(elapsed)} elapsed"
        self.console.rich.print(line + eta, soft_wrap=True, highlight=False, markup=False)  # one line, however long
        self.last_time, self.last_done = now, self.done


# third-party libraries with their own progress bars: (module, turn bars off, turn bars on, are bars on)
_LIBRARY_BARS = (
    ("transformers.utils.logging", "disable_progress_bar", "enable_progress_bar", "is_progress_bar_enabled"),
    ("diffusers.utils.logging", "disable_progress_bar", "enable_progress_bar", "is_progress_bar_enabled"),
    ("datasets.utils.logging", "disable_progress_bar", "enable_progress_bar", "is_progress_bar_enabled"),
    ("huggingface_hub.utils", "disable_progress_bars", "enable_progress_bars", None),
)


@contextlib.contextmanager
def _native_stdout_discarded() -> Iterator[None]:
    """Native code's writes to file descriptor 1 (e.g. the QNN HTP simulator's banner) go nowhere inside."""
    sys.stdout.flush()
    saved, devnull = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    try:
        yield
    finally:
        sys.stdout.flush()  # Python's and C stdio's buffered output, before fd 1 is the real stdout again
        with contextlib.suppress(Exception):
            ctypes.CDLL(None).fflush(None)
        os.dup2(saved, 1)
        os.close(saved)


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """Inside: no third-party progress bars, no log records below ERROR, no Python warnings, no native output on
    stdout (nothing but results belongs there, and they come after); all restored after."""
    restore = []
    for module_name, off, on, enabled in _LIBRARY_BARS:
        try:
            module = importlib.import_module(module_name)
        except Exception:  # not installed, or failing to import: then it shows no bars either
            continue
        was_on = getattr(module, enabled)() if enabled else not module.are_progress_bars_disabled()
        getattr(module, off)()
        if was_on:
            restore.append(getattr(module, on))
    disabled = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), _native_stdout_discarded():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(disabled)
        for turn_on in restore:
            turn_on()
