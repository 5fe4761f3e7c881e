"""2:4 magnitude sparsity: in every group of 4 consecutive input weights of a Linear, keep the 2 largest |w|.

The weights stay dense (zeros in place), so the model loads anywhere and is no smaller and, with dense
kernels, no faster. The masks are stored apart, one bit per weight (uint8, 8 mask bits per byte, least
significant bit first), so fine-tuning can keep the pattern (`apply_masks` after each optimizer step).
"""

from __future__ import annotations

import json
import math
from fnmatch import fnmatchcase
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

MASKS_FILE = "sparsity/sparsity_masks.safetensors"  # in a folder: not counted as model weights by the manifest
_BITS = 1 << torch.arange(8, dtype=torch.uint8)


def sparse_layers(model: nn.Module, targets: list[str], ignore: list[str]) -> tuple[list[str], list[str]]:
    """(Linear modules to sparsify, those matched but skipped because in_features is not a multiple of 4)."""
    chosen, skipped = [], []
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and any(fnmatchcase(name, t) for t in targets) \
                and not any(fnmatchcase(name, i) for i in ignore):
            (chosen if module.in_features % 4 == 0 else skipped).append(name)
    return chosen, skipped


def mask_2_4(weight: torch.Tensor) -> torch.Tensor:
    """Boolean mask [out, in] with exactly 2 True in every group of 4 along the input dimension."""
    groups = weight.detach().abs().reshape(weight.shape[0], -1, 4)
    mask = torch.zeros(groups.shape, dtype=torch.bool, device=weight.device)
    return mask.scatter_(-1, groups.topk(2, dim=-1).indices, True).reshape(weight.shape)


def sparsify_2_4(model: nn.Module, layers: list[str]) -> dict[str, torch.Tensor]:
    """Zero the pruned weights of each named Linear in place; returns the masks by parameter name."""
    masks = {}
    with torch.no_grad():
        for name in layers:
            weight = model.get_submodule(name).weight
            masks[f"{name}.weight"] = mask = mask_2_4(weight)
            weight.mul_(mask)
    return masks


def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Re-zero the masked weights (e.g. after an optimizer step)."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, mask in masks.items():
            params[name].mul_(mask.to(params[name].device))


def pack_bits(mask: torch.Tensor) -> torch.Tensor:
    flat = mask.flatten().to(torch.uint8).cpu()
    return (F.pad(flat, (0, -flat.numel() % 8)).reshape(-1, 8) * _BITS).sum(-1, dtype=torch.uint8)


def unpack_bits(packed: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    bits = (packed.unsqueeze(-1) & _BITS) != 0
    return bits.flatten()[: math.prod(shape)].reshape(shape)


def save_masks(path: Path, masks: dict[str, torch.Tensor]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    shapes = {name: list(mask.shape) for name, mask in masks.items()}
    save_file({name: pack_bits(mask) for name, mask in masks.items()}, str(path),
              metadata={"pattern": "2:4", "bit_order": "lsb_first", "shapes": json.dumps(shapes)})


def load_masks(path: Path) -> dict[str, torch.Tensor]:
    """Boolean masks by parameter name, from a file written by `save_masks`."""
    with safe_open(str(path), framework="pt") as handle:
        shapes = json.loads(handle.metadata()["shapes"])
    return {name: unpack_bits(packed, tuple(shapes[name])) for name, packed in load_file(str(path)).items()}
