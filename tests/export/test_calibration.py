"""Calibration inputs derived from reference rows are what the student itself computes from them."""

import numpy as np
import pytest
import torch

from compress.export.calibration import export_calibration
from compress.models.students import LipSyncStudent
from compress.utils.arrays import encode_array

FRAMES, FPS = 8, 16.0


class _Reference:
    def __init__(self, rows):
        self.rows = rows


@pytest.mark.parametrize("chunk", [1, 4])
def test_audio_calibration_follows_the_students_audio_chunk(chunk):
    rng = np.random.default_rng(0)
    audio = rng.standard_normal(int(16_000 * FRAMES / FPS)).astype(np.float32)
    row = {"fps": FPS, **encode_array(np.zeros((FRAMES, 32, 32, 3), np.uint8), "frames"),
           **encode_array(audio, "audio")}
    model = LipSyncStudent(channels=32, mid_blocks=1, audio_channels=32, audio_dim=32, audio_chunk=chunk)
    example = {"audio": model.example_inputs()["audio"]}
    batches, sources = export_calibration(model, example, _Reference([row]), count=FRAMES, seed=0)
    windows = model.audio_windows(audio, FPS, FRAMES)
    assert sources["audio"].startswith("reference dataset")
    for batch in batches:
        assert any(torch.allclose(batch["audio"][0], window) for window in windows)
