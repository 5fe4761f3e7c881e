"""`compress run --quiet` prints the summary table and nothing else (no log lines, progress or third-party bars);
without it, long stages report progress, as plain lines when stderr is not a terminal."""

import os
import re
import subprocess
import sys

import pytest

from compress import Recipe
from compress.runner import run
from compress.stages.distill import DistillStage
from compress.stages.prune import PruneStage
from compress.stages.reference import ReferenceStage
from compress.utils.console import Console
from tests.helpers import REPO, torchrun

# the demo teacher: its text encoder's loading draws a transformers progress bar unless silenced
RECIPE = """name: quiet
model: demo
output: runs/quiet
stages:
  - {kind: reference, max_clips: 1, frames: 8, size: "96*96", size_multiple: 32, num_inference_steps: 2}
"""
TORCHRUN_CLI = """
import sys
import tests.engine_fixtures as f; f.register_engine_fixtures()
from compress.cli import main
sys.argv = ["compress", "run", "r.yaml", *sys.argv[1:]]
main()
"""
SMALL_STUDENT = {"channels": 32, "mid_blocks": 1, "audio_channels": 32, "audio_dim": 32}


def test_quiet_prints_the_summary_table_only(tmp_path):
    (tmp_path / "r.yaml").write_text(RECIPE)
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "compress.cli", "run", "r.yaml", "--quiet"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and done.stderr == ""
    title, *table = done.stdout.splitlines()
    assert title.strip() == f"quiet: artifacts in {tmp_path / 'runs/quiet'}"
    assert all(line[0] in "┏┃┡│└" for line in table)  # the table's borders and rows, nothing between them
    assert [line.split("│")[1].strip() for line in table if line.startswith("│")] == ["source", "reference"]


@pytest.mark.slow  # about a minute: a reference, a student and LoRA recovery on the tiny teacher
def test_training_stages_report_progress_in_logs(tmp_path, capsys):
    train = {"steps": 3, "batch_size": 2, "checkpoint_every": 3, "log_every": 100}
    stages = [ReferenceStage(name="reference", max_clips=2, frames=8, size="64*64", num_inference_steps=2),
              DistillStage(name="student", input="source", student="lipsync-30m", student_config=SMALL_STUDENT,
                           reference="reference", holdout=1, train=train),
              PruneStage(name="depth", input="source", method="depth", target={"drop_blocks": 1}),
              DistillStage(name="lora", input="depth", method="lora", train={**train, "batch_size": 1})]
    run(Recipe(model="tiny", output="runs/p", stages=stages), tmp_path, console=Console(live=False))
    err = capsys.readouterr().err
    assert "  reference clips: 2/2 (100%)" in err and re.search(r"  scoring blocks by ablation: (\d+)/\1 \(100%\)", err)
    for stage in ("student", "lora"):
        section = err[err.index(f"{stage} (distill)"):]
        lines = [line for line in section.splitlines() if line.startswith("  training:")]
        assert lines[0].startswith("  training: 1/3 (33%) loss ") and lines[2].startswith("  training: 3/3 (100%)")
        assert "samples/s" in lines[0] and ("step/s" in lines[2] or "s/step" in lines[2])


@pytest.mark.slow  # two gloo ranks start
@pytest.mark.parametrize("quiet", [True, False])
def test_under_torchrun_rank_0_alone_logs_and_prints_the_table(tmp_path, quiet):
    (tmp_path / "r.yaml").write_text("name: two\nmodel: test-mlp\noutput: runs/two\nstages:\n"
                                     "  - {kind: test-shards, name: shards}\n")
    done = torchrun(TORCHRUN_CLI, tmp_path, *["--quiet"] * quiet)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("two: artifacts in") == 1 and done.stdout.count("│ shards ") == 1
    assert done.stderr.count("shards (test-shards) -> runs/two/01-shards") == (0 if quiet else 1)
