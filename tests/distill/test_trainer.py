"""The shared training loop: learning, exact resume (simulated and real kill), EMA, schedule, bad checkpoints."""

import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from compress.distill.trainer import TrainConfig, latest_checkpoint, train
from compress.errors import CheckpointError
from tests.distill.toy import ToyTask

REPO = Path(__file__).resolve().parents[2]
CONFIG = dict(steps=20, batch_size=8, lr=3e-2, checkpoint_every=5, log_every=5)
KILL_SCRIPT = """
import json, sys, time, torch
torch.set_num_threads(1)
from compress.distill.trainer import TrainConfig, train
from tests.distill.toy import ToyTask

class Slow(ToyTask):
    def loss(self, model, batch):
        time.sleep(float(sys.argv[2]))
        return super().loss(model, batch)

train(Slow(), TrainConfig(steps=30, lr=1e-2, checkpoint_every=5), sys.argv[1])
"""


def params(model):
    return [p.detach().clone() for p in model.parameters()]


def test_loss_goes_down(tmp_path):
    result = train(ToyTask(dropout=0.0), TrainConfig(**{**CONFIG, "steps": 60}), tmp_path)
    assert result["steps"] == 60 and result["resumed_from"] == 0 and len(result["losses"]) == 60
    assert sum(result["losses"][-5:]) < 0.3 * sum(result["losses"][:5])
    assert result["samples_per_s"] > 0


def test_resume_after_simulated_kill_continues_the_same_loss_curve(tmp_path):
    full_task = ToyTask()
    full = train(full_task, TrainConfig(**CONFIG), tmp_path / "full")
    stopped = train(ToyTask(), TrainConfig(**CONFIG), tmp_path / "killed", stop_after=12)
    assert stopped["steps"] == 12 and latest_checkpoint(tmp_path / "killed").name == "step-00000010.pt"
    resumed_task = ToyTask()  # a fresh process: new model, new RNG state
    torch.manual_seed(123)
    resumed = train(resumed_task, TrainConfig(**CONFIG), tmp_path / "killed")
    assert resumed["resumed_from"] == 10
    assert resumed["losses"] == full["losses"]  # exactly, dropout included
    for a, b in zip(params(resumed_task.model), params(full_task.model)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert len(list((tmp_path / "full").glob("step-*.pt"))) == 2  # keep_checkpoints


def test_resume_after_a_real_kill(tmp_path):
    """A subprocess killed (SIGKILL) mid-run, resumed here: the loss curve of an uninterrupted run (one thread
    everywhere, as CPU kernels may round differently with another thread count)."""
    script = tmp_path / "train.py"
    script.write_text(KILL_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "killed"), "0.05"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (tmp_path / "killed" / "step-00000015.pt").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "training ended before it could be killed"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert latest_checkpoint(tmp_path / "killed").name != "step-00000030.pt"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = TrainConfig(steps=30, lr=1e-2, checkpoint_every=5)
        reference = train(ToyTask(), config, tmp_path / "full")
        resumed = train(ToyTask(), config, tmp_path / "killed")
    finally:
        torch.set_num_threads(threads)
    assert resumed["resumed_from"] >= 15 and resumed["losses"] == reference["losses"]


def test_ema_weights_are_returned_and_resume_exactly(tmp_path):
    """EMA and LR schedule both resume mid-warmup (the EMA decay ramps up over its first steps too)."""
    config = TrainConfig(**{**CONFIG, "ema_decay": 0.9, "warmup_steps": 8})
    plain, ema_task = ToyTask(), ToyTask()
    train(plain, TrainConfig(**CONFIG), tmp_path / "plain")
    full = train(ema_task, config, tmp_path / "ema")
    assert not torch.allclose(params(plain.model)[0], params(ema_task.model)[0])
    train(ToyTask(), config, tmp_path / "ema-killed", stop_after=7)
    resumed_task = ToyTask()
    assert train(resumed_task, config, tmp_path / "ema-killed")["losses"] == full["losses"]
    for a, b in zip(params(resumed_task.model), params(ema_task.model)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_warmup_cosine_schedule(tmp_path):
    """Linear warmup from 0 over 4 steps, then cosine to 0 at step 20: the LR logged after each step is the next
    step's."""
    lines = []
    train(ToyTask(), TrainConfig(**{**CONFIG, "lr": 1e-3, "warmup_steps": 4, "log_every": 1}), tmp_path,
          SimpleNamespace(log=lines.append))
    lrs = [float(re.search(r" lr (\S+) ", line)[1]) for line in lines]
    assert len(lrs) == 20 and lrs[:4] == [2.5e-4, 5e-4, 7.5e-4, 1e-3]
    assert lrs[11] == pytest.approx(5e-4) and lrs[19] == 0


def test_grad_accum(tmp_path):
    task = ToyTask(dropout=0.0)
    seen = []
    original = task.loss
    task.loss = lambda model, batch: (seen.append(batch["x"][0, 0].item()), original(model, batch))[1]
    result = train(task, TrainConfig(**{**CONFIG, "steps": 3, "grad_accum": 4}), tmp_path)
    assert len(seen) == 12 and len(set(seen)) == 12 and result["steps"] == 3
    assert all(math.isfinite(v) for v in result["losses"])


def test_bad_checkpoints_are_named(tmp_path):
    train(ToyTask(), TrainConfig(**{**CONFIG, "steps": 5}), tmp_path)
    other = ToyTask(dim=8)
    with pytest.raises(CheckpointError, match="does not match the model being trained"):
        train(other, TrainConfig(**{**CONFIG, "steps": 10}), tmp_path)
    with pytest.raises(CheckpointError, match="has no EMA state, but ema_decay is set"):
        train(ToyTask(), TrainConfig(**{**CONFIG, "steps": 10, "ema_decay": 0.9}), tmp_path)
    (tmp_path / "step-00000009.pt").write_bytes(b"truncated")
    with pytest.raises(CheckpointError, match="step-00000009.pt: unreadable training checkpoint"):
        train(ToyTask(), TrainConfig(**{**CONFIG, "steps": 10}), tmp_path)
