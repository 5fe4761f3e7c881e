"""PSNR of 0..255 pixels: over all frames, capped for identical ones."""

import math

import numpy as np
import pytest

from compress.utils.psnr import PSNR_CAP, frame_psnr, psnr_of_mse


def test_psnr_values():
    teacher = np.full((2, 8, 8, 3), 100, np.uint8)
    student = teacher.copy()
    student[0] += 10  # MSE over both clips' frames: 100 / 2 = 50
    assert frame_psnr(student, teacher) == pytest.approx(10 * math.log10(255**2 / 50))
    assert frame_psnr(teacher, teacher) == PSNR_CAP


def test_psnr_is_capped():
    assert psnr_of_mse(0.0) == PSNR_CAP and psnr_of_mse(1e-12) == PSNR_CAP
    assert psnr_of_mse(255.0**2) == pytest.approx(0.0)
