"""The leaderboard's HTML page in a real headless browser (Debian chromium): loads cleanly, shows every artifact."""

import re
import subprocess

from compress.evaluate.leaderboard import Board, html_page
from compress.evaluate.records import write_record
from tests.evaluate.records_fixtures import record
from tests.helpers import CHROMIUM, needs_chromium

pytestmark = needs_chromium


def chromium(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--disable-dev-shm-usage", *args], capture_output=True, text=True, timeout=120)


def test_html_loads_without_errors_and_shows_every_artifact(tmp_path):
    records = [record("int8", 70.0, 120.0, 2_000_000, series=[0.1, 0.3, 0.2, 0.1]),
               record("fp8", 50.0, 100.0, 1_500_000), record("student", None, 10.0, 300_000)]
    for r in records:
        write_record(r, tmp_path / "board")
    page = tmp_path / "board.html"
    page.write_text(html_page(Board.load(tmp_path / "board", sort="cost.bytes")))
    text = page.read_text()
    assert not re.search(r"<link|<img|src=|@import|url\(http", text)  # self-contained: nothing to fetch

    done = chromium("--enable-logging=stderr", "--v=0", "--virtual-time-budget=2000", "--dump-dom", page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert 'data-artifacts="3"' in dom  # the page's script ran and counted three table rows
    for r in records:
        assert f'data-artifact="{r["id"]}"' in dom
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    assert dom.count("<svg") == 3  # two Pareto plots and int8's mouth-opening plot
    assert re.search(r"clip clip-0: no mouth-opening series \(not computed: no face", dom)
    assert "Pareto front" in dom and "FAIL: tier_a.timing.lag" in dom
