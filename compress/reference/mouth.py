"""Mouth boxes per frame of a reference's teacher frames, as the sync expert crops them: from the input set's
relative mouth boxes (`ReferenceArtifact.mouth_boxes`) where given, else from face landmarks of the frames."""

from __future__ import annotations

from typing import Iterator, Literal

import numpy as np

from compress.errors import UserInputError
from compress.face.crops import mouth_boxer
from compress.utils.arrays import decode_array

#: inputs: the input set's mouth_box entries; landmarks: face landmarks; auto: mouth_box where given, else landmarks
MouthSource = Literal["auto", "inputs", "landmarks"]


def mouth_tracks(reference, mouth: MouthSource = "auto") -> Iterator[tuple[dict, np.ndarray, np.ndarray]]:
    """(row, frames uint8 [T, H, W, 3], mouth boxes int [T, 4]) of each row of a `ReferenceArtifact`, the boxes
    chosen by `mouth` (the sync_expert stage's setting; the distill stage's sync loss crops the same way)."""
    boxes_by_id = {} if mouth == "landmarks" else reference.mouth_boxes
    with mouth_boxer() as boxes:
        for row in reference.rows:
            frames = decode_array(row, "frames")
            if mouth == "inputs" and row["id"] not in boxes_by_id:
                raise UserInputError(f"sync_expert: clip '{row['id']}' has no mouth_box in its input set "
                                     f"(mouth: inputs); use mouth: landmarks or auto")
            yield row, frames, boxes(frames, boxes_by_id.get(row["id"]))
