"""The S2V audio path before the DiT: 16 kHz speech -> wav2vec2 hidden states -> one feature per video frame.

As upstream: the waveform is normalised to zero mean / unit variance (Wav2Vec2FeatureExtractor), all hidden
states (embeddings + every layer) are taken at 50 Hz, linearly interpolated to 30 Hz, and video frame i
picks the 30 Hz state nearest to i / fps. Frames past the end of the audio get zeros.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F
from scipy.signal import resample_poly

SAMPLE_RATE = 16_000
WAV2VEC_RATE = 50  # hidden states per second (hop 320 samples)
BUCKET_RATE = 30  # upstream's intermediate "video_rate"


def load_audio(audio: np.ndarray | str | Path) -> np.ndarray:
    """Mono float32 at 16 kHz; arrays are taken to be 16 kHz already, files are resampled if needed."""
    if isinstance(audio, (str, Path)):
        data, rate = sf.read(str(audio), dtype="float32", always_2d=True)
        data = data.mean(axis=1)
        if rate != SAMPLE_RATE:
            gcd = math.gcd(rate, SAMPLE_RATE)
            data = resample_poly(data, SAMPLE_RATE // gcd, rate // gcd)
        return np.asarray(data, np.float32)
    data = np.asarray(audio, np.float32)
    if data.ndim != 1:
        raise ValueError(f"audio must be a mono 16 kHz waveform [N], got shape {data.shape}")
    return data


def clips_for_audio(num_samples: int, fps: int, frames_per_clip: int, num_clips: int | None) -> int:
    """How many clips the audio drives: all it covers (None), or `num_clips` if each of them gets some audio."""
    frames = num_samples * fps / SAMPLE_RATE
    if frames < 1:
        raise ValueError(f"audio too short: {num_samples} samples ({num_samples / SAMPLE_RATE:.3f} s); "
                         f"one video frame needs at least {SAMPLE_RATE // fps} samples (1/{fps} s)")
    needed = math.ceil(frames / frames_per_clip - 1e-9)
    if num_clips is None:
        return needed
    if num_clips < 1 or num_clips > needed:
        raise ValueError(f"audio too short for num_clips={num_clips}: it covers {frames:.1f} frames, "
                         f"{needed} clip(s) of {frames_per_clip} frames")
    return num_clips


@torch.no_grad()
def audio_features(encoder, audio: np.ndarray, fps: int, num_frames: int) -> torch.Tensor:
    """wav2vec2 hidden states per video frame: [num_hidden_states, hidden_size, num_frames], float32."""
    x = (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)
    param = next(encoder.parameters())
    states = encoder(torch.from_numpy(x)[None].to(param.device, param.dtype), output_hidden_states=True).hidden_states
    feats = torch.cat(states).float().transpose(1, 2)  # [layers, dim, T50]
    n = int(feats.shape[2] / WAV2VEC_RATE * BUCKET_RATE)
    feats = F.interpolate(feats, size=n, mode="linear", align_corners=True)
    times = np.linspace(0, num_frames / fps, num_frames, endpoint=False)
    index = torch.from_numpy(np.round(times * BUCKET_RATE).astype(np.int64)).to(feats.device)
    out = feats.new_zeros(*feats.shape[:2], num_frames)
    valid = index < n
    out[..., valid] = feats[..., index[valid]]
    return out
