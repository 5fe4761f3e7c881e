"""Reference data for distillation: rows of a reference artifact, split into training and held-out inputs,
streamed as shuffled micro-batches sharded per rank, with each clip's mouth box (from the input set or from face
landmarks)."""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import torch

from compress.errors import UserInputError
from compress.utils.arrays import decode_array


def stream_seed(*parts: int) -> int:
    """A well-mixed 31-bit generator seed for a tuple of ints (torch generators only use 32 bits of a seed)."""
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0]) >> 1


def split_rows(num_rows: int, holdout: int) -> tuple[list[int], list[int]]:
    """(training rows, held-out rows): the last `holdout` inputs are held out."""
    if not 0 <= holdout < num_rows:
        raise UserInputError(f"distill: holdout must be below the reference's {num_rows} inputs, got {holdout}")
    return list(range(num_rows - holdout)), list(range(num_rows - holdout, num_rows))


def stream_batches(rows: list[int], examples: Callable[[int], dict[str, torch.Tensor]], batch_size: int,
                   rank: int, world_size: int, seed: int, buffer_rows: int = 4) -> Iterator[dict[str, torch.Tensor]]:
    """Endless micro-batches: each epoch shuffles the rows (seeded), gives rank r every world_size-th row, loads
    `buffer_rows` rows at a time and yields shuffled batches of their examples (leftovers carry over)."""
    if len(rows) < world_size:
        raise UserInputError(f"distill: {len(rows)} training inputs cannot be shared by {world_size} processes")
    epoch, carry = 0, None
    while True:
        gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        mine = [rows[i] for i in torch.randperm(len(rows), generator=gen)[rank::world_size].tolist()]
        for start in range(0, len(mine), buffer_rows):
            pool = [examples(i) for i in mine[start:start + buffer_rows]]
            if carry is not None:
                pool.insert(0, carry)
            merged = {k: torch.cat([p[k] for p in pool]) for k in pool[0]}
            order = torch.randperm(len(next(iter(merged.values()))), generator=gen)
            full = len(order) // batch_size * batch_size
            for b in range(0, full, batch_size):
                yield {k: v[order[b:b + batch_size]] for k, v in merged.items()}
            carry = {k: v[order[full:]] for k, v in merged.items()}
        epoch += 1


def mouth_box_fractions(box: dict) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) around the lips from an input's relative mouth box (`InputClip.mouth_box`): the mouth's
    width plus a quarter each side, from half the jaw above the lip seam down to the chin."""
    x0, x1 = box["cx"] - 1.25 * box["half_width"], box["cx"] + 1.25 * box["half_width"]
    y0, y1 = box["cy"] - 0.5 * box["jaw"], box["cy"] + box["jaw"]
    return max(0.0, x0), max(0.0, y0), min(1.0, x1), min(1.0, y1)


def mouth_boxes(reference) -> dict[str, tuple[float, float, float, float]]:
    """Each input's mouth box from a `ReferenceArtifact`'s input set (its `mouth_box` entries)."""
    boxes = {clip_id: mouth_box_fractions(box) for clip_id, box in reference.mouth_boxes.items()}
    missing = [i for i in reference.rows["id"] if i not in boxes]
    if missing:
        raise UserInputError(f"distill losses.mouth_box: '{reference.inputs_file}' records no mouth_box for "
                             f"input(s) {', '.join(missing[:3])}; give a box [x0, y0, x1, y1] (fractions of the frame)")
    return boxes


ALTERNATIVES = "or use mouth_box: inputs (the input set's mouth_box entries) or a fixed box [x0, y0, x1, y1]"


def landmark_mouth_boxes(reference) -> dict[str, tuple[float, float, float, float]]:
    """Each input's mouth box from MediaPipe face landmarks on a `ReferenceArtifact`'s teacher frames
    (`compress.face.mouth.clip_mouth_box`: the lips' extent over the clip, padded)."""
    from compress.face.landmarks import LandmarkDetector, LandmarksUnavailable

    try:
        with LandmarkDetector() as detector:
            return {row["id"]: _landmark_box(detector, row) for row in reference.rows}
    except LandmarksUnavailable as err:
        raise UserInputError(f"distill losses.mouth_box: landmarks needs the face-landmark environment ({err}); "
                             f"{ALTERNATIVES}") from None


def _landmark_box(detector, row: dict) -> tuple[float, float, float, float]:
    from compress.face.mouth import clip_mouth_box

    frames = decode_array(row, "frames")
    try:
        return clip_mouth_box(detector.detect(frames).points, frames.shape[1:])
    except UserInputError as err:
        raise UserInputError(f"distill losses.mouth_box: landmarks: clip '{row['id']}': {err}; "
                             f"{ALTERNATIVES}") from None

