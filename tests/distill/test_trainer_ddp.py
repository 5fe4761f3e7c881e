"""torchrun with 2 gloo processes: DDP training matches one process at twice the batch, and resumes exactly."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch

from compress.distill.trainer import TrainConfig, train
from tests.artifacts.test_distributed import free_port
from tests.distill.toy import ToyTask

REPO = Path(__file__).resolve().parents[2]
CONFIG = dict(steps=10, batch_size=4, lr=3e-2, checkpoint_every=3, grad_accum=2)
SCRIPT = """
import json, sys, torch
import torch.distributed as dist
from compress.distill.trainer import TrainConfig, train
from tests.distill.toy import ToyTask

dist.init_process_group("gloo")
task = ToyTask(batch_size=4, dropout=0.0)
result = train(task, TrainConfig(**json.loads(sys.argv[2])), sys.argv[1], stop_after=int(sys.argv[3]))
flat = torch.cat([p.detach().flatten() for p in task.model.parameters()])
gathered = [torch.zeros_like(flat) for _ in range(2)]
dist.all_gather(gathered, flat)
if dist.get_rank() == 0:
    print(json.dumps({"losses": result["losses"], "resumed_from": result["resumed_from"],
                      "world_size": result["world_size"], "params": flat.tolist(),
                      "ranks_equal": bool(torch.equal(gathered[0], gathered[1]))}))
dist.barrier()  # rank 1 would otherwise tear gloo down while rank 0 still prints; see GLOO_ABORT
dist.destroy_process_group()
"""


# torch 2.13's gloo sometimes aborts a rank at teardown ("terminate called without an active exception", SIGABRT)
# after all its work is done. Without the barrier before destroy_process_group it did so in 3 of 32 runs of SCRIPT
# on the 2-core CPU under load, and in both tries of one full `make test`; with it, in none of 32. The one retry,
# from the checkpoints as they were, stays as a safety net.
GLOO_ABORT = "terminate called without an active exception"


def torchrun(script: Path, checkpoints: Path, stop_after: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    before = checkpoints.with_name(checkpoints.name + "-before")
    if checkpoints.exists():
        shutil.copytree(checkpoints, before, dirs_exist_ok=True)
    for attempt in range(2):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               str(free_port()), str(script), str(checkpoints), json.dumps(CONFIG), str(stop_after)]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        if done.returncode == 0 or GLOO_ABORT not in done.stderr or attempt:
            break
        shutil.rmtree(checkpoints, ignore_errors=True)
        if before.exists():
            shutil.copytree(before, checkpoints)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_two_gloo_processes_train_like_one_with_twice_the_batch_and_resume(tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(SCRIPT)
    first = torchrun(script, tmp_path / "ckpt", stop_after=7)  # "killed" after step 7 (last checkpoint: 6)
    second = torchrun(script, tmp_path / "ckpt", stop_after=10)
    assert first["world_size"] == 2 and first["ranks_equal"] and second["ranks_equal"]
    assert second["resumed_from"] == 6 and second["losses"][:7] == first["losses"][:7]

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = ToyTask(batch_size=8, dropout=0.0)
        expected = train(single, TrainConfig(**{**CONFIG, "batch_size": 8}), tmp_path / "single")
    finally:
        torch.set_num_threads(threads)
    torch.testing.assert_close(torch.tensor(second["losses"]), torch.tensor(expected["losses"]), rtol=1e-5, atol=1e-6)
    flat = torch.cat([p.detach().flatten() for p in single.model.parameters()])
    torch.testing.assert_close(torch.tensor(second["params"]), flat, rtol=1e-4, atol=1e-5)
