"""A recipe started with torchrun: rank 0 owns the output, a distributed stage runs on every rank."""

import os
import socket
import subprocess
import sys
from pathlib import Path

from compress.artifacts import Artifact

REPO = Path(__file__).resolve().parents[2]
SCRIPT = """
import tests.engine_fixtures as f; f.register_engine_fixtures()
from compress import Recipe
Recipe(model="test-mlp", output="runs/d", stages=[f.ScaleStage(name="a"), f.ShardStage(name="shards")]).run(quiet=True)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_ranks_share_one_artifact(tmp_path):
    (tmp_path / "run.py").write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()), "run.py"]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    shards = Artifact.open(tmp_path / "runs/d/02-shards")
    assert (shards.path / "merged.txt").read_text() == "0:0 1:1 2:0 3:1 4:0 5:1"
    assert shards.metrics == {"world_size": 2}
    assert Artifact.is_artifact(tmp_path / "runs/d/01-a")
    assert not [p for p in (tmp_path / "runs/d").glob(".*")]
