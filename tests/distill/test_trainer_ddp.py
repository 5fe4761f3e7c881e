"""torchrun with 2 gloo processes: DDP training matches one process at twice the batch, and resumes exactly."""

import json
from pathlib import Path

import pytest
import torch

from compress.distill.trainer import TrainConfig, train
from tests.distill.toy import ToyTask
from tests.helpers import torch_threads, torchrun

CONFIG = dict(steps=10, batch_size=4, lr=3e-2, checkpoint_every=3, grad_accum=2)
SCRIPT = """
import json, sys, torch
import torch.distributed as dist
from compress.distill.trainer import TrainConfig, train
from compress.distributed import init_from_env
from tests.distill.toy import ToyTask

init_from_env()  # joins gloo, and leaves it cleanly at exit
task = ToyTask(batch_size=4, dropout=0.0)
result = train(task, TrainConfig(**json.loads(sys.argv[2])), sys.argv[1], stop_after=int(sys.argv[3]))
flat = torch.cat([p.detach().flatten() for p in task.model.parameters()])
gathered = [torch.zeros_like(flat) for _ in range(2)]
dist.all_gather(gathered, flat)
if dist.get_rank() == 0:
    print(json.dumps({"losses": result["losses"], "resumed_from": result["resumed_from"],
                      "world_size": result["world_size"], "params": flat.tolist(),
                      "ranks_equal": bool(torch.equal(gathered[0], gathered[1]))}))
"""


def run_ddp(checkpoints: Path, stop_after: int) -> dict:
    done = torchrun(SCRIPT, checkpoints.parent, str(checkpoints), json.dumps(CONFIG), str(stop_after))
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_two_gloo_processes_train_like_one_with_twice_the_batch_and_resume(tmp_path):
    first = run_ddp(tmp_path / "ckpt", stop_after=7)  # "killed" after step 7 (last checkpoint: 6)
    second = run_ddp(tmp_path / "ckpt", stop_after=10)
    assert first["world_size"] == 2 and first["ranks_equal"] and second["ranks_equal"]
    assert second["resumed_from"] == 6 and second["losses"][:7] == first["losses"][:7]

    with torch_threads(1):
        single = ToyTask(batch_size=8, dropout=0.0)
        expected = train(single, TrainConfig(**{**CONFIG, "batch_size": 8}), tmp_path / "single")
    torch.testing.assert_close(torch.tensor(second["losses"]), torch.tensor(expected["losses"]), rtol=1e-5, atol=1e-6)
    flat = torch.cat([p.detach().flatten() for p in single.model.parameters()])
    torch.testing.assert_close(torch.tensor(second["params"]), flat, rtol=1e-4, atol=1e-5)
