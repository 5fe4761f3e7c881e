"""MFCC in torch, with the parameters SyncNet's input uses (python_speech_features' `mfcc` defaults).

13 coefficients at 100 Hz from 25 ms rectangular frames starting every 10 ms (not centred), pre-emphasis
0.97, a 512-point power spectrum, 26 HTK-mel triangles with their corners rounded to FFT bins (the continuous
`compress.data.features.mel_filterbank` differs by ~0.8 per coefficient, enough to matter for published
SyncNet weights), an orthonormal DCT-II, sine liftering (22) and the log frame energy as coefficient 0.
Matches `python_speech_features.mfcc` to float precision.

A window of `WINDOW` video frames at `fps` spans `WINDOW / fps` seconds; `audio_windows` resamples that span
to `AUDIO_FRAMES` MFCC frames, so at 25 fps window i is exactly MFCC frames [4i, 4i + 20) as in SyncNet.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

MFCC_RATE = 100  # Hz
N_MFCC = 13
WINDOW = 5  # video frames per sync window
AUDIO_FRAMES = 20  # MFCC frames per sync window (0.2 s at 100 Hz, SyncNet's input width)
_EPS = float(np.finfo(np.float64).eps)  # python_speech_features' floor before the log


def mfcc(audio: np.ndarray | torch.Tensor, sample_rate: int = 16_000, n_mfcc: int = N_MFCC, n_mels: int = 26,
         n_fft: int = 512, preemphasis: float = 0.97, lifter: int = 22) -> torch.Tensor:
    """MFCC [n_mfcc, frames] (float64) of a mono waveform; frame j starts at j / 100 s."""
    x = torch.tensor(np.asarray(audio, np.float64)).reshape(-1)
    x = torch.cat([x[:1], x[1:] - preemphasis * x[:-1]])
    win, hop = round(0.025 * sample_rate), round(sample_rate / MFCC_RATE)
    frames = 1 + max(math.ceil((len(x) - win) / hop), 0)
    x = F.pad(x, (0, (frames - 1) * hop + win - len(x)))  # zero-pad the last frame, as python_speech_features
    power = torch.fft.rfft(x.unfold(0, win, hop), n=n_fft).abs() ** 2 / n_fft  # [frames, n_fft // 2 + 1]
    energy = power.sum(1).clamp_min(_EPS)
    mel = (power @ _binned_filterbank(n_mels, n_fft, sample_rate).T).clamp_min(_EPS)
    cep = torch.log(mel) @ _dct_matrix(n_mels, n_mfcc).T
    n = torch.arange(n_mfcc, dtype=torch.float64)
    cep = cep * (1 + lifter / 2 * torch.sin(math.pi * n / lifter)) if lifter > 0 else cep
    cep[:, 0] = torch.log(energy)
    return cep.T.contiguous()


def _binned_filterbank(n_mels: int, n_fft: int, sample_rate: int) -> torch.Tensor:
    """Triangular HTK-mel filters [n_mels, n_fft // 2 + 1] whose corners are FFT bins."""
    top = 2595 * math.log10(1 + sample_rate / 2 / 700)
    hz = 700 * (10 ** (np.linspace(0, top, n_mels + 2) / 2595) - 1)
    corners = np.floor((n_fft + 1) * hz / sample_rate).astype(int)
    bank = torch.zeros(n_mels, n_fft // 2 + 1, dtype=torch.float64)
    for m, (lo, mid, hi) in enumerate(zip(corners, corners[1:], corners[2:])):
        bank[m, lo:mid] = torch.arange(lo, mid, dtype=torch.float64).sub(lo) / (mid - lo)
        bank[m, mid:hi] = torch.arange(mid, hi, dtype=torch.float64).neg().add(hi) / (hi - mid)
    return bank


def _dct_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """Orthonormal DCT-II rows [n_out, n_in] (scipy.fft.dct(norm="ortho"))."""
    k = torch.arange(n_out, dtype=torch.float64)[:, None]
    n = torch.arange(n_in, dtype=torch.float64)[None]
    basis = torch.cos(math.pi * k * (2 * n + 1) / (2 * n_in)) * math.sqrt(2 / n_in)
    basis[0] /= math.sqrt(2)
    return basis


def window_count(num_frames: int, num_samples: int, fps: float, sample_rate: int = 16_000) -> int:
    """Complete `WINDOW`-frame windows covered by both the video and the audio."""
    return max(min(num_frames, math.floor(num_samples * fps / sample_rate)) - WINDOW + 1, 0)


def audio_windows(coefficients: torch.Tensor, fps: float, count: int) -> torch.Tensor:
    """[count, 1, n_mfcc, AUDIO_FRAMES] float32: the MFCC span of video window i (frames i .. i + 4),
    linearly resampled to `AUDIO_FRAMES` frames (edge values past the end)."""
    step = MFCC_RATE / fps
    span = WINDOW * step / AUDIO_FRAMES  # MFCC frames per output frame
    pos = torch.arange(count, dtype=torch.float64)[:, None] * step + (torch.arange(AUDIO_FRAMES) + 0.5) * span - 0.5
    pos = pos.clamp(0, coefficients.shape[1] - 1)
    lo = pos.floor().long()
    hi = (lo + 1).clamp_max(coefficients.shape[1] - 1)
    w = (pos - lo).to(coefficients.dtype)
    values = coefficients[:, lo] * (1 - w) + coefficients[:, hi] * w  # [n_mfcc, count, AUDIO_FRAMES]
    return values.permute(1, 0, 2)[:, None].float().contiguous()
