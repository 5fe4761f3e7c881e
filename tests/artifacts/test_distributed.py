"""A recipe started with torchrun: rank 0 owns the output, a distributed stage runs on every rank."""

import pytest

from compress.artifacts import Artifact
from compress.distributed import LEAVE_TIMEOUT
from compress.runner import OUTPUT_MARK
from tests.helpers import torchrun

SCRIPT = """
import tests.engine_fixtures as f; f.register_engine_fixtures()
from compress import Recipe
Recipe(model="test-mlp", output="runs/d", stages=[f.ScaleStage(name="a"), f.ShardStage(name="shards")]).run(quiet=True)
"""


@pytest.mark.slow
def test_two_gloo_ranks_share_one_artifact(tmp_path):
    done = torchrun(SCRIPT, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    shards = Artifact.open(tmp_path / "runs/d/02-shards")
    assert (shards.path / "merged.txt").read_text() == "0:0 1:1 2:0 3:1 4:0 5:1"
    assert shards.metrics == {"world_size": 2}
    assert Artifact.is_artifact(tmp_path / "runs/d/01-a")
    assert [p.name for p in (tmp_path / "runs/d").glob(".*")] == [OUTPUT_MARK]  # no leftovers, no lock


def test_a_rank_that_dies_of_an_exception_leaves_without_waiting_for_its_peers(tmp_path):
    script = """
import torch.distributed as dist
from compress.distributed import init_from_env
if init_from_env()[0] == 0:
    raise ValueError("rank 0 broke")
dist.barrier()
"""
    done = torchrun(script, tmp_path, timeout=LEAVE_TIMEOUT.total_seconds())  # leave() would wait that long
    assert done.returncode != 0 and "ValueError: rank 0 broke" in done.stderr
