"""Mouth boxes per frame of a reference's teacher frames, as the sync expert crops them: from the input set's
relative mouth boxes (`ReferenceArtifact.mouth_boxes`) where given, else from face landmarks of the frames."""

from __future__ import annotations

import contextlib
from typing import Iterator, Literal

import numpy as np

from compress.errors import UserInputError
from compress.face.crops import boxes_from_mouth_box
from compress.face.landmarks import LandmarkDetector
from compress.face.mouth import mouth_boxes
from compress.utils.arrays import decode_array

#: inputs: the input set's mouth_box entries; landmarks: face landmarks; auto: mouth_box where given, else landmarks
MouthSource = Literal["auto", "inputs", "landmarks"]


def mouth_tracks(reference, mouth: MouthSource = "auto") -> Iterator[tuple[dict, np.ndarray, np.ndarray]]:
    """(row, frames uint8 [T, H, W, 3], mouth boxes int [T, 4]) of each row of a `ReferenceArtifact`, the boxes
    chosen by `mouth` (the sync_expert stage's setting; the distill stage's sync loss crops the same way)."""
    boxes_by_id = {} if mouth == "landmarks" else reference.mouth_boxes
    with contextlib.ExitStack() as stack:
        detector = None
        for row in reference.rows:
            frames = decode_array(row, "frames")
            if row["id"] in boxes_by_id:
                boxes = boxes_from_mouth_box(boxes_by_id[row["id"]], *frames.shape[1:3], len(frames))
            else:
                detector = detector or stack.enter_context(_detector(row["id"], mouth))
                boxes = mouth_boxes(detector.detect(frames).points, frames.shape[1:])
            yield row, frames, boxes


def _detector(clip_id: str, mouth: MouthSource) -> LandmarkDetector:
    """A face-landmark detector (its start says how to set the environment up when it is missing)."""
    if mouth == "inputs":
        raise UserInputError(f"sync_expert: clip '{clip_id}' has no mouth_box in its input set "
                             f"(mouth: inputs); use mouth: landmarks or auto")
    return LandmarkDetector()
