"""Token spans for the lean forward: work on [start, end) ranges, residuals added in place without autograd."""

from __future__ import annotations

from collections.abc import Callable

import torch

DEFAULT_CHUNK_SIZE = 4096  # tokens per span of the lean forward


def spans(length: int, size: int | None) -> list[tuple[int, int]]:
    """[start, end) ranges of at most `size` (all of it when None) covering range(length)."""
    size = size or max(length, 1)
    return [(start, min(start + size, length)) for start in range(0, length, size)]


def local_split(split: int, start: int, h: torch.Tensor) -> int:
    """A segment boundary at token `split` of the sequence, relative to a span starting at `start`."""
    return min(max(split - start, 0), h.shape[1])


def fill(ranges: list[tuple[int, int]], fn: Callable) -> list[torch.Tensor]:
    """The tensors fn(start, end) returns for each range (ranges start at 0, in order), concatenated along
    dim 1 into one buffer each."""
    if len(ranges) == 1:
        return list(fn(*ranges[0]))
    out = []
    for start, end in ranges:
        parts = fn(start, end)
        out = out or [p.new_empty(p.shape[0], ranges[-1][1], *p.shape[2:]) for p in parts]
        for i in range(len(parts)):
            out[i][:, start:end] = parts[i]
        del parts  # before the next span's work
    return out


def add_residual(x: torch.Tensor, ranges: list[tuple[int, int]], fn: Callable) -> torch.Tensor:
    """x with fn(x[:, s:e], s, e) added to tokens [s, e) of each range (ranges start at 0, in order). Without
    autograd the sums go into x in place, one range at a time; fn of a later range sees earlier ones updated."""
    if not torch.is_grad_enabled():
        for start, end in ranges:
            h = x[:, start:end]
            h.add_(fn(h, start, end))
        return x
    end = ranges[-1][1]
    sums = [x[:, s:e] + fn(x[:, s:e], s, e) for s, e in ranges]
    return torch.cat([*sums, x[:, end:]], dim=1)
