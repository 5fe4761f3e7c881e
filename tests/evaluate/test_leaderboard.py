"""Leaderboard records (dated, newest wins, explicit replace), sorting, and the table: numbers only in cells, one
line per artifact in 120 columns, reasons as footnotes shown once, gates as pass counts with the failures below."""

import json
import re

import pytest
from rich.console import Console

from compress.errors import UserInputError
from compress.evaluate.leaderboard import Board, markdown, rich_table
from compress.evaluate.records import read_records, write_record
from tests.evaluate.records_fixtures import UNRELIABLE_B, quickstart_records, record
from tests.helpers import run_cli

NUMBER = r"-?\d+(\.\d+)?(e-?\d+)?(K|M|B|KB|MB|GB)?"
CELL = re.compile(rf"^({NUMBER}|\d+/\d+|-)(\[\d+\])?$")  # a number, a count or "-"; an optional footnote


@pytest.fixture
def board_dir(tmp_path):
    for r in (record("int8", 70.0, 120.0, 2_000_000, series=[0.1, 0.3, 0.2, 0.1]),
              record("fp8", 50.0, 100.0, 1_500_000), record("student", None, 10.0, 300_000, inputs="seen")):
        write_record(r, tmp_path)
    return tmp_path


@pytest.fixture
def quickstart_dir(tmp_path):
    for r in quickstart_records():
        write_record(r, tmp_path / "board")
    return tmp_path / "board"


def terminal(board: Board, width: int = 120) -> list[str]:
    console = Console(width=width, record=True, file=open("/dev/null", "w"))
    console.print(rich_table(board))
    return console.export_text().splitlines()


def test_records_round_trip_and_re_evaluation_adds_a_newer_record(board_dir):
    assert sorted(r["artifact"]["name"] for r in read_records(board_dir)) == ["fp8", "int8", "student"]
    again = record("int8", 71.0, 119.0, 2_000_000)
    path = write_record(again, board_dir)
    assert path.name.startswith("t--int8-") and len(list(board_dir.glob("t--int8-*.json"))) == 2
    newest = {r["artifact"]["name"]: r for r in read_records(board_dir)}
    assert newest["int8"]["metrics"]["fidelity"]["frame_psnr"] == 71.0
    assert len(read_records(board_dir, history=True)) == 4
    write_record(record("int8", 72.0, 118.0, 2_000_000), board_dir, replace=True)
    assert len(list(board_dir.glob("t--int8-*.json"))) == 1
    stored = json.loads(next(board_dir.glob("t--int8-*.json")).read_text())
    assert {"id", "lineage", "metrics", "tiers", "packages", "date", "git_revision", "inputs"} <= set(stored)
    assert stored["packages"]["torch"].startswith("2.")


def test_sorting_by_any_metric_missing_values_last(board_dir):
    names = lambda board: [r["artifact"]["name"] for r in board.records]  # noqa: E731
    assert names(Board.load(board_dir, sort="fidelity.frame_psnr")) == ["fp8", "int8", "student"]
    assert names(Board.load(board_dir, sort="fidelity.frame_psnr", descending=True)) == ["int8", "fp8", "student"]
    assert names(Board.load(board_dir, sort="cost.latency_ms_per_frame")) == ["student", "fp8", "int8"]
    with pytest.raises(UserInputError, match=r"--sort nope: no record has this metric; known: .*cost\.bytes"):
        Board.load(board_dir, sort="nope")


def test_cells_hold_numbers_reasons_are_footnotes_gates_are_counts(quickstart_dir):
    grid = Board.load(quickstart_dir).grid()
    rows = {row[0].text: [c.text for c in row] for row in grid.rows}
    assert grid.header[:4] == ["artifact", "kind", "suite", "inputs"] and grid.header[-2:] == ["fit", "gates"]
    for row in rows.values():
        assert all(CELL.match(cell) for cell in row[4:]), row
    at = {name: grid.header.index(name) for name in ("A\nlag", "A\nr0", "A\ngain", "PSNR", "inputs", "gates", "fit")}
    assert [rows["int8"][at[n]] for n in ("A\nlag", "A\nr0", "A\ngain")] == ["0", "0.998", "0.993"]
    assert rows["int8"][at["PSNR"]] == "58.7" and rows["lipsync"][at["inputs"]] == "partly seen"
    # the same reason on every row is one footnote, marked in the header; a row's own reason marks its cell
    assert grid.notes.count(f"tier B {UNRELIABLE_B}") == 1 and "B[1]\nLSE-D" in grid.header
    assert "C[2]" in grid.header and not any(h.startswith("C") and "\n" in h for h in grid.header)  # no numbers
    depth_note = grid.notes.index("tier A not computed: no clip computed (3 given): no face in 36 of 48 student "
                                  "frames") + 1
    assert rows["depth"][at["A\nlag"]] == f"-[{depth_note}]" and rows["depth"][at["A\nr0"]] == "-"
    assert rows["lipsync"][at["fit"]].startswith("-[") and rows["int8"][at["fit"]] == "2/2"
    assert [rows[n][at["gates"]] for n in ("int8", "depth", "lipsync")] == ["5/5", "0/5", "1/5"]
    assert [c.state for c in grid.rows[0][-1:]] == ["pass"]
    assert "FAIL: fidelity.frame_psnr >= 30: depth (9.859), lipsync (24.17), vae-decoder (18.01)" in grid.gate_lines
    assert "not computed: fidelity.latent_rel_error <= 0.05: lipsync, vae-decoder" in grid.gate_lines
    assert sum("frame_psnr" in line for line in grid.gate_lines) == 1  # each gate once


