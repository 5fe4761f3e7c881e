"""Degraded variants of a talking clip with known, labelled faults (validation data for lip-sync metrics).

Sign convention of ``shift``: ``k > 0`` makes the video late (frame t shows the mouth of
t - k), ``k < 0`` early; the ends are padded by repeating the edge frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import gaussian_filter

from .faces import MouthBox
from .talking import DEFAULT_MOUTH_BOX, render_talking_clip

FAULT_NAMES = ("shift", "scale_amplitude", "frozen", "blur", "wrong_audio")


@dataclass(frozen=True)
class Fault:
    """A fault and its parameters, e.g. Fault("shift", {"frames": 3})."""

    name: str
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.name not in FAULT_NAMES:
            raise ValueError(f"unknown fault {self.name!r}; known: {', '.join(FAULT_NAMES)}")

    @property
    def tag(self) -> str:
        """Folder-safe label, e.g. "shift_+3", "scale_amplitude_0.5", "blur_mouth_1.5"."""
        parts = [f"{v:+d}" if self.name == "shift" else str(v) for v in self.params.values()]
        return "_".join([self.name, *parts])

    def to_dict(self) -> dict:
        return {"name": self.name, "params": dict(self.params), "tag": self.tag}


DEFAULT_FAULTS = (
    Fault("shift", {"frames": 1}),
    Fault("shift", {"frames": 3}),
    Fault("shift", {"frames": -2}),
    Fault("scale_amplitude", {"factor": 0.5}),
    Fault("frozen", {"level": 0.5}),
    Fault("frozen", {"level": 0.0}),
    Fault("blur", {"region": "mouth", "sigma": 1.5}),
    Fault("blur", {"region": "frame", "sigma": 1.0}),
    Fault("wrong_audio", {}),
)


def shift(clip: np.ndarray, k: int) -> np.ndarray:
    """out[t] = clip[clamp(t - k)]: the video lags the audio by k frames (edge-repeat padding)."""
    idx = np.clip(np.arange(len(clip)) - int(k), 0, len(clip) - 1)
    return clip[idx]


def scale_amplitude(schedule: np.ndarray, factor: float) -> np.ndarray:
    return (np.asarray(schedule, np.float32) * np.float32(factor)).clip(0, 1)


def frozen(schedule: np.ndarray, level: float) -> np.ndarray:
    return np.full(len(schedule), level, np.float32)


def blur(clip: np.ndarray, sigma: float, mouth_box: MouthBox | None = None) -> np.ndarray:
    """Gaussian blur of every frame, or only of a soft-edged region around the mouth if `mouth_box`."""
    x = clip.astype(np.float32)
    blurred = gaussian_filter(x, sigma=(0, sigma, sigma, 0), mode="nearest")
    if mouth_box is not None:
        height, width = clip.shape[1:3]
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        dx = (xx - (mouth_box.cx * width - 0.5)) / (1.6 * mouth_box.half_width * width)
        dy = (yy - (mouth_box.cy * height - 0.5 + 0.3 * mouth_box.jaw * height)) / (1.2 * mouth_box.jaw * height)
        weight = np.clip(1.5 - np.hypot(dx, dy), 0, 1)[None, :, :, None]  # 1 inside, fades to 0
        blurred = weight * blurred + (1 - weight) * x
    return np.clip(np.rint(blurred), 0, 255).astype(np.uint8)


def apply_fault(fault: Fault, face: np.ndarray, schedule: np.ndarray, audio: np.ndarray,
                mouth_box: MouthBox = DEFAULT_MOUTH_BOX, other_audio: np.ndarray | None = None,
                clip: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(frames, audio) of the faulty variant. `clip` is the clean render (made if not given);
    `other_audio` (another sentence, same length) is needed for "wrong_audio"."""
    p = fault.params
    if fault.name == "scale_amplitude":
        return render_talking_clip(face, scale_amplitude(schedule, p["factor"]), mouth_box), audio
    if fault.name == "frozen":
        return render_talking_clip(face, frozen(schedule, p["level"]), mouth_box), audio
    clip = render_talking_clip(face, schedule, mouth_box) if clip is None else clip
    if fault.name == "shift":
        return shift(clip, p["frames"]), audio
    if fault.name == "blur":
        return blur(clip, p["sigma"], mouth_box if p.get("region", "frame") == "mouth" else None), audio
    if other_audio is None or len(other_audio) != len(audio):
        raise ValueError("wrong_audio needs other_audio of the same length as audio")
    return clip, other_audio
