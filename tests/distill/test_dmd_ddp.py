"""DMD under torchrun with 2 gloo processes, DDP on two bases or one, FSDP2 (with activation checkpointing) on one
shared base: both adapter sets stay equal on the ranks, the run matches one process at twice the batch (plain), and
a killed run resumes exactly."""

import json
from pathlib import Path

import pytest
import torch

from compress.distill.dmd_training import train_dmd
from tests.distill.dmd_toy import TRAIN, tiny_training
from tests.helpers import torch_threads, torchrun

SCRIPT = """
import json, sys, torch
import torch.distributed as dist
from compress.distill.dmd_layout import full
from compress.distill.dmd_training import train_dmd
from compress.distributed import init_from_env
from compress.distill.config import DmdConfig
from tests.distill.dmd_toy import CONFIG, TRAIN, tiny_training

init_from_env()
config = DmdConfig(**{**CONFIG.model_dump(), "checkpointing": sys.argv[3] == "fsdp"})  # as the 14B would train
training = tiny_training({**TRAIN, "sharding": sys.argv[3]}, config, shared=sys.argv[4] == "shared-base")
result = train_dmd(training, sys.argv[1], stop_after=int(sys.argv[2]))
flat = torch.cat([full(p.detach()).flatten() for p in training.generator.params + training.fake.params])
gathered = [torch.zeros_like(flat) for _ in range(2)]
dist.all_gather(gathered, flat)
if dist.get_rank() == 0:
    print(json.dumps({"losses": result["losses"], "resumed_from": result["resumed_from"],
                      "world_size": result["world_size"], "params": flat.tolist(), "layout": training.layout,
                      "sharded": type(training.generator.params[0]).__name__ == "DTensor",
                      "ranks_equal": bool(torch.equal(gathered[0], gathered[1]))}))
"""


def run_ddp(checkpoints: Path, stop_after: int, sharding: str, layout: str) -> dict:
    done = torchrun(SCRIPT, checkpoints.parent, str(checkpoints), str(stop_after), sharding, layout)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("sharding,layout", [("ddp", "two-bases"), ("ddp", "shared-base"), ("fsdp", "shared-base")])
def test_two_gloo_processes_train_like_one_with_twice_the_batch_and_resume(tmp_path, sharding, layout):
    first = run_ddp(tmp_path / "ckpt", 3, sharding, layout)  # "killed" after step 3 (last checkpoint: 2)
    second = run_ddp(tmp_path / "ckpt", 6, sharding, layout)
    assert first["world_size"] == 2 and first["ranks_equal"] and second["ranks_equal"]
    assert first["layout"] == layout and first["sharded"] == (sharding == "fsdp")
    assert second["resumed_from"] == 2 and second["losses"][:3] == first["losses"][:3]

    with torch_threads(1):  # one process, one base or two alike (test_dmd_layout)
        single = tiny_training({**TRAIN, "batch_size": 2 * TRAIN["batch_size"]})
        expected = train_dmd(single, tmp_path / "single")
    torch.testing.assert_close(torch.tensor(second["losses"]), torch.tensor(expected["losses"]), rtol=1e-4, atol=1e-7)
    flat = torch.cat([p.detach().flatten() for p in single.generator.params + single.fake.params])
    torch.testing.assert_close(torch.tensor(second["params"]), flat, rtol=1e-3, atol=1e-5)
