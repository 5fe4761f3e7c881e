"""The leaderboard's HTML page in a real headless browser (Debian chromium): loads cleanly and offline, fits a
1280 px window, sorts by a clicked column, colours gate cells, plots lip sync against cost."""

import re
import struct
import subprocess

from compress.evaluate.leaderboard import Board, html_page
from compress.evaluate.records import write_record
from tests.evaluate.records_fixtures import quickstart_records, record
from tests.helpers import CHROMIUM, needs_chromium

#: after load: the page's widths, then the artifact order after two clicks on the "bytes" header (ascending, then
#: descending), written into the DOM for --dump-dom to show
PROBE = """<script>addEventListener("load", () => {
  const root = document.documentElement, wrap = document.querySelector(".wrap");
  const order = () => [...document.querySelectorAll("#leaderboard tbody tr")].map(r => r.cells[0].textContent);
  const bytes = [...document.querySelectorAll("#leaderboard th")].find(th => th.textContent === "bytes");
  bytes.click(); const up = order(); bytes.click(); const down = order();
  document.body.insertAdjacentHTML("beforeend", `<pre id="probe">scroll=${root.scrollWidth} client=${root.clientWidth}
inner=${innerWidth} wrap=${wrap.scrollWidth}/${wrap.clientWidth} up=${up} down=${down}</pre>`);
});</script></body>"""


def chromium(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1280,900", *args],
                          capture_output=True, text=True, timeout=120)


@needs_chromium
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
    assert dom.count("<svg") == 4 + 1  # four Pareto plots (tier A against each cost), int8's mouth opening
    assert re.search(r"clip clip-0: no mouth-opening series \(not computed: no face", dom)
    assert "Pareto front" in dom and "FAIL: tier_a.timing.lag &lt;= 1: int8 (2)" in dom


@needs_chromium
def test_quickstart_page_fits_1280_px_sorts_and_plots_sync_against_cost(tmp_path):
    board = Board.of(quickstart_records())
    text = html_page(board)
    page = tmp_path / "board.html"
    page.write_text(text)
    # gate cells coloured by verdict; one banner for the unreliable tier B, none per row; how to read it
    states = re.findall(r'<td class="num (pass|fail|partial|none)"', text)
    assert states == ["pass", "pass", "pass", "fail", "fail", "fail"]
    assert text.count('class="banner"') == 1 and 'data-tier="B"' in text
    assert text.count("the sync expert rejected reversed audio") == 2  # the banner and the one footnote
    assert "How to read this" in text and "twice each with classifier-free guidance" in text
    titles = re.findall(r"<!-- (lip sync against [\w ]+) -->", text)  # matplotlib's comments on its text
    assert titles == ["lip sync against GMACs per frame", "lip sync against weight bytes",
                      "lip sync against DiT forwards per clip",
                      "lip sync against wall seconds per clip"]  # tier A only: no record has tier C
    assert text.count("Pareto front") >= 4 and text.count("mouth opening, clip") == 2 * 4  # tier A computed: 4

    probe = tmp_path / "probe.html"
    probe.write_text(text.replace("</body>", PROBE))
    done = chromium("--virtual-time-budget=3000", "--dump-dom", probe.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r"scroll=(\d+) client=(\d+)\ninner=(\d+) wrap=(\d+)/(\d+) up=(\S+) down=(\S+)</pre>",
                      done.stdout)
    assert found, done.stdout[-2000:]
    scroll, client, inner, wrap_scroll, wrap_client = map(int, found.groups()[:5])
    assert scroll == client == inner == 1280  # the page is exactly as wide as the window: no horizontal overflow
    assert wrap_scroll == wrap_client  # and the table fits without its own scroll bar
    assert found.group(6).split(",") == ["int8", "fp8", "depth", "source", "vae-decoder",
                                         "lipsync"]  # by bytes, equal ones as they were
    assert found.group(7).split(",") == ["lipsync", "vae-decoder", "source", "depth", "int8", "fp8"]

    shot = tmp_path / "board.png"
    done = chromium(f"--screenshot={shot}", page.as_uri())
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    width, height = struct.unpack(">II", shot.read_bytes()[16:24])  # the PNG header's IHDR chunk
    assert (width, height) == (1280, 900)


def test_sync_c_is_plotted_where_tier_c_was_computed():
    records = quickstart_records()
    for r, lse_c in zip(records[:3], (7.1, 7.0, 6.2)):  # source, int8, fp8 scored by SyncNet; the others not
        r["tiers"]["C"]["status"] = "ok"
        r["metrics"]["tier_c"] = {"tier": "C", "status": "ok", "lse_d": 7.5, "lse_c": lse_c, "av_offset": 0}
    board = Board.of(records)
    text = html_page(board)
    titles = re.findall(r"<!-- (lip sync against [\w ]+) -->", text)
    assert len(titles) == 8 and text.count("<!-- tier C Sync-C (SyncNet LSE-C) -->") == 4
    grid = board.grid()
    assert "C\nLSE-C" in grid.header  # tier C has numbers now: all of its columns
    c = grid.header.index("C\nLSE-D")
    mark = f"-[{grid.notes.index('tier C not computed: no SyncNet weights given') + 1}]"  # a note shown once
    assert [row[c].text for row in grid.rows] == ["7.5", "7.5", "7.5", mark, mark, mark]
