"""The training loop every distillation shares: AdamW, warmup + cosine schedule (diffusers), gradient accumulation,
bf16 autocast, gradient clipping, optional EMA (diffusers EMAModel), DDP under torchrun, atomic checkpoints and
exact resume.

A task is any object with
    model                                  the nn.Module to train (wrapped in DDP when world_size > 1)
    batches(rank, world_size, seed)        an endless, deterministic iterator of micro-batches for this rank;
                                           it must not draw from the global RNGs (resume fast-forwards it)
    loss(model, batch) -> (loss, logs)     a scalar tensor and floats to log; `model` may be the DDP wrapper
    parameters_to_train()                  optional; default: the model's parameters that require grad

    metrics = train(task, TrainConfig(steps=200), "runs/x/.checkpoints/distill", ctx)

Checkpoints (`step-00000050.pt`, torch.save written to a temporary name and renamed) hold the trained
parameters and buffers, optimizer, scheduler, EMA, every rank's RNG states and the loss history (total and per
term). `train` resumes from the latest one in `checkpoint_dir`: a run killed after a checkpoint and started again
reproduces the uninterrupted run's losses exactly (same machine, same thread count).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import re
import sys
import time
from pathlib import Path
from typing import Iterator, Protocol

import numpy as np
import torch
import torch.distributed as dist
from diffusers.optimization import get_cosine_schedule_with_warmup
from torch import nn

from compress.distill.config import TrainConfig
from compress.errors import CheckpointError
from compress.utils.console import Console

_CHECKPOINT = re.compile(r"^step-(\d{8})\.pt$")


class TrainTask(Protocol):
    model: nn.Module

    def batches(self, rank: int, world_size: int, seed: int) -> Iterator: ...

    def loss(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, float]]: ...


def _ema(params: list[nn.Parameter], decay: float):
    """diffusers' EMAModel of `params`. Imported only when an EMA is kept: diffusers.training_utils also imports
    DiffusionPipeline, transformers and torchao (seconds, and torchao's warnings on machines without its kernels)."""
    from diffusers.training_utils import EMAModel

    return EMAModel(params, decay=decay, foreach=True)


def rng_state() -> dict:
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": (torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:])}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    keys, *rest = state["numpy"]
    np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), *rest))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def latest_checkpoint(directory: str | Path) -> Path | None:
    found = [p for p in Path(directory).glob("step-*.pt") if _CHECKPOINT.match(p.name)]
    return max(found, key=lambda p: int(_CHECKPOINT.match(p.name).group(1))) if found else None


