"""Tier B: a SyncNet-style audio-video embedding model (~0.9M parameters) trained by the toolkit.

It embeds a window of 5 mouth crops and the MFCC span under it (resampled to 13 x 20) into one unit-length
space where in-sync pairs are close. It is trained contrastively on the teacher's outputs only: each window's
own audio is the positive, the audio of the other sampled windows (the same clip at other times, i.e. shifted
pairs, and other clips) the negatives. A student trained against an expert (the distill stage's `sync` loss)
games that expert: evaluate with another one (see `compress.stages.distill`).

`train_sync_expert` holds some clips out and measures how often the expert finds a known lag in them
(`validation_offset_accuracy`) and how often it clearly prefers a clip's own audio to the same audio reversed
in time (`validation_reversed_audio_accuracy`; reversal keeps the voice, loudness and the silences at both
ends, so an expert that matched position in the clip rather than mouth motion fails it). Both are stored in
the config, so a report can say when the expert itself is unreliable (e.g. a teacher whose video ignores the
audio: the lag check alone passes on such a teacher's outputs when the expert learns where in the clip a
window lies).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from compress.data.faults import shift
from compress.errors import UserInputError

from .crops import crop_frames, stack_windows
from .mfcc import WINDOW, audio_windows, mfcc, window_count
from .protocol import sync_scores

VALIDATION_SHIFTS = (-3, -1, 0, 1, 3)
REVERSED_AUDIO_RATIO = 0.7  # LSE-C with reversed audio must fall below this fraction of the clip's own
TEMPERATURE = 0.07
EXPERT_DIR = "expert"  # the expert's folder inside a sync_expert artifact


@dataclass
class SyncClip:
    """One talking clip: frames uint8 [T, H, W, 3], mono audio, frame rate and per-frame mouth boxes int [T, 4]."""

    frames: np.ndarray
    audio: np.ndarray
    fps: float
    boxes: np.ndarray
    sample_rate: int = 16_000

    def __post_init__(self):
        self.frames, self.boxes = np.asarray(self.frames), np.asarray(self.boxes)

    def shifted(self, frames: int) -> "SyncClip":
        """The clip with its video `frames` late (negative: early), boxes moving with the frames."""
        return SyncClip(shift(self.frames, frames), self.audio, self.fps, shift(self.boxes, frames), self.sample_rate)


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


@torch.no_grad()
def embed_clip(expert: SyncExpert, clip: SyncClip, batch: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """(video, audio) embeddings [N, embed_dim] of every window of a clip."""
    expert.eval()
    video, audio = clip_windows(clip, expert.crop_size)
    return (torch.cat([expert.embed_video(v) for v in video.split(batch)]),
            torch.cat([expert.embed_audio(a) for a in audio.split(batch)]))


def expert_scores(expert: SyncExpert, clip: SyncClip) -> dict:
    """The protocol's scores (offsets averaged over existing pairs only: unit vectors make zero padding a
    spuriously good match)."""
    return sync_scores(*embed_clip(expert, clip), padding="valid")


def offset_accuracy(expert: SyncExpert, clips: Iterable[SyncClip], shifts: Sequence[int] = VALIDATION_SHIFTS) -> float:
    """Fraction of (clip, known lag) checks in which the expert's AV offset is exactly the lag."""
    hits = [expert_scores(expert, clip.shifted(k))["av_offset"] == k for clip in clips for k in shifts]
    return sum(hits) / len(hits)


def reversed_audio_accuracy(expert: SyncExpert, clips: Iterable[SyncClip]) -> float:
    """Fraction of clips whose LSE-C drops below `REVERSED_AUDIO_RATIO` of its own when the audio is reversed."""
    hits = []
    for clip in clips:
        reverse = SyncClip(clip.frames, np.ascontiguousarray(clip.audio[::-1]), clip.fps, clip.boxes, clip.sample_rate)
        own = expert_scores(expert, clip)["lse_c"]
        hits.append(expert_scores(expert, reverse)["lse_c"] < REVERSED_AUDIO_RATIO * own)
    return sum(hits) / len(hits)


def train_sync_expert(clips: Sequence[SyncClip], steps: int = 300, seed: int = 0,
                      val_clips: Sequence[SyncClip] | None = None, val_fraction: float = 0.25, lr: float = 2e-3,
                      clips_per_step: int = 4, windows_per_clip: int = 24,
                      track: Callable[[Iterable, str, int], Iterable] | None = None,
                      **config) -> tuple[SyncExpert, dict]:
    """Train an expert on in-sync clips; deterministic for a given seed. Without `val_clips`, the last
    `val_fraction` of `clips` (at least one, when there are two or more) are held out for validation.

    Returns (expert, report): report has the final loss and the two validation accuracies (None if no clip
    was held out), which are also stored in the expert's config.
    """
    if val_clips is None:
        held = max(round(len(clips) * val_fraction), 1) if len(clips) > 1 else 0
        clips, val_clips = clips[:len(clips) - held], clips[len(clips) - held:]
    if not clips:
        raise ValueError("train_sync_expert needs at least one training clip")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        expert = SyncExpert(**config)
        data = [clip_windows(c, expert.crop_size) for c in clips]
        losses = _fit(expert, data, steps, lr, clips_per_step, windows_per_clip, track)
    validation = {"validation_offset_accuracy": None, "validation_reversed_audio_accuracy": None}
    if val_clips:
        validation = {"validation_offset_accuracy": offset_accuracy(expert, val_clips),
                      "validation_reversed_audio_accuracy": reversed_audio_accuracy(expert, val_clips)}
    expert.register_to_config(**validation)
    return expert.eval(), {"steps": steps, "train_clips": len(clips), "val_clips": len(val_clips),
                           "final_loss": float(np.mean(losses[-10:])), **validation,
                           "params": sum(p.numel() for p in expert.parameters())}


def _fit(expert, data, steps, lr, clips_per_step, windows_per_clip, track) -> list[float]:
    """Symmetric InfoNCE over the sampled windows (positives: each window's own audio)."""
    opt = torch.optim.AdamW(expert.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=max(steps, 1), pct_start=0.1)
    expert.train()
    losses = []
    for _ in track(range(steps), "sync expert", steps) if track else range(steps):
        video, audio = _sample(data, clips_per_step, windows_per_clip)
        gain = torch.empty(len(video), 1, 1, 1, 1).uniform_(0.8, 1.2)  # appearance jitter
        logits = expert.embed_video((video * gain).clamp(0, 255)) @ expert.embed_audio(audio).T / TEMPERATURE
        target = torch.arange(len(logits))
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return losses


def _sample(data, clips_per_step, windows_per_clip) -> tuple[torch.Tensor, torch.Tensor]:
    picks = torch.randperm(len(data))[:clips_per_step]
    video, audio = [], []
    for i in picks.tolist():
        v, a = data[i]
        idx = torch.randperm(len(v))[:windows_per_clip]
        video.append(v[idx])
        audio.append(a[idx])
    return torch.cat(video), torch.cat(audio)


def load_sync_expert(path) -> SyncExpert:
    """A saved expert: its folder, or a `sync_expert` artifact (an Artifact or its directory)."""
    path = Path(getattr(path, "path", path))
    folder = path / EXPERT_DIR if (path / EXPERT_DIR / "config.json").is_file() else path
    if not (folder / "config.json").is_file():
        raise UserInputError(f"sync expert: no expert (config.json) in '{path}'")
    return SyncExpert.from_pretrained(folder).eval()
