"""The talking clip that lip-sync models score: frames, the audio under them and a mouth (or face) box per frame."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compress.data.faults import shift


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
