"""Whole-frame fidelity to the teacher: PSNR and SSIM of the frames, relative error of the final latents."""

from __future__ import annotations

import math

import numpy as np
import torch
from skimage.metrics import structural_similarity

from compress.quant import relative_error
from compress.utils.psnr import frame_psnr


def frame_ssim(student: np.ndarray, teacher: np.ndarray) -> float:
    """Mean per-frame SSIM (7x7 uniform window, smaller for tiny frames), colour channels averaged."""
    side = min(student.shape[1:3])
    win = min(7, side if side % 2 else side - 1)
    return float(np.mean([structural_similarity(s, t, data_range=255, channel_axis=-1, win_size=win)
                          for s, t in zip(student, teacher)]))


def clip_fidelity(student: dict, teacher: dict) -> dict:
    """Fidelity of one clip; a measure whose shapes differ is "not computed" with the shapes named."""
    out = {"status": "ok"}
    s, t = student["frames"], teacher["frames"]
    if s.shape == t.shape:
        out.update(frame_psnr=frame_psnr(s, t), frame_ssim=frame_ssim(s, t))
    else:
        out["status"] = f"frames not comparable: {list(s.shape)} vs the teacher's {list(t.shape)}"
    latents = student.get("latents")
    if isinstance(latents, torch.Tensor) and latents.shape == teacher["latents"].shape:
        out["latent_rel_error"] = relative_error(latents, teacher["latents"])
    elif latents is None:
        out["latent_note"] = "no latents (this model does not produce the teacher's latents)"
    else:
        out["latent_note"] = f"latents {list(latents.shape)} vs the teacher's {list(teacher['latents'].shape)}"
    return out


def pool(clips: list[dict]) -> dict:
    """Mean of every numeric field over clips (over those that have it), with the count."""
    keys = sorted({k for c in clips for k, v in c.items() if _number(v)})
    pooled = {k: float(np.mean([c[k] for c in clips if _number(c.get(k))])) for k in keys}
    notes = sorted({c[k] for c in clips for k in ("status", "latent_note") if c.get(k, "ok") != "ok"})
    return {**pooled, "clips": len(clips), **({"notes": notes} if notes else {})}


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
