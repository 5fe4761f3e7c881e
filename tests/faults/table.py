"""The fault catalogue's table: each case is a bad input (or a fault) and the exit code and message it must give.

A case builds its files under a temporary folder and returns the `compress` arguments to run there; `check` runs
them in-process (as `tests.helpers.run_cli`) and asserts the exit code, a fragment of the message and that no
traceback was printed. Add a case to a table to grow the catalogue; extra assertions go in `after`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tests.helpers import run_cli


@dataclass(frozen=True)
class Case:
    id: str
    setup: Callable[[Path], list[str]]  # tmp folder -> compress arguments (run with the tmp folder as cwd)
    code: int  # 2: bad input, 1: a failure while running
    message: str  # a fragment of stderr (case-insensitive)
    after: Callable[[Path], None] | None = None  # more checks once it has run: nothing deleted, nothing written...
    seconds: float | None = None  # a limit on the run's wall time (limits checked before work fail fast)

    def __str__(self) -> str:
        return self.id


def check(case: Case, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    args = case.setup(tmp_path)
    start = time.perf_counter()
    code, out, err = run_cli(monkeypatch, capsys, *args)
    elapsed = time.perf_counter() - start
    assert "Traceback" not in out + err, f"{case.id}: printed a traceback:\n{err}"
    assert code == case.code, f"{case.id}: exit {code}, expected {case.code}\nstdout: {out}\nstderr: {err}"
    assert case.message.lower() in err.lower(), f"{case.id}: '{case.message}' not in stderr:\n{err}"
    assert case.seconds is None or elapsed < case.seconds, f"{case.id}: took {elapsed:.1f}s (limit {case.seconds}s)"
    if case.after:
        case.after(tmp_path)
