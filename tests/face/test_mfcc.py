"""SyncNet's MFCC input and the audio windows under the video's sync windows."""

import numpy as np
import torch

from compress.face.mfcc import audio_windows, mfcc, window_count


def test_mfcc_matches_python_speech_features(python_speech_features):
    rng = np.random.default_rng(0)
    t = np.arange(16_000 + 123) / 16_000
    audio = np.round(8000 * np.sin(2 * np.pi * 220 * t) * (t < 0.6) + rng.normal(0, 300, len(t)))  # int16 scale
    ours = mfcc(audio, 16_000).numpy()
    reference = python_speech_features.mfcc(audio, 16_000).T
    assert ours.shape == reference.shape == (13, 100)
    np.testing.assert_allclose(ours, reference, atol=1e-6)


def test_audio_windows_follow_the_video_frames():
    coeffs = torch.arange(400, dtype=torch.float64)[None].repeat(13, 1)  # value = MFCC frame index
    at25 = audio_windows(coeffs, 25, 10)
    assert at25.shape == (10, 1, 13, 20)
    assert torch.equal(at25[7, 0, 0], torch.arange(28, 48, dtype=torch.float32))  # SyncNet: frames [4i, 4i + 20)
    at16 = audio_windows(coeffs, 16, 10)[:, 0, 0]  # 5 frames at 16 fps = 31.25 MFCC frames, from 6.25 i
    expected = 6.25 * torch.arange(10)[:, None] + (torch.arange(20) + 0.5) * 31.25 / 20 - 0.5
    torch.testing.assert_close(at16, expected.float())
    assert window_count(56, 56_000, 16) == 52 and window_count(56, 16_000, 16) == 12
