"""The command line: exit codes, summaries, --json output."""

import json

import pytest

from tests.helpers import run_cli


cli = run_cli


@pytest.fixture
def recipe_file(workdir):
    path = workdir / "r.yaml"
    path.write_text("name: cli\nmodel: test-mlp\noutput: runs/cli\nstages:\n  - kind: test-scale\n    name: a\n")
    return path


def test_validate_ok_and_bad(monkeypatch, capsys, recipe_file):
    code, out, _ = cli(monkeypatch, capsys, "recipe", "validate", str(recipe_file))
    assert code == 0 and "valid (1 stage," in out and "test-scale" in out
    recipe_file.write_text("model: test-mlp\noutput: runs/cli\nstages:\n  - kind: test-scale\n    factor: x\n")
    code, _, err = cli(monkeypatch, capsys, "recipe", "validate", str(recipe_file))
    assert code == 2 and "r.yaml:5: stages[0].factor" in err


def test_missing_recipe_file_is_bad_input(monkeypatch, capsys, workdir):
    code, _, err = cli(monkeypatch, capsys, "run", "nope.yaml")
    assert code == 2 and "recipe file not found: nope.yaml" in err


def test_unknown_option_is_a_usage_error(monkeypatch, capsys, recipe_file):
    code, _, _ = cli(monkeypatch, capsys, "run", str(recipe_file), "--frobnicate")
    assert code == 2


def test_run_prints_summary_and_json(monkeypatch, capsys, recipe_file):
    code, out, _ = cli(monkeypatch, capsys, "run", str(recipe_file))
    assert code == 0 and "cli: artifacts in" in out and "test-scale" in out and "ran" in out
    code, out, _ = cli(monkeypatch, capsys, "run", str(recipe_file), "--json", "--set", "stages.a.factor=4")
    rows = json.loads(out)
    assert code == 0 and [r["status"] for r in rows] == ["skipped", "ran"] and rows[1]["metrics"]["factor"] == 4.0


def test_failure_while_running_exits_1(monkeypatch, capsys, recipe_file):
    monkeypatch.setenv("TEST_SCALE_CRASH", "a")
    code, _, err = cli(monkeypatch, capsys, "run", str(recipe_file), "-q")
    assert code == 1 and "stage 'a' (test-scale) failed" in err


def test_inspect_artifact_and_preset(monkeypatch, capsys, recipe_file, workdir):
    cli(monkeypatch, capsys, "run", str(recipe_file), "-q")
    code, out, _ = cli(monkeypatch, capsys, "inspect", "runs/cli/01-a", "--json")
    info = json.loads(out)
    assert code == 0 and [a["name"] for a in info["lineage"]] == ["source", "a"] and info["model"]["parameters"] == 144
    code, out, _ = cli(monkeypatch, capsys, "inspect", "runs/cli/01-a")
    assert code == 0 and "source (source) -> a (test-scale)" in out
    code, out, _ = cli(monkeypatch, capsys, "inspect", "test-mlp", "--json")
    assert code == 0 and json.loads(out)["model"]["parameters"] == 144
    code, _, err = cli(monkeypatch, capsys, "inspect", "no-such-thing")
    assert code == 2 and "not an artifact, a model directory or a preset" in err
