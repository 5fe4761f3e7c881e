"""Run a Python script under torchrun with two gloo ranks, as a user would launch a recipe."""

import os
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def torchrun(script: str, cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`script` run by two gloo ranks in `cwd` with `args` as its argv; on timeout the launcher and its workers are
    killed, and TimeoutExpired raised."""
    (cwd / "run.py").write_text(script)
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "run.py", *args]
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
