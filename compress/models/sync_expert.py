"""The tier-B sync expert: a SyncNet-style audio-video embedding model (~0.9M parameters) trained by the toolkit.

It embeds a window of 5 mouth crops and the MFCC span under it (resampled to 13 x 20) into one unit-length
space where in-sync pairs are close. The `sync_expert` stage trains it contrastively on the teacher's outputs,
stores its held-out validation in the config and saves it in the artifact's `expert/` folder, which
`load_sync_expert` reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from compress.errors import UserInputError
from compress.face.crops import crop_frames, stack_windows
from compress.face.mfcc import WINDOW, audio_windows, mfcc, window_count
from compress.face.sync_clip import SyncClip
from compress.models.loading import check_model_finite, require_weight_files

EXPERT_DIR = "expert"  # the expert's folder inside a sync_expert artifact


def _conv(cin: int, cout: int, stride) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride, 1), nn.GroupNorm(8, cout), nn.ReLU(inplace=True)]


def _encoder(cin: int, width: int, strides: Sequence, embed_dim: int) -> nn.Sequential:
    chans = [cin] + [width * 2 ** i for i in range(len(strides))]
    layers = [m for a, b, s in zip(chans, chans[1:], strides) for m in _conv(a, b, s)]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(chans[-1], embed_dim))


class SyncExpert(ModelMixin, ConfigMixin):
    """Video and audio encoders into a shared unit-length embedding space."""

    @register_to_config
    def __init__(self, crop_height: int = 24, crop_width: int = 32, width: int = 32, embed_dim: int = 256,
                 validation_offset_accuracy: float | None = None,
                 validation_reversed_audio_accuracy: float | None = None):
        super().__init__()
        self.video = _encoder(WINDOW * 3, width, (2, 2, 2, 1), embed_dim)
        self.audio = _encoder(1, width, ((1, 2), 2, 2, 2), embed_dim)

    @property
    def crop_size(self) -> tuple[int, int]:
        return self.config.crop_height, self.config.crop_width

    def embed_video(self, windows: torch.Tensor) -> torch.Tensor:
        """[N, WINDOW, 3, h, w] crops in 0..255 -> [N, embed_dim] unit vectors."""
        x = windows.flatten(1, 2) / 127.5 - 1
        return F.normalize(self.video(x), dim=-1)

    def embed_audio(self, windows: torch.Tensor) -> torch.Tensor:
        """[N, 1, 13, 20] normalised MFCC -> [N, embed_dim] unit vectors."""
        return F.normalize(self.audio(windows), dim=-1)


def expert_audio_windows(audio: np.ndarray, fps: float, count: int, sample_rate: int = 16_000) -> torch.Tensor:
    """The expert's audio input [count, 1, 13, 20] for video windows 0 .. count - 1: MFCC normalised per clip."""
    coeffs = mfcc(audio, sample_rate)
    coeffs = (coeffs - coeffs.mean(1, keepdim=True)) / coeffs.std(1, keepdim=True).clamp_min(1e-3)
    return audio_windows(coeffs, fps, count)


def clip_windows(clip: SyncClip, crop_size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(video windows [N, 5, 3, h, w], audio windows [N, 1, 13, 20]) of a clip."""
    count = window_count(len(clip.frames), len(clip.audio), clip.fps, clip.sample_rate)
    video = stack_windows(crop_frames(clip.frames, clip.boxes, crop_size), count)
    return video, expert_audio_windows(clip.audio, clip.fps, count, clip.sample_rate)


def load_sync_expert(path) -> SyncExpert:
    """A saved expert: its folder, or a `sync_expert` artifact (an Artifact or its directory)."""
    path = Path(getattr(path, "path", path))
    folder = path / EXPERT_DIR if (path / EXPERT_DIR / "config.json").is_file() else path
    if not (folder / "config.json").is_file():
        raise UserInputError(f"sync expert: no expert (config.json) in '{path}'")
    require_weight_files(folder)  # pickled weights are named and refused, never loaded
    return check_model_finite(SyncExpert.from_pretrained(folder, use_safetensors=True), folder).eval()
