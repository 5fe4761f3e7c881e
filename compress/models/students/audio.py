"""Audio input of the lip-sync student: a window of log-mel frames (50 Hz) centred on each video frame, or on its
chunk of frames."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from compress.data.features import FEATURE_RATE, log_mel

MEL_BINS = 80
SILENCE = math.log(1e-5)  # log_mel's floor


def mel_windows(audio: np.ndarray | torch.Tensor, fps: float, num_frames: int, window: int = 16,
                sample_rate: int = 16_000, chunk: int = 1) -> torch.Tensor:
    """[num_frames, MEL_BINS, window]: for video frame i, the `window` log-mel frames around the centre of its
    chunk of `chunk` frames, (chunk * (i // chunk) + chunk / 2) / fps (with chunk 1: the frame's centre
    (i + 0.5) / fps); silence beyond the audio's ends. Frames of one chunk share one window: chunk 4 follows a
    teacher that draws one mouth per Wan VAE latent frame (4 video frames)."""
    if chunk < 1:
        raise ValueError(f"chunk: frames per audio window, at least 1; got {chunk}")
    mel = log_mel(audio, sample_rate, MEL_BINS)
    half = window // 2
    padded = F.pad(mel, (half, window), value=SILENCE)
    starts = torch.div(torch.arange(num_frames), chunk, rounding_mode="floor") * chunk
    centres = torch.round((starts + chunk / 2) * FEATURE_RATE / fps).long()
    index = (centres[:, None] + torch.arange(window)[None]).clamp(max=padded.shape[1] - 1)
    return padded[:, index].permute(1, 0, 2).contiguous()
