"""Leaderboard records (dated, newest wins, explicit replace), sorting, gates pass / FAIL / n/a, Markdown."""

import json

import pytest

from compress.errors import UserInputError
from compress.evaluate.leaderboard import Board, gates_cell, markdown, rich_table, tier_cell
from compress.evaluate.records import read_records, write_record
from tests.evaluate.records_fixtures import record


@pytest.fixture
def board_dir(tmp_path):
    for r in (record("int8", 70.0, 120.0, 2_000_000, series=[0.1, 0.3, 0.2, 0.1]),
              record("fp8", 50.0, 100.0, 1_500_000), record("student", None, 10.0, 300_000)):
        write_record(r, tmp_path)
    return tmp_path


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
    assert {"id", "lineage", "metrics", "tiers", "packages", "date", "git_revision"} <= set(stored)
    assert stored["packages"]["torch"].startswith("2.")


def test_sorting_by_any_metric_missing_values_last(board_dir):
    names = lambda board: [r["artifact"]["name"] for r in board.records]  # noqa: E731
    assert names(Board.load(board_dir, sort="fidelity.frame_psnr")) == ["fp8", "int8", "student"]
    assert names(Board.load(board_dir, sort="fidelity.frame_psnr", descending=True)) == ["int8", "fp8", "student"]
    assert names(Board.load(board_dir, sort="cost.latency_ms_per_frame")) == ["student", "fp8", "int8"]
    with pytest.raises(UserInputError, match=r"--sort nope: no record has this metric; known: .*cost\.bytes"):
        Board.load(board_dir, sort="nope")


def test_gates_and_tiers_are_shown_apart(board_dir):
    by_name = {r["artifact"]["name"]: r for r in read_records(board_dir)}
    assert gates_cell(by_name["int8"]) == "FAIL: tier_a.timing.lag"  # PSNR passes; the 2-frame lag fails
    assert gates_cell(by_name["fp8"]) == "pass (n/a: tier_a.timing.lag)"
    assert gates_cell(by_name["student"]) == "n/a: fidelity.frame_psnr, tier_a.timing.lag"  # no verdict at all
    assert tier_cell(by_name["int8"], "A") == "lag 2, gain 0.5, r0 0.4"  # lag and gain never folded together
    assert tier_cell(by_name["fp8"], "A") == "not computed: no face in 16 of 16 teacher frames"
    assert tier_cell(by_name["fp8"], "C") == "not computed: no SyncNet weights given"


def test_markdown_and_table_show_every_artifact(board_dir):
    board = Board.load(board_dir, suite="t")
    text = markdown(board)
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("| artifact"))
    assert "frame_psnr" in header and "tier A" in header and "gates" in header
    assert sum(line.startswith("| ") for line in lines) == 2 + 3  # header, rule, three artifacts
    assert "tier A: landmarks, reference-relative" in text
    assert "- **int8** (int8-" in text and "tier_a.timing.lag <= 1: FAIL (2)" in text
    assert rich_table(board).row_count == 3
    with pytest.raises(UserInputError, match="no leaderboard records .* for suite 'other'"):
        Board.load(board_dir, suite="other")


def test_unreadable_record_names_the_file(board_dir):
    bad = board_dir / "t--x-0--1.json"
    bad.write_text("{not json")
    with pytest.raises(UserInputError, match=r"t--x-0--1\.json: not a readable leaderboard record"):
        read_records(board_dir)
