import numpy as np
import torch

from compress.data import frame_features, log_mel


def _burst(start_s=0.5, total_s=2.0, sr=16_000):
    t = np.arange(int(total_s * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * 440 * t) * (t >= start_s)).astype(np.float32)


def test_log_mel_shape_and_50hz_frame_rate():
    audio = _burst()
    mel = log_mel(audio)
    assert isinstance(mel, torch.Tensor) and mel.shape == (80, 2 * 50 + 1) and torch.isfinite(mel).all()
    energy = mel.exp().sum(0)
    onset = int(torch.nonzero(energy > 0.5 * energy.max())[0])
    assert abs(onset - 25) <= 1  # 0.5 s at 50 Hz
    assert int(mel[:, 60].argmax()) < 20  # 440 Hz lands in a low mel band
    assert torch.allclose(log_mel(torch.from_numpy(audio)), mel)


def test_frame_features_at_video_rate():
    feats = frame_features(_burst(), fps=16, num_frames=32)
    assert feats.shape == (80, 32)
    energy = feats.exp().sum(0)
    assert energy[:7].max() < 0.01 * energy[9:].min()  # onset at 0.5 s = frame 8 at 16 fps
    assert frame_features(_burst(total_s=1.0), fps=16, num_frames=32).shape == (80, 32)  # short audio is padded
