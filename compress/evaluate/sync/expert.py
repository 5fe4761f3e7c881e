"""Tier B: train the sync expert (`compress.models.sync_expert.SyncExpert`) and score clips with it.

It is trained contrastively on the teacher's outputs only: each window's own audio is the positive, the audio
of the other sampled windows (the same clip at other times, i.e. shifted pairs, and other clips) the negatives.
A student trained against an expert (the distill stage's `sync` loss) games that expert: evaluate with another
one (see `compress.stages.distill`).

`train_sync_expert` holds some clips out and measures how often the expert finds a known lag in them
(`validation_offset_accuracy`) and how often it clearly prefers a clip's own audio to the same audio reversed
in time (`validation_reversed_audio_accuracy`; reversal keeps the voice, loudness and the silences at both
ends, so an expert that matched position in the clip rather than mouth motion fails it). Both are stored in
the config, so a report can say when the expert itself is unreliable (e.g. a teacher whose video ignores the
audio: the lag check alone passes on such a teacher's outputs when the expert learns where in the clip a
window lies).
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from compress.face.sync_clip import SyncClip
from compress.models.sync_expert import SyncExpert, clip_windows

from .protocol import sync_scores

VALIDATION_SHIFTS = (-3, -1, 0, 1, 3)
REVERSED_AUDIO_RATIO = 0.7  # LSE-C with reversed audio must fall below this fraction of the clip's own
TEMPERATURE = 0.07


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
