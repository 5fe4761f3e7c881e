"""PSNR of 0..255 pixels: the frame-fidelity figure of evaluation (`compress.evaluate.fidelity`, tier A's mouth
crops) and of the demo teacher's model card."""

from __future__ import annotations

import math

import numpy as np

#: PSNR of identical frames (infinite) is reported as this many dB
PSNR_CAP = 100.0


def psnr_of_mse(mse: float) -> float:
    """PSNR (dB) of a mean squared error of 0..255 pixels, capped at PSNR_CAP (reached by identical ones)."""
    return PSNR_CAP if mse <= 0 else min(PSNR_CAP, 10 * math.log10(255.0**2 / mse))


def frame_psnr(student: np.ndarray, teacher: np.ndarray) -> float:
    """PSNR (dB) of the mean squared error over all frames (uint8 [T, H, W, 3])."""
    return psnr_of_mse(float(np.mean((student.astype(np.float64) - teacher.astype(np.float64)) ** 2)))
