"""Face landmarks (MediaPipe face mesh, 478 points) from a separate Python environment.

MediaPipe's face-mesh models ship only inside ``mediapipe==0.10.21``, which needs numpy<2 and
protobuf<5, so it lives in its own virtual environment (``scripts/setup_landmarks.sh`` makes
``.venv-landmarks``) and runs as a persistent worker process (``_landmark_worker.py``) that this module
drives over a pipe. ``COMPRESS_LANDMARK_PYTHON`` names another interpreter with mediapipe 0.10.21.

Detection is per frame in static-image mode (deterministic, no temporal smoothing). Identical frames
give identical landmarks, so results are cached by frame content: repeated teacher frames, shifted or
frozen clips cost nothing the second time.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compress.errors import CompressError, UserInputError

NUM_POINTS = 478
ENV_VAR = "COMPRESS_LANDMARK_PYTHON"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PYTHON = REPO_ROOT / ".venv-landmarks" / "bin" / "python"
WORKER = Path(__file__).with_name("_landmark_worker.py")
SETUP_HINT = (f"run `bash scripts/setup_landmarks.sh` (creates .venv-landmarks with mediapipe==0.10.21), "
              f"or set {ENV_VAR} to a python that has mediapipe==0.10.21")


class LandmarksUnavailable(CompressError):
    """The landmark environment is missing or its worker does not start."""


@dataclass(frozen=True)
class FaceTracks:
    """Landmarks of one clip: `points` float32 [T, 478, 2] pixel (x, y), NaN where `found` [T] is False."""

    points: np.ndarray
    found: np.ndarray

    def __len__(self) -> int:
        return len(self.found)


def landmark_python() -> Path:
    """The interpreter of the landmark environment (``$COMPRESS_LANDMARK_PYTHON`` or ``.venv-landmarks``)."""
    return Path(os.environ.get(ENV_VAR) or DEFAULT_PYTHON)


class LandmarkDetector:
    """MediaPipe face mesh in a worker process, started on first use; use as a context manager.

    min_side: frames whose shorter side is smaller are upscaled before detection (64 px faces are found,
    but their landmarks are coarse). chunk: frames per request. cache_frames: frames remembered by content.
    """

    def __init__(self, python: str | Path | None = None, min_side: int = 256, chunk: int = 32,
                 cache_frames: int = 8192):
        self.python = Path(python) if python is not None else landmark_python()
        self.min_side, self.chunk, self.cache_frames = int(min_side), int(chunk), int(cache_frames)
        self.version: str | None = None
        self._proc: subprocess.Popen | None = None
        self._stderr = None
        self._cache: OrderedDict[bytes, np.ndarray] = OrderedDict()

    def __enter__(self) -> "LandmarkDetector":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        """Start the worker (once); `LandmarksUnavailable` says how to set the environment up."""
        if self._proc is not None and self._proc.poll() is None:
            return
        if not self.python.is_file():
            raise LandmarksUnavailable(f"face landmarks need a Python with MediaPipe, not found at {self.python}: "
                                       f"{SETUP_HINT}")
        self._stderr = tempfile.TemporaryFile()
        env = {**os.environ, "GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "2"}
        self._proc = subprocess.Popen([str(self.python), "-I", str(WORKER), "--min-side", str(self.min_side)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, env=env)
        header = self._read_header()
        if not header.get("ready"):
            self.close()
            raise LandmarksUnavailable(f"landmark worker ({self.python}) did not start: {header}; {SETUP_HINT}")
        self.version = header.get("mediapipe")

    def close(self) -> None:
        """Stop the worker (it exits at end of input)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                proc.stdin.close()
                proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()
            proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def detect(self, frames: np.ndarray) -> FaceTracks:
        """Landmarks of uint8 RGB frames [T, H, W, 3], each frame detected on its own."""
        frames = np.asarray(frames)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3:
            raise UserInputError(f"frames: expected uint8 [T, H, W, 3] RGB, got {frames.dtype} {list(frames.shape)}")
        keys = [hashlib.sha1(np.ascontiguousarray(f).data).digest() + repr(f.shape).encode() for f in frames]
        known = {k: self._cache[k] for k in keys if k in self._cache}
        todo = list(dict.fromkeys(k for k in keys if k not in known))  # unique, uncached, in order
        first = {k: i for i, k in reversed(list(enumerate(keys)))}
        for start in range(0, len(todo), self.chunk):
            batch = todo[start:start + self.chunk]
            known.update(zip(batch, self._request(frames[[first[k] for k in batch]])))
        for key in dict.fromkeys(keys):
            self._remember(key, known[key])
        points = np.stack([known[k] for k in keys]) if keys else np.zeros((0, NUM_POINTS, 2), np.float32)
        return FaceTracks(points=points, found=~np.isnan(points).any(axis=(1, 2)))

    def _remember(self, key: bytes, points: np.ndarray) -> None:
        self._cache[key] = points
        self._cache.move_to_end(key)
        while len(self._cache) > self.cache_frames:
            self._cache.popitem(last=False)

    def _request(self, frames: np.ndarray) -> np.ndarray:
        self.start()
        t, h, w, _ = frames.shape
        try:
            self._proc.stdin.write(json.dumps({"frames": t, "height": h, "width": w}).encode() + b"\n")
            self._proc.stdin.write(np.ascontiguousarray(frames).tobytes())
            self._proc.stdin.flush()
        except BrokenPipeError:
            pass  # the worker died; _read_header reports why
        header = self._read_header()
        if not header.get("ok"):
            raise CompressError(f"landmark worker failed: {header.get('error', header)}")
        data = self._proc.stdout.read(t * NUM_POINTS * 2 * 4)
        return np.frombuffer(data, np.float32).reshape(t, NUM_POINTS, 2).copy()

    def _read_header(self) -> dict:
        line = self._proc.stdout.readline()
        if not line:
            code = self._proc.wait()
            self._stderr.seek(0)
            tail = self._stderr.read().decode(errors="replace").strip()[-2000:]
            self.close()
            raise LandmarksUnavailable(f"landmark worker ({self.python}) exited with code {code}: "
                                       f"{tail or 'no message'}; {SETUP_HINT}")
        return json.loads(line)
