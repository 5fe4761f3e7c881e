"""The cheapest changes that make a plan fit, each with its predicted peak (analytic, to stay fast).

Cost ranks: 1-2 move parts off the GPU (same output, a slower start), 3-4 quantize (a small quality risk),
5-6 change the workload (shorter clips, lower resolution), 7-8 stream DiT blocks from CPU (much slower),
9 more GPUs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from .workload import Layout

MAX_GPUS = 8
_SCALES = [s / 100 for s in range(95, 24, -5)]  # linear size factors tried for a smaller size


@dataclass
class Suggestion:
    change: str
    cost: int  # rank: lower is cheaper in quality, speed and hardware
    peak_bytes: int
    fits: bool
    margin_bytes: int
    source: str = "analytic"

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _smaller(workload, scale):
    width, height = (max(64, round(side * scale / 16) * 16) for side in (workload.width, workload.height))
    return replace(workload, width=width, height=height)


def _first_fit(candidates: list) -> tuple:
    """(value, plan) of the first (value, plan thunk) candidate whose plan fits, else of the last one."""
    for value, make in candidates:
        result = make()
        if result.fits:
            break
    return value, result


class _Found:
    """Suggestions collected as they are planned: `plan(**changes)` plans one candidate; `search` keeps the first
    of its candidates ([(value, changes)]) that fits, else the last one tried."""

    def __init__(self, plan: Callable):
        self.plan, self.items = plan, []

    def add(self, cost: int, change: str, result) -> None:
        self.items.append(Suggestion(change, cost, result.peak_bytes, result.fits, result.margin_bytes))

    def search(self, cost: int, describe: Callable, candidates: list) -> None:
        if candidates:
            value, result = _first_fit([(value, lambda c=changes: self.plan(**c)) for value, changes in candidates])
            self.add(cost, describe(value), result)

    def by_cost(self) -> list[Suggestion]:
        return sorted(self.items, key=lambda s: s.cost)


def suggestions(spec, target, workload, layout, plan_candidate: Callable) -> list[Suggestion]:
    """Candidate changes in order of cost (quality first, then speed, then hardware), fitting or not; searches
    (frames, size, GPUs) report the first value that fits, else the last one tried.
    `plan_candidate(spec, workload, layout)` plans one candidate on `target` (a MemoryPlan)."""
    def plan(spec_=spec, workload_=workload, layout_=layout):
        return plan_candidate(spec_, workload_, layout_)

    found = _Found(plan)
    add, search = found.add, found.search

    one_gpu = layout.kind in ("single", "offload")
    text_off = replace(layout, placement={**layout.placement, "text_encoder": "cpu"})
    offload = Layout.parse("offload") if layout.kind == "single" else text_off
    if layout.placement["text_encoder"] != "cpu":
        add(1, "offload the text encoder to CPU", plan(layout_=text_off))
    if layout.kind == "single":
        add(2, "layout offload: text and audio encoders on CPU, VAE loaded to decode, DiT off the GPU meanwhile",
            plan(layout_=offload))
    if spec.quant is None:
        # weight-only: the smallest activation overhead with our kernels, and runs on any GPU
        scheme = "fp8_weight_only" if target.fp8 else "int8_weight_only"
        quantized = spec.quantized(scheme)
        add(3, f"quantize the DiT ({scheme})", plan(spec_=quantized))
        if offload.placement != layout.placement:
            how = "layout offload" if layout.kind == "single" else "the text encoder on CPU"
            add(4, f"quantize the DiT ({scheme}) and {how}", plan(quantized, layout_=offload))
    search(5, lambda n: f"fewer frames per clip: {n}",
           [(n, {"workload_": replace(workload, frames=n)}) for n in range(workload.frames - 4, 3, -4)])
    search(6, lambda w: f"smaller size: {w.size}",
           [(w, {"workload_": w}) for w in dict.fromkeys(_smaller(workload, s) for s in _SCALES) if w != workload])
    if one_gpu:
        add(7, "layout block-offload: DiT blocks streamed from CPU (slow)", plan(layout_=Layout.parse("block-offload")))
        if spec.quant is None:
            add(8, f"quantize the DiT ({scheme}) and layout block-offload",
                plan(quantized, layout_=Layout.parse("block-offload")))
    if one_gpu or layout.kind == "fsdp":
        search(9, lambda n: f"more GPUs: fsdp:{n} with sequence parallelism",
               [(n, {"layout_": Layout("fsdp", n, dict(layout.placement), sequence_parallel=True)})
                for n in range(max(2, layout.gpus + 1), MAX_GPUS + 1)])
    return found.by_cost()


def training_suggestions(setup, workload, generator, plan_candidate: Callable) -> list[Suggestion]:
    """Changes that make a DMD training plan fit, cheapest first: the same training with less memory
    (checkpointing, sharding, the teacher's base for the generator), then a smaller LoRA, a shorter or smaller
    clip, more GPUs; searches report the first value that fits, else the last one tried.
    `plan_candidate(setup, workload, generator)` plans one candidate (a TrainingPlan)."""
    def plan(setup_=setup, workload_=workload, generator_=generator):
        return plan_candidate(setup_, workload_, generator_)

    found = _Found(plan)
    add, search = found.add, found.search

    if not setup.checkpointing:
        add(1, "activation checkpointing on (each DiT block recomputed in the backward)",
            plan(replace(setup, checkpointing=True)))
    if setup.sharding != "fsdp" and setup.gpus > 1:
        add(2, f"shard the bases, adapters and optimizer state: fsdp over {setup.gpus} GPUs",
            plan(replace(setup, sharding="fsdp")))
    if generator is not None:
        add(3, "generator on the teacher's base (one shared base)", plan(generator_=None))
    search(4, lambda r: f"LoRA rank {r}",
           [(r, {"setup_": replace(setup, lora_rank=r)}) for r in (64, 32, 16) if r < setup.lora_rank])
    search(5, lambda n: f"fewer frames per clip: {n}",
           [(n, {"workload_": replace(workload, frames=n)}) for n in range(workload.frames - 4, 3, -4)])
    search(6, lambda w: f"smaller size: {w.size}",
           [(w, {"workload_": w}) for w in dict.fromkeys(_smaller(workload, s) for s in _SCALES) if w != workload])
    search(9, lambda n: f"more GPUs: {n} x, fsdp",
           [(n, {"setup_": replace(setup, gpus=n, sharding="fsdp")}) for n in range(setup.gpus + 1, MAX_GPUS + 1)])
    return found.by_cost()
