"""Calibration inputs: `count` batches spread evenly over a reference artifact's data, or random ones without it.

One sampler for every consumer: the DiT's forward inputs (quantize, prune, LoRA validation) are noised clips of the
reference (`dit_calibration_inputs`); a model exported with static shapes gets, per input, values from a pool its
exporter derives from the reference rows, and random values with the example input's statistics for the inputs
no pool fits (`shaped_calibration`).
"""

from __future__ import annotations

from typing import Sequence, TypeVar

import torch

from compress.pipelines.components import NUM_TRAIN_TIMESTEPS
from compress.reference.samples import latent_clips, noised_dit_inputs

T = TypeVar("T")


def spread(items: Sequence[T], count: int) -> list[T]:
    """`count` of `items` at an even stride over them (every one in turn, cycling, when there are few)."""
    stride = max(1, len(items) // count)
    return [items[(i * stride) % len(items)] for i in range(count)]


def dit_calibration_inputs(reference, count: int, seed: int = 0, device=None) -> list[dict]:
    """`count` DiT inputs from the clips of a `ReferenceArtifact`, at noise levels spread over (0, 1)."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for i, (row, clip) in enumerate(spread(latent_clips(reference.rows), count)):
        inputs, _ = noised_dit_inputs(row, clip, (i + 0.5) / count, generator)
        batches.append(_to(inputs, device))
    return batches


def random_dit_inputs(model, count: int, seed: int = 0, device=None) -> list[dict]:
    """`count` random forward inputs of an S2V DiT (seeds seed, seed + 1, ...) at evenly spaced timesteps."""
    inputs = []
    for i in range(count):
        x = model.example_inputs(seed=seed + i, device=device)
        x["timestep"] = torch.full_like(x["timestep"], NUM_TRAIN_TIMESTEPS * (i + 0.5) / count)
        inputs.append(x)
    return inputs


def shaped_calibration(example: dict, pools: dict[str, torch.Tensor], count: int, seed: int = 0) -> list[dict]:
    """`count` batches shaped like `example` (batch 1): an input with a pool [N, ...] takes values spread over
    it; any other tensor random values with the example's mean and std; non-tensors stay as they are."""
    generator = torch.Generator().manual_seed(seed)
    picks = {name: spread(pool, count) for name, pool in pools.items()}
    return [{name: picks[name][i][None].to(value.dtype) if name in picks else _like(value, generator)
             for name, value in example.items()} for i in range(count)]


def _like(value, generator: torch.Generator):
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        return value
    noise = torch.randn(value.shape, generator=generator)
    return (noise * value.float().std() + value.float().mean()).to(value.dtype)


def _to(inputs: dict, device) -> dict:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
