"""Whole-frame fidelity: SSIM values, and measures that cannot be compared say why."""

import numpy as np
import pytest
import torch

from compress.evaluate.fidelity import clip_fidelity, frame_ssim, pool
from compress.utils.psnr import PSNR_CAP


def test_ssim_values():
    teacher = np.full((2, 8, 8, 3), 100, np.uint8)
    assert frame_ssim(teacher, teacher) == 1.0
    rng = np.random.default_rng(0)
    noise, other = (rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8) for _ in range(2))
    assert frame_ssim(noise, other) < 0.2 < frame_ssim(noise, np.clip(noise.astype(int) + 3, 0, 255).astype(np.uint8))


def test_uncomparable_measures_are_named_not_guessed():
    teacher = {"frames": np.zeros((4, 8, 8, 3), np.uint8), "latents": torch.ones(1, 16, 1, 1, 1)}
    small = clip_fidelity({"frames": np.zeros((4, 4, 4, 3), np.uint8), "latents": None}, teacher)
    assert small["status"] == "frames not comparable: [4, 4, 4, 3] vs the teacher's [4, 8, 8, 3]"
    assert "frame_psnr" not in small and small["latent_note"].startswith("no latents")
    same = clip_fidelity({"frames": teacher["frames"], "latents": 2 * teacher["latents"]}, teacher)
    assert same["latent_rel_error"] == pytest.approx(1.0) and same["frame_psnr"] == PSNR_CAP
    pooled = pool([same, small])
    assert pooled["clips"] == 2 and pooled["frame_psnr"] == PSNR_CAP and len(pooled["notes"]) == 2