def test_terminal_fits_120_columns_one_line_per_artifact(quickstart_dir):
    board = Board.load(quickstart_dir)
    lines = terminal(board)
    assert max(map(len, lines)) <= 120 and not any("…" in line for line in lines)
    for row in board.grid(("artifact", "inputs")).rows:  # every row on one line, all of its cells there
        [line] = [line for line in lines if line.startswith(row[0].text + " ")]
        assert line.split() == " ".join(c.text for c in row).split() and len(row) == 18
    text = "\n".join(lines)
    assert text.count("the sync expert rejected reversed audio") == 1  # a shared reason is shown once
    assert text.count("FAIL: fidelity.frame_psnr") == 1 and "[6] fit not planned" in text
    assert "quickstart" in lines[0] and "quantize" not in text  # one suite: named in the title; kind left out


def test_columns_choose_metrics_and_name_the_valid_ones(quickstart_dir):
    board = Board.load(quickstart_dir, columns=["cost.dit_forwards_per_clip", "tier_a.timing.zero_lag_corr"],
                       sort="tier_a.timing.zero_lag_corr", descending=True)
    grid = board.grid(("artifact",))
    assert grid.header == ["artifact", "DiT\nfw", "A\nr0", "fit", "gates"]
    assert [[c.text for c in row[:3]] for row in grid.rows[:2]] == [["source", "20", "1"], ["int8", "20", "0.998"]]
    rows = [[c.text for c in row[:3]] for row in grid.rows[3:]]  # no r0: last; no DiT: the student and decoder
    assert rows == [["lipsync", "-", "0.127"], ["depth", "20", "-[2]"], ["vae-decoder", "-", "-[3]"]]
    with pytest.raises(UserInputError, match=r"--columns fidelity\.psnr: not a metric of these records; "
                                             r"valid: .*fidelity\.frame_psnr.*tier_c\.lse_c"):
        Board.load(quickstart_dir, columns=["fidelity.psnr"])


def test_markdown_follows_the_same_layout(quickstart_dir):
    text = markdown(Board.load(quickstart_dir, suite="quickstart"))
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("| artifact"))
    assert header.startswith("| artifact | kind | suite | inputs | PSNR |") and "| B[1] LSE-D |" in header
    assert sum(line.startswith("| ") for line in lines) == 2 + 6  # header, rule, six artifacts
    assert "| int8 | quantize | quickstart | held-out | 58.7 |" in text
    assert text.count("the sync expert rejected reversed audio") == 1 and "- [1] tier B unreliable" in text
    assert "- FAIL: tier_a.articulation.gain >= 0.8 and <= 1.2: lipsync (0.2694)" in text
    with pytest.raises(UserInputError, match="no leaderboard records .* for suite 'other'"):
        Board.load(quickstart_dir, suite="other")


def test_cli_prints_the_table_in_120_columns(quickstart_dir, tmp_path, monkeypatch, capsys):
    code, out, err = run_cli(monkeypatch, capsys, "leaderboard", str(quickstart_dir), "--sort", "cost.bytes",
                             "--markdown", str(tmp_path / "lb.md"))
    assert code == 0, err
    lines = out.splitlines()
    assert max(map(len, lines)) <= 120 and sum(line.startswith(("int8 ", "fp8 ")) for line in lines) == 2
    assert lines.index(next(x for x in lines if x.startswith("int8 "))) < lines.index(
        next(x for x in lines if x.startswith("source ")))  # sorted by bytes
    assert f"wrote {tmp_path / 'lb.md'}" in out
    code, _, err = run_cli(monkeypatch, capsys, "leaderboard", str(quickstart_dir), "--columns", "cost.bytes,nope")
    assert code == 2 and "--columns nope: not a metric of these records; valid:" in err.replace("\n", "")


def test_unreadable_record_names_the_file(board_dir):
    bad = board_dir / "t--x-0--1.json"
    bad.write_text("{not json")
    with pytest.raises(UserInputError, match=r"t--x-0--1\.json: not a readable leaderboard record"):
        read_records(board_dir)
