"""Loss settings, the expert sync loss (differentiable, low only for in-sync audio) and mouth boxes from face
landmarks on the built-in synthetic set."""


import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

from compress.data import build_synthetic_set, load_synthetic_set
from compress.distill.config import LossConfig
from compress.distill.losses import expert_sync_loss
from compress.face.mfcc import AUDIO_FRAMES, WINDOW
from compress.face.mouth import clip_mouth_box


def test_loss_settings_are_checked():
    assert LossConfig(mouth_box="landmarks", mouth_weight=1.0).mouth_box == "landmarks"
    assert LossConfig(latent_mse=1.0, sync=0.1).sync == 0.1
    with pytest.raises(ValidationError, match="mouth_box"):
        LossConfig(mouth_box="faces")
    with pytest.raises(ValidationError, match="sync"):
        LossConfig(sync=-1.0)
    with pytest.raises(ValidationError, match="syncnet"):
        LossConfig(syncnet=1.0)


def _centred(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x - x.mean(-1, keepdim=True), dim=-1)


class LoudMouthExpert:
    """A constructed expert: a window's video embedding is its centred mean crop brightness per frame, its audio
    embedding the centred MFCC coefficient 0 (loudness) per frame (4 of the window's 20 MFCC frames each)."""

    crop_size = (6, 6)

    def embed_video(self, windows: torch.Tensor) -> torch.Tensor:
        return _centred(windows.mean(dim=(2, 3, 4)))

    def embed_audio(self, mfcc: torch.Tensor) -> torch.Tensor:
        return _centred(mfcc[:, 0, 0].unflatten(-1, (WINDOW, AUDIO_FRAMES // WINDOW)).mean(-1))


def _windows(loudness: torch.Tensor, starts: range) -> torch.Tensor:
    """MFCC inputs [N, 1, 13, 20] whose coefficient 0 is the loudness of the window's 5 frames."""
    mfcc = torch.zeros(len(starts), 1, 13, AUDIO_FRAMES)
    for n, i in enumerate(starts):
        mfcc[n, 0, 0] = loudness[i:i + WINDOW].repeat_interleave(AUDIO_FRAMES // WINDOW)
    return mfcc


def test_the_sync_loss_is_differentiable_and_low_only_in_sync():
    """Mouth brightness follows the loudness and noise surrounds the mouth: only crops of the right boxes, grouped
    into windows in frame order and scored against their own audio, give cosine 1 (loss 0)."""
    gen = torch.Generator().manual_seed(0)
    frames, size, box = 20, 32, (10, 16, 22, 26)
    loudness = torch.rand(frames, generator=gen)
    pixels = torch.rand(frames, 3, size, size, generator=gen) * 2 - 1
    x0, y0, x1, y1 = box
    pixels[:, :, y0:y1, x0:x1] = (loudness * 1.6 - 0.8)[:, None, None, None]
    pixels.requires_grad_(True)
    starts = range(0, frames - WINDOW + 1, WINDOW)
    video = pixels[[i + k for i in starts for k in range(WINDOW)]]
    boxes = torch.tensor(box).expand(len(video), 4)
    in_sync = expert_sync_loss(LoudMouthExpert(), video, boxes, _windows(loudness, starts))
    shifted = expert_sync_loss(LoudMouthExpert(), video, boxes, _windows(loudness.roll(2), starts))
    assert in_sync.item() < 1e-4 < 0.05 < shifted.item()
    shifted.backward()
    grad = pixels.grad
    assert torch.isfinite(grad).all() and grad[:, :, y0:y1, x0:x1].abs().sum() > 0
    grad[:, :, y0:y1, x0:x1] = 0
    assert not grad.any()  # nothing outside the mouth crops


def test_landmark_mouth_boxes_hold_the_recorded_mouth(detector, tmp_path):
    size = 96
    meta = load_synthetic_set(build_synthetic_set(tmp_path, num_clips=2, size=size, mp4=False))
    for clip in meta["clips"]:
        frames = np.load(clip["frames"])[::3]
        x0, y0, x1, y1 = clip_mouth_box(detector.detect(frames).points, frames.shape[1:])
        centre = clip["mouth_box"]
        assert x0 < centre["cx"] < x1 and y0 < centre["cy"] < y1, (clip["id"], (x0, y0, x1, y1), centre)
        assert x1 - x0 < 0.6 and y1 - y0 < 0.6  # the mouth, not the face
    with pytest.raises(Exception, match="no face in any of the 2 frames"):
        clip_mouth_box(np.full((2, 478, 2), np.nan), frames.shape[1:])
