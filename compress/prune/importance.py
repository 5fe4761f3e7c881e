"""Importance scores measured on calibration inputs, and the placeholder orders used without them.

Depth, two measures: "ablation" (default), the relative error of the model's output without the block against
the full model's, averaged over calibration inputs: what dropping that block alone costs, one forward per block
and input; "cosine" (ShortGPT / Minitron block influence), 1 - cos(block input, block output) per token, averaged
over tokens and inputs: one forward per input, a proxy that can rank blocks of similar influence the wrong way.
Width: mean |activation| per FFN channel; per attention head, the mean norm of that head's contribution
to the output projection (loss-free, one forward per input).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from compress.prune.surgery import InjectorMode, drop_blocks
from compress.quant.sensitivity import relative_error
from compress.utils.console import untracked

PLACEHOLDER_DEPTH = "placeholder (no calibration): blocks nearest 2/3 depth drop first, the later one on a tie"
#: depth measure -> (the plan's scores source, the importance plot's axis label)
DEPTH_MEASURES = {
    "ablation": ("calibration: relative output error without the block", "output error without it"),
    "cosine": ("calibration: 1 - cos(block input, block output)", "1 - cos(input, output)"),
}
PLACEHOLDER_WIDTH = "placeholder (no calibration): the first channels / heads are kept"


def _run_with_hooks(model: nn.Module, hooks: list, calibration: list[dict], track=untracked) -> None:
    """One forward per calibration input with the (register, hook) pairs installed; `track` wraps the loop
    (a progress bar: track(iterable, description, total))."""
    handles = [register(fn) for register, fn in hooks]
    try:
        with torch.no_grad():
            for inputs in track(calibration, "scoring importance", len(calibration)):
                model(**inputs)
    finally:
        for handle in handles:
            handle.remove()


def block_importance(model: nn.Module, calibration: list[dict], track=untracked) -> list[float]:
    """Per transformer block, 1 - cosine similarity of its input and output (audio injectors excluded). A block
    adds its residuals to its input in place, so the input is copied before the block runs."""
    inputs, sums = {}, [0.0] * len(model.blocks)

    def keep_input(i):
        def fn(_module, args):
            inputs[i] = args[0].detach().clone()
        return fn

    def score(i):
        def fn(_module, _args, output):
            x = inputs.pop(i)
            sums[i] += (1 - F.cosine_similarity(x.float(), output.float(), dim=-1)).mean().item()
        return fn

    hooks = [hook for i, b in enumerate(model.blocks)
             for hook in ((b.register_forward_pre_hook, keep_input(i)), (b.register_forward_hook, score(i)))]
    _run_with_hooks(model, hooks, calibration, track)
    return [s / len(calibration) for s in sums]


def block_ablation(model: nn.Module, calibration: list[dict], injectors: InjectorMode = "drop",
                   track=untracked) -> list[float]:
    """Per transformer block, the mean relative error of the model's output without that block (`drop_blocks`,
    its audio injector handled as `injectors` says) against the full model's."""
    blocks = range(len(model.blocks))
    with torch.no_grad():
        full = [model(**inputs).sample for inputs in calibration]
        scores = []
        for block in track(blocks, "scoring blocks by ablation", len(blocks)):
            pruned = drop_blocks(model, [block], injectors)
            errors = [relative_error(pruned(**inputs).sample, y) for inputs, y in zip(calibration, full)]
            scores.append(sum(errors) / len(errors))
    return scores


def width_modules(model: nn.Module, parts) -> dict[str, nn.Module]:
    """Prunable units by name: 'blocks.i.ffn' (channels), 'blocks.i.attn1|attn2' and 'audio_injectors.k.attn'
    (heads), for the given parts ('ffn', 'heads', 'audio_heads')."""
    found = {}
    for i, block in enumerate(model.blocks):
        if "ffn" in parts:
            found[f"blocks.{i}.ffn"] = block.ffn
        if "heads" in parts:
            found.update({f"blocks.{i}.attn1": block.attn1, f"blocks.{i}.attn2": block.attn2})
    if "audio_heads" in parts:
        found.update({f"audio_injectors.{k}.attn": inj.attn for k, inj in enumerate(model.audio_injectors)})
    return found


def width_importance(model: nn.Module, calibration: list[dict], parts, track=untracked) -> dict[str, torch.Tensor]:
    """Score per FFN channel or attention head of every unit of `width_modules(model, parts)`."""
    sums: dict[str, torch.Tensor] = {}

    def add(name, value):
        sums[name] = sums.get(name, 0) + value.double().cpu()

    def ffn_hook(name):
        def fn(_module, args):
            add(name, args[0].abs().float().flatten(0, -2).mean(0))
        return fn

    def head_hook(name, heads):
        def fn(linear, args):
            o = args[0].unflatten(-1, (heads, -1))
            w = linear.weight.unflatten(1, (heads, -1))
            add(name, torch.stack([(o[..., h, :] @ w[:, h].T).float().norm(dim=-1).mean() for h in range(heads)]))
        return fn

    hooks = []
    for name, module in width_modules(model, parts).items():
        if name.endswith("ffn"):
            hooks.append((module.net[2].register_forward_pre_hook, ffn_hook(name)))
        else:
            hooks.append((module.to_out[0].register_forward_pre_hook, head_hook(name, module.num_heads)))
    _run_with_hooks(model, hooks, calibration, track)
    return {name: (s / len(calibration)).float() for name, s in sums.items()}


def placeholder_block_scores(num_blocks: int) -> list[float]:
    """Distance from 2/3 depth: the middle-late blocks (least important in ShortGPT-style studies) go first."""
    centre = 2 * (num_blocks - 1) / 3
    return [abs(i - centre) for i in range(num_blocks)]


def placeholder_width_scores(model: nn.Module, parts) -> dict[str, torch.Tensor]:
    """Decreasing with the index, so that the first channels / heads are kept."""
    def size(name, module):
        return module.net[2].in_features if name.endswith("ffn") else module.num_heads

    return {name: -torch.arange(size(name, m), dtype=torch.float32) for name, m in width_modules(model, parts).items()}


def top_indices(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the k highest scores (the lower index on a tie), in increasing order."""
    return torch.sort(torch.sort(scores, descending=True, stable=True).indices[:k]).values
