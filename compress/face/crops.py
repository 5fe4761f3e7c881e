"""Mouth (or face) crops per frame, stacked into sync windows of `WINDOW` consecutive frames.

Boxes are int [T, 4] (x0, y0, x1, y1) pixel bounds, x1 / y1 exclusive, one per frame: from landmarks
(`compress.face.mouth.mouth_boxes`), or from the synthetic set's relative `mouth_box` with
`boxes_from_mouth_box`.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from compress.data.faces import MouthBox
from compress.errors import UserInputError

from .landmarks import LandmarkDetector
from .mfcc import WINDOW
from .mouth import mouth_boxes


def boxes_from_mouth_box(box: MouthBox | Mapping, height: int, width: int, num_frames: int) -> np.ndarray:
    """Pixel boxes [T, 4] around the region the synthetic mouth moves in (relative `MouthBox` geometry)."""
    b = box if isinstance(box, MouthBox) else MouthBox(**box)
    hw, cx, cy, jaw = b.half_width * width, b.cx * width, b.cy * height, b.jaw * height
    x0, x1 = cx - 1.6 * hw, cx + 1.6 * hw
    y0, y1 = cy - b.smile * height - 0.4 * hw, cy + jaw + 0.6 * hw
    row = [max(int(np.floor(x0)), 0), max(int(np.floor(y0)), 0),
           min(int(np.ceil(x1)), width), min(int(np.ceil(y1)), height)]
    return np.tile(np.asarray(row, np.int64), (num_frames, 1))


def full_frame_boxes(num_frames: int, height: int, width: int) -> np.ndarray:
    return np.tile(np.asarray([0, 0, width, height], np.int64), (num_frames, 1))


@contextlib.contextmanager
def mouth_boxer() -> Iterator[Callable[..., np.ndarray]]:
    """`boxes(frames, mouth_box=None)` -> int [T, 4] mouth boxes of uint8 frames [T, H, W, 3]: from the relative
    `mouth_box` where given, else from face landmarks of the frames (a detector started on first need, closed
    on exit)."""
    with contextlib.ExitStack() as stack:
        detector = None

        def boxes(frames: np.ndarray, mouth_box: MouthBox | Mapping | None = None) -> np.ndarray:
            nonlocal detector
            if mouth_box is not None:
                return boxes_from_mouth_box(mouth_box, *frames.shape[1:3], len(frames))
            detector = detector or stack.enter_context(LandmarkDetector())
            return mouth_boxes(detector.detect(frames).points, frames.shape[1:])

        yield boxes


def check_clip(frames: np.ndarray, boxes: np.ndarray) -> None:
    """Refuse frames that are not uint8 [T, H, W, 3] and boxes that are not valid int [T, 4] inside them."""
    frames, boxes = np.asarray(frames), np.asarray(boxes)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3:
        raise UserInputError(f"frames: expected uint8 [T, H, W, 3], got {frames.dtype} {list(frames.shape)}")
    if boxes.shape != (len(frames), 4) or not np.issubdtype(boxes.dtype, np.integer):
        raise UserInputError(f"boxes: expected int [{len(frames)}, 4] (x0, y0, x1, y1), got {boxes.dtype} "
                             f"{list(boxes.shape)}")
    height, width = frames.shape[1:3]
    bad = (boxes[:, 0] < 0) | (boxes[:, 1] < 0) | (boxes[:, 2] > width) | (boxes[:, 3] > height) | \
          (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise UserInputError(f"boxes: frame {i} has {boxes[i].tolist()}, not a non-empty box inside "
                             f"{width}x{height} ({int(bad.sum())} bad frames)")


def crop_frames(frames: np.ndarray, boxes: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """Crops resized to `size` (height, width): float32 [T, 3, h, w] RGB in 0..255 (bilinear, antialiased)."""
    check_clip(frames, boxes)
    return crop_pixels((torch.from_numpy(np.array(f)).permute(2, 0, 1).float() for f in frames), boxes, size)


def crop_pixels(images, boxes, size: tuple[int, int]) -> torch.Tensor:
    """[T, C, h, w] crops of images [C, H, W] (a [T, C, H, W] tensor or an iterable) at int boxes [T, 4] (x0, y0,
    x1, y1), resized to `size` (bilinear, antialiased); differentiable with respect to the images."""
    crops = [F.interpolate(image[None, :, y0:y1, x0:x1], size=size, mode="bilinear", antialias=True,
                           align_corners=False)
             for image, (x0, y0, x1, y1) in zip(images, torch.as_tensor(boxes).tolist())]
    return torch.cat(crops)


def stack_windows(items: torch.Tensor, count: int) -> torch.Tensor:
    """[count, WINDOW, ...] of per-frame items [T, ...]: window i holds items i .. i + WINDOW - 1."""
    if count < 1 or count + WINDOW - 1 > len(items):
        raise UserInputError(f"a sync window needs {WINDOW} frames with audio under them; have {len(items)} "
                             f"frames for {count} windows")
    return items.unfold(0, WINDOW, 1)[:count].movedim(-1, 1)
