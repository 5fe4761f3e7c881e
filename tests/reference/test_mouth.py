"""Mouth tracks of a reference: the input set's mouth boxes scaled to each frame (auto and inputs agree where the
set gives them); without a box, `mouth: inputs` says which clip lacks one."""

import numpy as np
import pytest

from compress.errors import UserInputError
from compress.face.crops import boxes_from_mouth_box
from compress.reference import ReferenceArtifact
from compress.reference.mouth import mouth_tracks


def test_boxes_from_the_input_set(run):
    _, result = run
    reference = ReferenceArtifact(result["ref"])
    tracks = list(mouth_tracks(reference, "inputs"))
    assert [row["id"] for row, _, _ in tracks] == reference.rows["id"]
    for (row, frames, boxes), (_, _, auto) in zip(tracks, mouth_tracks(reference, "auto")):
        assert frames.shape == (8, 64, 64, 3) and boxes.shape == (8, 4)
        assert np.array_equal(boxes, boxes_from_mouth_box(reference.mouth_boxes[row["id"]], 64, 64, 8))
        assert np.array_equal(boxes, auto)


def test_inputs_without_a_mouth_box_are_named(run):
    _, result = run
    reference = ReferenceArtifact(result["ref"])
    reference.mouth_boxes.pop("train-001")
    with pytest.raises(UserInputError, match="clip 'train-001' has no mouth_box"):
        list(mouth_tracks(reference, "inputs"))
