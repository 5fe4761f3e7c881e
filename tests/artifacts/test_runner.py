"""Atomic artifacts, resume, --force / --from-stage, failure cleanup, kill mid-stage, locking, manifests."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import compress
from compress import Recipe
from compress.artifacts import Artifact, OutputLock
from compress.errors import LockError, StageError
from compress.runner import OUTPUT_MARK
from tests.engine_fixtures import NoteStage, ScaleStage

REPO = Path(__file__).resolve().parents[2]


def recipe(**kwargs):
    stages = kwargs.pop("stages", [ScaleStage(name="a", factor=3), NoteStage(text="hello"), ScaleStage(name="b")])
    return Recipe(model="test-mlp", output="runs/t", stages=stages, **kwargs)


def statuses(result):
    return [(r.name, r.status) for r in result.results]


def test_run_writes_artifacts_then_resumes(workdir):
    first = recipe().run(quiet=True)
    assert statuses(first) == [("source", "ran"), ("a", "ran"), ("test-note", "ran"), ("b", "ran")]
    assert sorted(p.name for p in (workdir / "runs/t").iterdir()) == [OUTPUT_MARK, "00-source", "01-a", "02-test-note",
                                                                       "03-b"]
    again = compress.run(recipe(), quiet=True)  # Recipe.run is this call
    assert all(status == "skipped" for _, status in statuses(again))
    # the note stage has no model: 'b' starts from 'a', the latest model
    source, a, b = (first[n].load_model() for n in ("source", "a", "b"))
    assert torch.equal(a.layers[0].weight, 3 * source.layers[0].weight)
    assert torch.equal(b.layers[0].weight, 2 * a.layers[0].weight)


def test_changed_config_reruns_that_stage_and_its_dependents_only(workdir):
    recipe().run(quiet=True)
    changed = recipe(stages=[ScaleStage(name="a", factor=5), NoteStage(text="hello"), ScaleStage(name="b")])
    assert statuses(changed.run(quiet=True))[1:] == [("a", "ran"), ("test-note", "ran"), ("b", "ran")]
    renamed_note = recipe(stages=[ScaleStage(name="a", factor=5), NoteStage(text="bye"), ScaleStage(name="b")])
    assert statuses(renamed_note.run(quiet=True))[1:] == [("a", "skipped"), ("test-note", "ran"), ("b", "skipped")]



def test_a_new_artifact_version_redoes_that_kind_only(workdir, monkeypatch):
    recipe().run(quiet=True)
    monkeypatch.setattr(NoteStage, "artifact_version", 2)
    assert statuses(recipe().run(quiet=True))[1:] == [("a", "skipped"), ("test-note", "ran"), ("b", "skipped")]
    assert statuses(recipe().run(quiet=True))[1:] == [("a", "skipped"), ("test-note", "skipped"), ("b", "skipped")]


def test_paths_with_brackets_are_logged_as_they_are(workdir, capsys):
    from compress.utils.console import Console

    bracketed = recipe().model_copy(update={"output": "runs/[x]"})
    compress.run(bracketed, console=Console(live=False))
    compress.run(bracketed, console=Console(live=False))
    err = capsys.readouterr().err
    assert "-> runs/[x]/01-a" in err and "a: up to date, skipping (01-a)" in err

def test_force_and_from_stage(workdir):
    recipe().run(quiet=True)
    assert all(s == "ran" for _, s in statuses(recipe().run(force=True, quiet=True)))
    assert statuses(recipe().run(from_stage="test-note", quiet=True)) == [
        ("source", "skipped"), ("a", "skipped"), ("test-note", "ran"), ("b", "ran")]


def test_failed_stage_leaves_no_partial_artifact(workdir, monkeypatch):
    recipe().run(quiet=True)
    monkeypatch.setenv("TEST_SCALE_CRASH", "b")
    with pytest.raises(StageError, match=r"stage 'b' \(test-scale\) failed: RuntimeError: injected failure"):
        recipe().run(force=True, quiet=True)
    out = workdir / "runs/t"
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [OUTPUT_MARK]
    # the old 'b' is still there and complete: a failed redo replaced nothing
    assert Artifact.is_artifact(out / "03-b")


def test_manifest_records_lineage_hashes_and_environment(workdir):
    result = recipe().run(quiet=True)
    b = result["b"]
    m = b.manifest
    assert [a["name"] for a in b.lineage] == ["source", "a", "b"]
    assert m["input"]["hash"] == result["a"].hash
    assert m["stage_config"] == {"kind": "test-scale", "factor": 2.0, "sleep_s": 0.0, "input": None, "reads": None}
    assert m["recipe"]["hash"] == recipe().recipe_hash()
    assert m["environment"]["packages"]["torch"].startswith("2.13")
    assert m["timing"]["wall_s"] >= 0 and m["timing"]["peak_rss_bytes"] > 10 << 20
    assert m["model"]["parameters"] == 2 * (8 * 8 + 8) and m["model"]["bytes_by_dtype"] == {"float32": 576}
    assert set(m["files"]) == {"config.json", "diffusion_pytorch_model.safetensors"}
    assert "| factor | 2 |" in (b.path / "README.md").read_text()


def _run_in_subprocess(workdir: Path, sleep_s: float) -> subprocess.Popen:
    code = (
        "import tests.engine_fixtures as f; f.register_engine_fixtures()\n"
        "from compress import Recipe\n"
        f"Recipe(model='test-mlp', output='runs/t', stages=[f.ScaleStage(name='a'), "
        f"f.ScaleStage(name='slow', sleep_s={sleep_s})]).run(quiet=True)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "disabled"}
    return subprocess.Popen([sys.executable, "-c", code], cwd=workdir, env=env)


def _wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_killed_run_leaves_earlier_artifacts_and_resumes(workdir):
    out = workdir / "runs/t"
    proc = _run_in_subprocess(workdir, sleep_s=30)
    _wait_for(lambda: any("-slow.partial-" in p.name for p in out.glob(".*")) if out.exists() else False)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert Artifact.is_artifact(out / "01-a")
    assert not (out / "02-slow").exists()  # nothing under the final name: it cannot look complete
    assert (out / ".lock").exists()  # left by the dead run

    result = Recipe(model="test-mlp", output="runs/t",
                    stages=[ScaleStage(name="a"), ScaleStage(name="slow", sleep_s=0.0)]).run(quiet=True)
    assert statuses(result) == [("source", "skipped"), ("a", "skipped"), ("slow", "ran")]
    assert [p.name for p in out.glob(".*")] == [OUTPUT_MARK]


def test_a_live_lock_refuses_a_second_run(workdir):
    out = workdir / "runs/t"
    proc = _run_in_subprocess(workdir, sleep_s=30)
    try:
        _wait_for(lambda: (out / ".lock").exists())
        with pytest.raises(LockError, match=rf"in use by another run \(pid {proc.pid}"):
            recipe().run(quiet=True)
    finally:
        proc.kill()
        proc.wait()


def test_stale_lock_is_reported_and_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / ".lock").write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename, "started": "then"}))
    messages = []
    with OutputLock(tmp_path, log=messages.append):
        assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()
    assert "stale lock" in messages[0] and str(dead.pid) in messages[0]
    assert not (tmp_path / ".lock").exists()


def test_a_stage_reruns_when_an_artifact_it_reads_changes(workdir):
    def stages(text):
        return [NoteStage(name="note", text=text), ScaleStage(name="a"), ScaleStage(name="b", input="source", reads="note")]

    Recipe(model="test-mlp", output="runs/t", stages=stages("one")).run(quiet=True)
    rerun = Recipe(model="test-mlp", output="runs/t", stages=stages("two")).run(quiet=True)
    assert statuses(rerun)[1:] == [("note", "ran"), ("a", "skipped"), ("b", "ran")]
