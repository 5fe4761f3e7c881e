"""Distillation losses, chosen by weight in the recipe: latent MSE, pixel L1 / MSE, a mouth-region weighting and
an expert lip-sync loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from compress.distill.config import LossConfig
from compress.face.crops import crop_pixels
from compress.face.mfcc import WINDOW


def region_weights(boxes: torch.Tensor, height: int, width: int, extra: float) -> torch.Tensor:
    """[B, 1, height, width] weights: 1 + extra inside each example's box (x0, y0, x1, y1 fractions)."""
    ys = (torch.arange(height, device=boxes.device) + 0.5) / height
    xs = (torch.arange(width, device=boxes.device) + 0.5) / width
    x0, y0, x1, y1 = (boxes[:, i, None, None] for i in range(4))
    inside = (ys[None, :, None] >= y0) & (ys[None, :, None] <= y1) & (xs[None, None] >= x0) & (xs[None, None] <= x1)
    return (1 + extra * inside.float())[:, None]


def weighted_error(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None, kind: str) -> torch.Tensor:
    """Mean squared ("mse") or absolute ("l1") error over [B, C, H, W], weighted per pixel when given weights."""
    err = (pred.float() - target.float()) ** 2 if kind == "mse" else (pred.float() - target.float()).abs()
    if weights is None:
        return err.mean()
    weights = weights.expand_as(err)
    return (err * weights).sum() / weights.sum()


def combined_loss(config: LossConfig, pairs: dict[str, tuple[torch.Tensor, torch.Tensor]],
                  boxes: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, float]]:
    """Sum of the active terms; `pairs` maps "latent" and "pixel" to (prediction, target) [B, C, H, W]."""
    total, logs = torch.zeros((), device=next(iter(pairs.values()))[0].device), {}
    for name, weight in config.active().items():
        space, kind = name.split("_")
        pred, target = pairs[space]
        weights = None
        if config.mouth_weight and boxes is not None:
            weights = region_weights(boxes, *pred.shape[-2:], config.mouth_weight)
        term = weighted_error(pred, target, weights, kind)
        total = total + weight * term
        logs[name] = float(term.detach())
    return total, logs


def expert_sync_loss(expert, pixels: torch.Tensor, boxes: torch.Tensor, mfcc: torch.Tensor) -> torch.Tensor:
    """Wav2Lip's expert sync loss of windows of `WINDOW` consecutive frames: the BCE, target 1, of the cosine
    similarity of the expert's video and audio embeddings mapped to [0, 1], i.e. -log((1 + cos) / 2).

    pixels [N * WINDOW, 3, H, W] in [-1, 1]: the windows' frames in order; boxes int [N * WINDOW, 4]: each frame's
    mouth crop (x0, y0, x1, y1); mfcc [N, 1, 13, 20]: each window's audio input. Differentiable w.r.t. pixels."""
    crops = crop_pixels((pixels.float() + 1) * 127.5, boxes, expert.crop_size).unflatten(0, (-1, WINDOW))
    cos = F.cosine_similarity(expert.embed_video(crops).float(), expert.embed_audio(mfcc).float(), dim=-1)
    return -torch.log(((1 + cos) / 2).clamp_min(1e-6)).mean()
