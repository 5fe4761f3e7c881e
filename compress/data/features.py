"""Audio features for the demo models: log-mel at 50 Hz (torch.stft, no librosa / torchaudio)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

FEATURE_RATE = 50  # Hz, the rate of wav2vec2 hidden states upstream


def mel_filterbank(n_mels: int, n_fft: int, sample_rate: int, f_min: float = 0.0,
                   f_max: float | None = None) -> torch.Tensor:
    """HTK-mel triangular filters [n_mels, n_fft // 2 + 1], unnormalised (peak 1)."""
    f_max = sample_rate / 2 if f_max is None else f_max

    def mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    hz = 700.0 * (10 ** (np.linspace(mel(f_min), mel(f_max), n_mels + 2) / 2595.0) - 1.0)
    bins = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    lo, mid, hi = hz[:-2, None], hz[1:-1, None], hz[2:, None]
    up = (bins[None] - lo) / (mid - lo)
    down = (hi - bins[None]) / (hi - mid)
    return torch.from_numpy(np.clip(np.minimum(up, down), 0, None)).float()


def log_mel(audio: np.ndarray | torch.Tensor, sample_rate: int = 16_000, n_mels: int = 80,
            hop: int | None = None, n_fft: int = 512, win: int = 400) -> torch.Tensor:
    """Log-mel spectrogram [n_mels, 1 + len // hop]; hop defaults to 50 Hz (320 samples at 16 kHz).

    Frames are centred: frame j covers the 25 ms window around t = j * hop / sample_rate.
    """
    hop = sample_rate // FEATURE_RATE if hop is None else hop
    x = audio.float() if torch.is_tensor(audio) else torch.from_numpy(np.asarray(audio, np.float32))
    spec = torch.stft(x, n_fft=n_fft, hop_length=hop, win_length=win,
                      window=torch.hann_window(win), center=True, pad_mode="reflect", return_complex=True)
    power = spec.abs() ** 2
    mel = mel_filterbank(n_mels, n_fft, sample_rate) @ power
    return torch.log(mel.clamp_min(1e-5))


def frame_features(audio: np.ndarray | torch.Tensor, fps: float, num_frames: int,
                   sample_rate: int = 16_000, n_mels: int = 80) -> torch.Tensor:
    """Log-mel averaged per video frame: [n_mels, num_frames].

    Video frame i covers [i / fps, (i + 1) / fps); the 50 Hz frames whose centres fall in that
    window are averaged (adaptive average pooling; audio shorter than the video is padded
    with the quietest value).
    """
    feats = log_mel(audio, sample_rate, n_mels)
    n = max(round(num_frames * FEATURE_RATE / fps), num_frames)
    if feats.shape[1] < n:
        feats = F.pad(feats, (0, n - feats.shape[1]), value=math.log(1e-5))
    return F.adaptive_avg_pool1d(feats[None, :, :n], num_frames)[0]