def atomic_save(state: dict, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_checkpoint(directory: Path, step: int, state: dict, keep: int) -> None:
    """`state` as `directory/step-<step>.pt` (atomically); only the `keep` most recent checkpoints stay."""
    directory.mkdir(parents=True, exist_ok=True)
    atomic_save(state, directory / f"step-{step:08d}.pt")
    for old in sorted(directory.glob("step-*.pt"))[:-keep]:
        old.unlink()


def read_checkpoint(path: Path, world_size: int) -> dict:
    """A checkpoint written by `world_size` processes (its "rng" list holds one state per rank)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path}: unreadable training checkpoint ({err}); delete it to start over") from err
    if len(state["rng"]) != world_size:
        raise CheckpointError(f"{path} was written by {len(state['rng'])} processes, this run has {world_size}")
    return state


class _Run:
    """One call of `train`: the model, optimizer, schedule and history, and their checkpoints."""

    def __init__(self, task, config: TrainConfig, checkpoint_dir: Path):
        self.task, self.config, self.dir = task, config, checkpoint_dir
        self.rank, self.world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
        if config.sharding != "ddp":
            raise ValueError(f"train: sharding {config.sharding!r} is DMD's (method: dmd); this loop runs DDP")
        model = task.model
        params = list(task.parameters_to_train()) if hasattr(task, "parameters_to_train") else [
            p for p in model.parameters() if p.requires_grad]
        ids = {id(p) for p in params}
        self.named = {n: p for n, p in model.named_parameters() if id(p) in ids}
        if not self.named:
            raise ValueError("train: the task has no parameters to train")
        self.params = list(self.named.values())
        self.wrapped = model
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.wrapped = DistributedDataParallel(model)
        self.optimizer = torch.optim.AdamW(self.params, lr=config.lr, weight_decay=config.weight_decay)
        self.scheduler = get_cosine_schedule_with_warmup(self.optimizer, config.warmup_steps, config.steps)
        self.ema = _ema(self.params, config.ema_decay) if config.ema_decay else None
        self.step, self.losses, self.terms = 0, [], {}

    def record(self, loss: float, logs: dict[str, float]) -> None:
        """Append one step's loss and its terms (the task's logs) to the history."""
        self.losses.append(loss)
        for name, value in logs.items():
            self.terms.setdefault(name, []).append(value)

    def state(self) -> dict:
        model = self.task.model
        return {"step": self.step, "losses": list(self.losses), "terms": {k: list(v) for k, v in self.terms.items()},
                "model": {**{n: p.detach() for n, p in self.named.items()}, **dict(model.named_buffers())},
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "ema": self.ema.state_dict() if self.ema else None, "rng": gather(rng_state())}

    def save(self) -> None:
        state = self.state()  # every rank takes part in gathering the RNG states
        if self.rank == 0:
            write_checkpoint(self.dir, self.step, state, self.config.keep_checkpoints)
        if dist.is_initialized():
            dist.barrier()

    def resume(self, path: Path) -> None:
        state = read_checkpoint(path, self.world)
        try:
            unexpected = self.task.model.load_state_dict(state["model"], strict=False).unexpected_keys
        except RuntimeError as err:  # mis-shaped tensors
            raise CheckpointError(f"{path} does not match the model being trained: {err}") from None
        absent = sorted(set(self.named) - set(state["model"]))
        if unexpected or absent:
            raise CheckpointError(f"{path} does not match the model being trained (unexpected keys "
                                  f"{unexpected[:5]}, missing keys {absent[:5]}); delete it to start over")
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.ema:
            if not isinstance(state["ema"], dict) or "shadow_params" not in state["ema"]:
                raise CheckpointError(f"{path} has no EMA state, but ema_decay is set; delete it to start over")
            self.ema.load_state_dict(state["ema"])
            self.ema.to(device=self.params[0].device)
        self.step, self.losses = state["step"], list(state["losses"])
        self.terms = {k: list(v) for k, v in state.get("terms", {}).items()}
        set_rng_state(state["rng"][self.rank])


def seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


def gather(obj) -> list:
    if not dist.is_initialized():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def autocast(mode: str, device: torch.device):
    use = mode == "bf16" or (mode == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported())
    return torch.autocast(device.type, dtype=torch.bfloat16) if use else contextlib.nullcontext()


def mean_across_ranks(values: torch.Tensor) -> torch.Tensor:
    """Mean over ranks, on the device the process group's backend needs (NCCL reduces CUDA tensors only)."""
    if dist.is_initialized():
        on = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else values.device
        reduced = values.to(on, copy=True)
        dist.all_reduce(reduced)
        values = (reduced / dist.get_world_size()).to(values.device)
    return values


def _batch_size(batch) -> int:
    if isinstance(batch, dict):
        batch = next((v for v in batch.values() if isinstance(v, torch.Tensor)), None)
    return batch.shape[0] if isinstance(batch, torch.Tensor) and batch.dim() else 1


