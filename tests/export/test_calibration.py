"""Calibration inputs derived from reference rows are what the student itself computes from them."""

import numpy as np
import pytest
import torch

from compress.export.calibration import export_calibration
from compress.models.students import LipSyncStudent, mask_lower_half
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


@pytest.mark.parametrize("mode", ["target", "reference"])
def test_masked_input_calibration_follows_the_students_mode(mode):
    rng = np.random.default_rng(1)
    ref, latents = rng.standard_normal((16, 1, 4, 4)), rng.standard_normal((1, 16, 2, 4, 4))  # [C, 1, h, w], 2 frames
    row = {"fps": FPS, **encode_array(ref.astype(np.float32), "ref_latents"),
           **encode_array(latents.astype(np.float32), "latents")}
    model = LipSyncStudent(channels=32, mid_blocks=1, audio_channels=32, audio_dim=32, masked_input=mode)
    example = {"masked_latent": model.example_inputs(height=32, width=32)["masked_latent"]}
    batches, _ = export_calibration(model, example, _Reference([row]), count=4, seed=0)
    sources = [ref[:, 0]] if mode == "reference" else [latents[0, :, 0], latents[0, :, 1]]
    expected = [mask_lower_half(torch.from_numpy(s).float()) for s in sources]
    for batch in batches:
        assert any(torch.equal(batch["masked_latent"][0], e) for e in expected), mode


def test_a_reference_at_another_size_calibrates_on_its_latents_resized():
    ref = torch.arange(16.0).reshape(1, 1, 4, 4).expand(16, 1, 4, 4)  # [C, 1, h, w]: a ramp in every channel
    row = {"fps": FPS, **encode_array(ref.numpy().copy(), "ref_latents"),
           **encode_array(np.zeros((1, 16, 1, 4, 4), np.float32), "latents")}
    model = LipSyncStudent(channels=32, mid_blocks=1, audio_channels=32, audio_dim=32, masked_input="reference")
    example = {k: v for k, v in model.example_inputs(height=64, width=64).items() if k != "audio"}  # 8x8 latents
    batches, sources = export_calibration(model, example, _Reference([row]), count=2, seed=0)
    upscaled = torch.nn.functional.interpolate(ref[:, 0][None], size=(8, 8), mode="bilinear")
    assert torch.allclose(batches[0]["ref_latent"], upscaled)
    assert torch.equal(batches[0]["masked_latent"], mask_lower_half(upscaled))  # masked after resizing
    assert sources["ref_latent"] == "reference dataset (ref_latent derived from its rows; latents resized 4x4 -> 8x8)"
