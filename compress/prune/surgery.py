"""Structural surgery on the S2V DiT: drop blocks (remapping the audio injectors) or narrow FFNs and heads.

Each operation builds a new model of the smaller config (so `save_pretrained` / `from_pretrained` round-trip)
and fills it from the old weights; nothing is copied that need not be.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

InjectorMode = Literal["drop", "nearest"]

# parameters of a width unit whose rows (outputs) or columns (inputs) are its channels / head channels
_ROWS = ("net.0.proj.weight", "net.0.proj.bias", "norm_q.weight", "norm_k.weight",
         *(f"to_{p}.{w}" for p in "qkv" for w in ("weight", "bias")))
_COLS = ("net.2.weight", "to_out.0.weight")


def model_config(model: nn.Module) -> dict:
    """The constructor kwargs of a diffusers model (its config without the private keys)."""
    return {k: v for k, v in model.config.items() if not k.startswith("_")}


def count_parameters(cls: type, config: dict) -> int:
    """Parameters of cls(**config), counted on the meta device from a one-block shell (blocks are uniform, as
    are injectors), so even the 14B config is counted in milliseconds without allocating anything."""
    injectors = len(config["audio_inject_layers"])
    with torch.device("meta"):
        shell = cls(**{**config, "num_layers": 1, "audio_inject_layers": [0] if injectors else []})
    block = sum(p.numel() for p in shell.blocks[0].parameters())
    injector = sum(p.numel() for p in shell.audio_injectors[0].parameters()) if injectors else 0
    total = sum(p.numel() for p in shell.parameters())
    return total + (config["num_layers"] - 1) * block + max(injectors - 1, 0) * injector


def remap_injectors(inject_layers: list[int], dropped: list[int], num_layers: int,
                    mode: InjectorMode) -> list[int | None]:
    """For each injector (given by the block it follows), the surviving block it follows after dropping
    `dropped` (old numbering), or None if it goes. "nearest": an injector on a dropped block moves to the
    nearest surviving block without an injector (of two equally near, the earlier first: injecting after the
    preceding survivor is the same place in the residual stream); closer injectors choose first."""
    gone = set(dropped)
    kept = [i for i in range(num_layers) if i not in gone]
    result = [b if b not in gone else None for b in inject_layers]
    if mode == "nearest":
        taken = {b for b in result if b is not None}
        wanting = []
        for k, block in enumerate(inject_layers):
            if block in gone:
                distance = min(abs(s - block) for s in kept)
                wanting.append((distance, k, [s for s in (block - distance, block + distance) if s in kept]))
        for _, k, candidates in sorted(wanting):
            free = [s for s in candidates if s not in taken]
            if free:
                result[k] = free[0]
                taken.add(free[0])
    return result


def depth_config(config: dict, dropped: list[int], mode: InjectorMode) -> tuple[dict, list[int | None]]:
    """The config after dropping blocks, and the remap of each injector (see `remap_injectors`)."""
    kept = [i for i in range(config["num_layers"]) if i not in set(dropped)]
    targets = remap_injectors(list(config["audio_inject_layers"]), dropped, config["num_layers"], mode)
    inject = sorted(kept.index(t) for t in targets if t is not None)
    return {**config, "num_layers": len(kept), "audio_inject_layers": inject}, targets


def _rebuild(model: nn.Module, config: dict, tensor_for: Callable[[str, dict], torch.Tensor]) -> nn.Module:
    """A model of `config` whose every state-dict entry is tensor_for(name, old state dict)."""
    old = model.state_dict()
    with torch.device("meta"):
        new = type(model)(**config)
    new.load_state_dict({name: tensor_for(name, old) for name in new.state_dict()}, assign=True)
    return new.train(model.training)


def drop_blocks(model: nn.Module, dropped: list[int], injectors: InjectorMode = "drop") -> nn.Module:
    """The model without the given blocks; injector weights follow their (remapped) blocks."""
    config, targets = depth_config(model_config(model), dropped, injectors)
    kept_blocks = [i for i in range(model.config.num_layers) if i not in set(dropped)]
    kept_injectors = [k for k, _ in sorted(((k, t) for k, t in enumerate(targets) if t is not None),
                                           key=lambda kt: kt[1])]
    renumber = {"blocks": kept_blocks, "audio_injectors": kept_injectors}

    def tensor_for(name: str, old: dict) -> torch.Tensor:
        group, index, rest = (name.split(".", 2) + ["", ""])[:3]
        if group in renumber:
            return old[f"{group}.{renumber[group][int(index)]}.{rest}"]
        return old[name]

    return _rebuild(model, config, tensor_for)


def prune_width(model: nn.Module, keep: dict[str, torch.Tensor], config: dict) -> nn.Module:
    """The model of `config` keeping, per unit of `keep` ('blocks.i.ffn': FFN channels; 'blocks.i.attn1|attn2',
    'audio_injectors.k.attn': heads), the given indices (increasing); other parameters are shared."""
    head_dim = model.config.attention_head_dim
    channels = {name: idx if name.endswith("ffn") else (idx[:, None] * head_dim + torch.arange(head_dim)).flatten()
                for name, idx in keep.items()}

    def tensor_for(name: str, old: dict) -> torch.Tensor:
        tensor = old[name]
        for suffix, dim in [*((s, 0) for s in _ROWS), *((s, 1) for s in _COLS)]:
            index = channels.get(name.removesuffix("." + suffix)) if name.endswith("." + suffix) else None
            if index is not None:
                return tensor.index_select(dim, index.to(tensor.device))
        return tensor

    return _rebuild(model, config, tensor_for)
