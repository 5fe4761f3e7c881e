"""Per-clip lip-sync reports of tier B (the toolkit's sync expert) and tier C (the published SyncNet).

Each report is `{status, tier, lse_d, lse_c, av_offset, av_offset_s, offset_fps, distances, ...}`. Only tier C
numbers may be compared with published Sync-C / Sync-D. `compare_to_teacher` gives student/teacher ratios.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from compress.face.crops import crop_frames, full_frame_boxes
from compress.face.mfcc import WINDOW, audio_windows, mfcc, window_count
from compress.face.sync_clip import SyncClip
from compress.models.sync_expert import SyncExpert

from .expert import expert_scores
from .protocol import sync_scores
from .syncnet import SyncNet, load_syncnet

SYNCNET_FPS = 25
SYNCNET_SIZE = (224, 224)
NO_WEIGHTS = "not computed: no SyncNet weights given"
MIN_EXPERT_ACCURACY = 0.8


def _report(tier: str, scores: dict, fps: float, status: str = "computed") -> dict:
    return {"status": status, "tier": tier, **scores, "av_offset_s": scores["av_offset"] / fps, "offset_fps": fps}


def tier_b_clip(expert: SyncExpert, clip: SyncClip) -> dict:
    """Tier B scores of one clip; offsets in the clip's frames. The status says when the expert's own
    validation on held-out clips (known lags, reversed audio) fell below `MIN_EXPERT_ACCURACY`."""
    checks = {"found known lags in": expert.config.validation_offset_accuracy,
              "rejected reversed audio in": expert.config.validation_reversed_audio_accuracy}
    failed = [f"{what} {value:.0%}" for what, value in checks.items()
              if value is not None and value < MIN_EXPERT_ACCURACY]
    status = "computed"
    if failed:
        status = (f"unreliable: the sync expert {' and '.join(failed)} of held-out checks "
                  f"(below {MIN_EXPERT_ACCURACY:.0%})")
    report = _report("B", expert_scores(expert, clip), clip.fps, status)
    return {**report, "expert_offset_accuracy": checks["found known lags in"],
            "expert_reversed_audio_accuracy": checks["rejected reversed audio in"]}


def to_syncnet_rate(clip: SyncClip) -> SyncClip:
    """The clip at 25 fps, frames repeated: 25 fps frame t is the source frame on screen at t / 25 s
    (syncnet_python expects its input converted to 25 fps)."""
    count = math.floor(len(clip.frames) * SYNCNET_FPS / clip.fps + 1e-9)
    index = np.minimum(np.floor(np.arange(count) * clip.fps / SYNCNET_FPS + 1e-9).astype(int), len(clip.frames) - 1)
    return SyncClip(clip.frames[index], clip.audio, SYNCNET_FPS, clip.boxes[index], clip.sample_rate)


def syncnet_inputs(clip: SyncClip) -> tuple[torch.Tensor, torch.Tensor]:
    """(face crops [T, 3, 224, 224] BGR 0..255, audio windows [N, 1, 13, 20]) of a 25 fps clip.

    N = min(frames, audio frames) - 5, as syncnet_python's `lastframe` (one window fewer than fit)."""
    count = window_count(len(clip.frames), len(clip.audio), clip.fps, clip.sample_rate) - 1
    if count < 1:
        raise ValueError(f"clip too short for SyncNet: {len(clip.frames)} frames at 25 fps (needs {WINDOW + 1})")
    crops = crop_frames(clip.frames, clip.boxes, SYNCNET_SIZE).flip(1)  # RGB -> BGR (cv2 frames)
    pcm = np.clip(np.asarray(clip.audio, np.float64) * 32768, -32768, 32767)  # int16 scale, as wavfile reads
    audio = audio_windows(mfcc(np.round(pcm), clip.sample_rate), clip.fps, count)
    return crops, audio


@torch.no_grad()
def syncnet_embeddings(net: SyncNet, clip: SyncClip, batch: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """(lip, audio) embeddings [N, 1024] of a 25 fps clip."""
    crops, audio = syncnet_inputs(clip)
    device = next(net.parameters()).device
    lips = []
    for start in range(0, len(audio), batch):
        idx = torch.arange(start, min(start + batch, len(audio)))
        windows = crops[idx[:, None] + torch.arange(WINDOW)].permute(0, 2, 1, 3, 4)  # [n, 3, 5, 224, 224]
        lips.append(net.embed_lip(windows.to(device)).cpu())
    return torch.cat(lips), torch.cat([net.embed_audio(a.to(device)).cpu() for a in audio.split(batch)])


def tier_c_clip(clip: SyncClip, weights: SyncNet | str | Path | None, face_boxes: np.ndarray | None = None) -> dict:
    """Tier C scores of one clip with the published SyncNet; offsets in 25 fps frames. `face_boxes` [T, 4]
    crop the face (default: the whole frame, as for face-centred talking-head outputs). Without weights
    the report says so and holds no numbers."""
    if weights is None:
        return {"status": NO_WEIGHTS, "tier": "C"}
    net = weights if isinstance(weights, SyncNet) else load_syncnet(weights)
    net.eval()
    boxes = face_boxes if face_boxes is not None else full_frame_boxes(len(clip.frames), *clip.frames.shape[1:3])
    faces = to_syncnet_rate(SyncClip(clip.frames, clip.audio, clip.fps, np.asarray(boxes), clip.sample_rate))
    return _report("C", sync_scores(*syncnet_embeddings(net, faces)), SYNCNET_FPS)


def compare_to_teacher(student: dict, teacher: dict) -> dict:
    """Student/teacher ratios of LSE-D and LSE-C (same tier) and the offsets; LSE-D ratio > 1 and LSE-C
    ratio < 1 are worse. The offset is reported on its own: LSE-C / LSE-D do not see a constant lag."""
    if student.get("tier") != teacher.get("tier"):
        raise ValueError(f"cannot compare tier {student.get('tier')} with tier {teacher.get('tier')}")
    tier = student["tier"]
    if "lse_d" not in student or "lse_d" not in teacher:
        return {"tier": tier, "status": student["status"] if "lse_d" not in student else teacher["status"]}
    status = next((r["status"] for r in (student, teacher) if r["status"] != "computed"), "computed")
    return {"tier": tier, "status": status, "lse_d_ratio": student["lse_d"] / teacher["lse_d"],
            "lse_c_ratio": student["lse_c"] / teacher["lse_c"] if teacher["lse_c"] else float("nan"),
            "av_offset": student["av_offset"], "teacher_av_offset": teacher["av_offset"],
            "av_offset_delta": student["av_offset"] - teacher["av_offset"]}
