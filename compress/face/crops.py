"""Mouth (or face) crops per frame, stacked into sync windows of `WINDOW` consecutive frames.

Boxes are int [T, 4] (x0, y0, x1, y1) pixel bounds, x1 / y1 exclusive, one per frame: from landmarks
(`compress.face.mouth.mouth_boxes`), or from the synthetic set's relative `mouth_box` with
`boxes_from_mouth_box`.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch
import torch.nn.functional as F

from compress.data.faces import MouthBox
from compress.errors import UserInputError

from .mfcc import WINDOW


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
