"""Process-group helpers: a recipe started with torchrun runs on every rank; rank 0 owns the output directory."""

from __future__ import annotations

import atexit
import os
import sys
from datetime import timedelta

import torch
import torch.distributed as dist


def init_from_env() -> tuple[int, int]:
    """(rank, world size); joins the process group torchrun describes (gloo on CPU, nccl on GPU)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend, timeout=timedelta(minutes=30))
        atexit.register(leave)
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


LEAVE_TIMEOUT = timedelta(seconds=60)


def leave() -> None:
    """Every rank tears the process group down together, before the interpreter finalizes.

    Left to finalization, gloo's worker threads can abort a finished process with "terminate called without an
    active exception" (pytorch#190489), and so can a rank that destroys its group while a peer still runs. A rank
    dying of an uncaught exception skips the barrier; otherwise it waits LEAVE_TIMEOUT at most for its peers.
    """
    if not dist.is_initialized():
        return
    if dist.get_backend() == "gloo" and not hasattr(sys, "last_value"):
        try:
            dist.monitored_barrier(timeout=LEAVE_TIMEOUT)
        except RuntimeError:
            pass  # a peer is gone or failed; its own error is the one to report
    dist.destroy_process_group()


def broadcast(value, src: int = 0):
    """Rank `src`'s value on every rank (identity when not distributed)."""
    if not dist.is_initialized():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def all_ranks_succeeded(ok: bool) -> bool:
    """True on every rank if `ok` was true on every rank (every rank must call it)."""
    if not dist.is_initialized():
        return ok
    flag = torch.tensor([int(ok)])
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())
