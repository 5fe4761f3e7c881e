"""Mouth geometry on face-mesh points: opening, inter-ocular distance, crop boxes."""

import numpy as np
import pytest

from compress.errors import UserInputError
from compress.face.mouth import MOUTH_POINTS, inter_ocular, mouth_boxes, mouth_opening
from tests.face.meshes import schematic_mesh


def test_mouth_measurements_on_known_geometry():
    points = np.stack([schematic_mesh(2.0), schematic_mesh(10.0, shift=(5, -3)), np.full((478, 2), np.nan)])
    np.testing.assert_allclose(mouth_opening(points)[:2], [0.1, 0.5])
    assert np.isnan(mouth_opening(points)[2])
    np.testing.assert_allclose(inter_ocular(points)[:2], [40.0, 40.0])
    boxes = mouth_boxes(points, (100, 120, 3), margin=0.5)
    assert boxes.dtype == np.int64 and boxes.shape == (3, 4)
    centre = points[0, MOUTH_POINTS].mean(axis=0)  # side 2 * 20 px around the lips' centre
    np.testing.assert_array_equal(boxes[0], [np.floor(centre[0] - 20), np.floor(centre[1] - 20),
                                             np.ceil(centre[0] + 20) + 1, np.ceil(centre[1] + 20) + 1])
    np.testing.assert_array_equal(boxes[2], boxes[1])  # no face: the nearest frame's box
    tiny = mouth_boxes(points[:1] * 3, (100, 120, 3))  # off the right / bottom edge: clipped, never empty
    assert (tiny[:, 2] <= 120).all() and (tiny[:, 3] <= 100).all() and (tiny[:, :2] < tiny[:, 2:]).all()


def test_mouth_measurements_refuse_bad_input():
    with pytest.raises(UserInputError, match=r"\[T, 478, 2\]"):
        mouth_opening(np.zeros((4, 68, 2)))
    with pytest.raises(UserInputError, match="no face in any of the 2 frames"):
        mouth_boxes(np.full((2, 478, 2), np.nan), (64, 64, 3))
