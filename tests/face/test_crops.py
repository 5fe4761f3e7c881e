"""Mouth crops per frame and the sync windows stacked from them."""

import numpy as np
import pytest
import torch

from compress.data.faces import IDENTITIES
from compress.errors import UserInputError
from compress.face.crops import boxes_from_mouth_box, crop_frames, stack_windows


def test_mouth_crops_follow_the_boxes():
    identity = IDENTITIES[0]
    frames = np.zeros((7, 64, 64, 3), np.uint8)
    boxes = boxes_from_mouth_box(identity.mouth_box, 64, 64, 7)
    x0, y0, x1, y1 = boxes[0]
    assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64 and (x1 - x0) > 20  # about the mouth's width and more
    frames[3, y0:y1, x0:x1] = 200
    crops = crop_frames(frames, boxes, (24, 32))
    assert crops.shape == (7, 3, 24, 32) and crops[3].min() == pytest.approx(200) and crops[2].max() == 0
    windows = stack_windows(crops, 3)
    assert windows.shape == (3, 5, 3, 24, 32) and torch.equal(windows[1, 2], crops[3])


def test_bad_boxes_name_the_frame():
    frames = np.zeros((4, 32, 32, 3), np.uint8)
    boxes = np.tile([2, 2, 20, 20], (4, 1))
    boxes[2] = [10, 10, 40, 20]
    with pytest.raises(UserInputError, match=r"frame 2 has \[10, 10, 40, 20\].*32x32"):
        crop_frames(frames, boxes, (8, 8))
    with pytest.raises(UserInputError, match=r"expected int \[4, 4\]"):
        crop_frames(frames, boxes[:3], (8, 8))