def train(task, config: TrainConfig, checkpoint_dir: str | Path, ctx=None, stop_after: int | None = None,
          log_prefix: str = "train") -> dict:
    """Train `task.model` in place for `config.steps` optimizer steps, resuming from `checkpoint_dir`.

    stop_after: return after that many steps in total, as a run killed there would (checkpoints included).
    Returns steps, the loss history and that of each term the task logs ("terms"; means over ranks), the step it
    resumed from, wall time and throughput.
    With `ema_decay`, the model holds the EMA weights on return."""
    run = _Run(task, config, Path(checkpoint_dir))
    device = run.params[0].device
    seed_all(config.seed + run.rank)
    latest = latest_checkpoint(run.dir)
    if latest is not None:
        run.resume(latest)  # restores the RNG states of the run it continues
    resumed_from = run.step
    batches = itertools.islice(task.batches(run.rank, run.world, config.seed), run.step * config.grad_accum, None)
    last = min(config.steps, stop_after or config.steps)
    samples, start = 0, time.perf_counter()
    task.model.train()
    console = getattr(ctx, "console", None) if run.rank == 0 else None
    with (console or Console(quiet=True)).progress("training", config.steps, run.step, unit="step") as progress:
        while run.step < last:
            loss, logs, grad_norm, n = _optimizer_step(run, batches, device)
            run.step += 1
            run.record(loss, logs)
            samples += n * run.world
            rate = samples / (time.perf_counter() - start)
            progress.advance(note=f"loss {loss:.4g}, {rate:.1f} samples/s")
            if run.step % config.checkpoint_every == 0 or run.step == config.steps:
                run.save()
            if run.step % config.log_every == 0 or run.step == last:
                log_step(ctx if run.rank == 0 else None, log_prefix, f"{run.step}/{config.steps}", loss, logs,
                         run.scheduler.get_last_lr()[0], rate, grad_norm)
    if run.ema:
        run.ema.copy_to(run.params)
    wall = time.perf_counter() - start
    return {"steps": run.step, "resumed_from": resumed_from, "final_loss": run.losses[-1] if run.losses else None,
            "losses": run.losses, "terms": run.terms, "wall_s": round(wall, 3),
            "samples_per_s": round(samples / wall, 3) if wall else None, "world_size": run.world}


def _optimizer_step(run: _Run, batches, device) -> tuple[float, dict, float | None, int]:
    """One optimizer step over grad_accum micro-batches: (mean loss over ranks, logs, grad norm, examples)."""
    config, ddp = run.config, run.world > 1
    run.optimizer.zero_grad(set_to_none=True)
    total, logs, count = torch.zeros(()), {}, 0
    for micro in range(config.grad_accum):
        batch = next(batches)
        count += _batch_size(batch)
        sync = contextlib.nullcontext() if not ddp or micro == config.grad_accum - 1 else run.wrapped.no_sync()
        with sync:
            with autocast(config.autocast, device):
                loss, parts = run.task.loss(run.wrapped, batch)
            (loss / config.grad_accum).backward()
        total += loss.detach().float().cpu() / config.grad_accum
        for k, v in parts.items():
            logs[k] = logs.get(k, 0.0) + float(v) / config.grad_accum
    grad_norm = None
    if config.clip_grad:
        grad_norm = float(torch.nn.utils.clip_grad_norm_(run.params, config.clip_grad))
    run.optimizer.step()
    run.scheduler.step()
    if run.ema:
        run.ema.step(run.params)
    means = mean_across_ranks(torch.tensor([float(total), *logs.values()], dtype=torch.float64)).tolist()
    return means[0], dict(zip(logs, means[1:])), grad_norm, count


def log_step(ctx, prefix: str, step: str, loss: float, logs: dict, lr: float, rate: float,
             grad_norm: float | None = None) -> None:
    """One training step's point in wandb (when the runner's tracker holds a run) and line in `ctx`'s log."""
    wandb = sys.modules.get("wandb")  # the runner's tracker owns the (offline by default) wandb run
    if wandb is not None and getattr(wandb, "run", None) is not None:
        point = {"loss": loss, "lr": lr, "samples_per_s": rate, **logs}
        if grad_norm is not None:
            point["grad_norm"] = grad_norm
        wandb.run.log({f"{prefix}/{k}": v for k, v in point.items()})
    if ctx is not None:
        extra = " ".join(f"{k} {v:.4g}" for k, v in logs.items())
        ctx.log(f"  step {step} loss {loss:.4g} {extra} lr {lr:.3g} {rate:.1f} samples/s")
