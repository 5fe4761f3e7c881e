"""Progress: a live bar with rate and ETA on a terminal, a plain line now and then elsewhere, nothing when quiet;
`quiet_libraries` silences third-party bars, log records and warnings only while it is entered."""

import ctypes
import io
import logging
import os
import re
import time
import warnings

import pytest
from rich.console import Console as RichConsole

from compress.utils import console as console_module
from compress.utils.console import Console, quiet_libraries, rate_text


class Clock:
    """A stand-in for time.monotonic that moves `step` seconds per reading."""

    def __init__(self, step: float):
        self.now, self.step = 1000.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_a_terminal_shows_a_bar_with_rate_and_eta():
    console = Console(live=True)
    buffer = io.StringIO()
    console.rich = RichConsole(file=buffer, force_terminal=True, width=120)
    for _ in console.track(range(5), "scoring"):
        time.sleep(0.15)  # rich redraws 10 times a second
    shown = buffer.getvalue()
    assert "scoring" in shown and re.search(r"[1-5]/5", shown)
    assert re.search(r"[\d.]+ (it/s|s/it)", shown) and re.search(r"\d:\d\d:\d\d", shown)  # rate, ETA


def test_nested_loops_share_one_live_display():
    console = Console(live=True)
    buffer = io.StringIO()
    console.rich = RichConsole(file=buffer, force_terminal=True, width=120)
    pairs = [(clip, step) for clip in console.track(range(2), "clips", unit="clip")
             for step in console.track(range(3), "steps", unit="step")]
    assert len(pairs) == 6 and console.bars is None  # rich allows one live display at a time
    assert "clip/s" in buffer.getvalue() and "step/s" in buffer.getvalue()


def test_a_log_gets_a_line_every_tenth(capsys, monkeypatch):
    monkeypatch.setattr(console_module.time, "monotonic", Clock(0.5))
    assert list(Console(live=False).track(range(20), "clips", unit="clip")) == list(range(20))
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 10 and lines[0].startswith("  clips: 2/20 (10%), 2 clip/s, 0:01 elapsed, ETA 0:09")
    assert lines[-1].startswith("  clips: 20/20 (100%), 2 clip/s, 0:10 elapsed")


def test_a_log_without_a_total_gets_a_line_every_30_seconds_and_at_the_end(capsys, monkeypatch):
    monkeypatch.setattr(console_module.time, "monotonic", Clock(10.0))
    console = Console(live=False)
    with console.progress("training", None, unit="step") as bar:
        for step in range(7):
            bar.advance(note=f"loss {step}")
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(",")[0] for line in lines] == ["  training: 3 loss 2", "  training: 6 loss 5",
                                                      "  training: 7 loss 6"]
    assert "10 s/step" in lines[0] and "ETA" not in lines[0]


def test_resumed_progress_counts_from_where_it_resumed(capsys, monkeypatch):
    monkeypatch.setattr(console_module.time, "monotonic", Clock(1.0))
    with Console(live=False).progress("training", 10, done=8) as bar:
        bar.advance()
        bar.advance()
    assert capsys.readouterr().err.splitlines() == ["  training: 9/10 (90%), 1 it/s, 0:01 elapsed, ETA 0:01",
                                                    "  training: 10/10 (100%), 1 it/s, 0:02 elapsed, ETA 0:00"]


@pytest.mark.parametrize("live", [True, False])
def test_quiet_shows_nothing(capsys, live):
    console = Console(quiet=True, live=live)
    assert list(console.track(iter(range(3)), "clips")) == [0, 1, 2]
    with console.progress("training", 3) as bar:
        bar.advance(3, note="loss 1")
    console.log("a line")
    assert capsys.readouterr() == ("", "")


def test_rate_text_turns_around_below_one_per_second():
    assert [rate_text(r, "step") for r in (12.34, 0.25, None)] == ["12.3 step/s", "4 s/step", "- step/s"]


def test_quiet_libraries_silences_only_inside(caplog):
    from transformers.utils import logging as transformers_logging

    assert transformers_logging.is_progress_bar_enabled()
    with quiet_libraries():
        assert not transformers_logging.is_progress_bar_enabled()
        with warnings.catch_warnings(record=True) as caught:
            warnings.warn("from a dependency")
        assert not caught
        logging.getLogger("some.library").warning("hidden")
        logging.getLogger("some.library").error("shown")
    assert transformers_logging.is_progress_bar_enabled() and logging.root.manager.disable == logging.NOTSET
    assert [r.getMessage() for r in caplog.records] == ["shown"]
    with pytest.warns(UserWarning, match="after"):
        warnings.warn("after")


def test_log_lines_are_not_wrapped_off_a_terminal(capsys):
    Console(live=False).log("word " * 40)
    assert capsys.readouterr().err == "word " * 40 + "\n"


def test_quiet_libraries_discards_native_stdout_only_inside(capfd):
    libc = ctypes.CDLL(None)
    with quiet_libraries():
        libc.printf(b"native banner\n")  # buffered by C stdio, as a library's printf is
        os.write(1, b"raw write\n")
    libc.printf(b"after\n")
    libc.fflush(None)
    print("python after")
    assert capfd.readouterr().out == "after\npython after\n"
