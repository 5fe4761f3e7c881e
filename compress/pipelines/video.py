"""Pixels in and out of the S2V pipeline: reference image preparation, output size, writing videos."""

from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from PIL import Image

from .audio import SAMPLE_RATE

UPSTREAM_SIZE_MULTIPLE = 64  # of sides fitted to an area: the 4x8x8 frame-pack kernel then covers every latent
# the least multiple the model takes (VAE stride 8 x 2x2 patches); on sides that are not multiples of 64 the 4x
# frame-pack bucket skips the latents past its last whole 8x8 block, as upstream's convolution would
MIN_SIZE_MULTIPLE = 16


def load_image(image: Image.Image | np.ndarray | str | Path) -> Image.Image:
    if isinstance(image, (str, Path)):
        image = Image.open(image)
    elif isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    return image.convert("RGB")


def size_for_area(height: int, width: int, max_area: int, divisor: int = UPSTREAM_SIZE_MULTIPLE) -> tuple[int, int]:
    """Upstream `get_size_less_than_area`: the largest scale of (height, width) whose sides, rounded up to
    multiples of `divisor`, fit in `max_area`."""
    if height * width <= max_area:
        low, high = 0.1, 1.0
    else:
        d = divisor - 1
        a, b, c = height * width, d * (height + width), d * d - max_area
        low, high = (-b + math.sqrt(b * b - 2 * a * c)) / (2 * a), math.sqrt(max_area / (height * width))
    for i in range(100):
        scale = high - (high - low) * i / 100
        h, w = (-(-int(side * scale) // divisor) * divisor for side in (height, width))
        if h * w <= max_area:
            return h, w
    ratio = width / height
    h, w = (int(math.sqrt(max_area / ratio) // divisor * divisor), int(math.sqrt(max_area * ratio) // divisor * divisor))
    if w >= width or h >= height:
        h, w = height // divisor * divisor, width // divisor * divisor
    return h, w


def prepare_image(image: Image.Image, height: int, width: int) -> torch.Tensor:
    """Resize the shorter side to min(height, width), centre-crop (zero-padding if short): [1, 3, 1, H, W] in [-1, 1]."""
    short = min(height, width)
    if image.width <= image.height:
        size = (short, int(short * image.height / image.width))
    else:
        size = (int(short * image.width / image.height), short)
    pixels = np.asarray(image.resize(size, Image.BILINEAR), np.float32) / 127.5 - 1.0
    canvas = np.zeros((max(height, size[1]), max(width, size[0]), 3), np.float32)
    top, left = (canvas.shape[0] - size[1]) // 2, (canvas.shape[1] - size[0]) // 2
    canvas[top : top + size[1], left : left + size[0]] = pixels
    top, left = round((canvas.shape[0] - height) / 2), round((canvas.shape[1] - width) / 2)
    crop = canvas[top : top + height, left : left + width]
    return torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1)[None, :, None]


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """[3, T, H, W] in [-1, 1] -> uint8 [T, H, W, 3]."""
    return ((video.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 3, 0).cpu().numpy()


@dataclass(frozen=True)
class WrittenVideo:
    path: Path
    format: str  # "mp4" (video + audio track) or "png+wav" (a folder of frames and audio.wav)


def write_video(frames: np.ndarray, audio: np.ndarray | None, path: str | Path, fps: int = 16) -> WrittenVideo:
    """uint8 [T, H, W, 3] frames (+ 16 kHz audio) as an mp4 when ffmpeg is on PATH, else as a folder
    `path` without suffix holding frame_00000.png ... and audio.wav."""
    path = Path(path)
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    if shutil.which("ffmpeg"):
        path = path.with_suffix(".mp4")
        path.parent.mkdir(parents=True, exist_ok=True)
        t, h, w, _ = frames.shape
        with tempfile.TemporaryDirectory() as tmp:
            cmd = ["ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
                   "-r", str(fps), "-i", "-"]
            if audio is not None:
                sf.write(Path(tmp) / "audio.wav", audio, SAMPLE_RATE, subtype="PCM_16")
                cmd += ["-i", str(Path(tmp) / "audio.wav"), "-c:a", "aac", "-shortest"]
            cmd += ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18", str(path)]
            subprocess.run(cmd, input=frames.tobytes(), check=True)
        return WrittenVideo(path, "mp4")
    folder = path.with_suffix("")
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"frame_{i:05d}.png")
    if audio is not None:
        sf.write(folder / "audio.wav", audio, SAMPLE_RATE, subtype="PCM_16")
    return WrittenVideo(folder, "png+wav")
