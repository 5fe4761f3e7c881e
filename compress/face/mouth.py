"""Mouth measurements from MediaPipe face-mesh landmarks (points [T, 478, 2], NaN where no face).

Indices are MediaPipe's canonical face-mesh numbering (``FACEMESH_LIPS``, eye corners).
"""

from __future__ import annotations

import numpy as np

from compress.errors import UserInputError

# (upper, lower) inner-lip pairs around the centre of the mouth; their mean gap is the opening
INNER_LIP_PAIRS = ((82, 87), (13, 14), (312, 317))
INNER_CORNERS = (78, 308)
OUTER_CORNERS = (61, 291)
OUTER_EYE_CORNERS = (33, 263)  # inter-ocular distance: outer eye corners, as in 300-W normalisation
OUTER_LIPS = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 185, 40, 39, 37, 0, 267, 269, 270, 409)
INNER_LIPS = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 191, 80, 81, 82, 13, 312, 311, 310, 415)
MOUTH_POINTS = OUTER_LIPS + INNER_LIPS


def _points(points) -> np.ndarray:
    p = np.asarray(points, np.float64)
    if p.ndim != 3 or p.shape[1:] != (478, 2):
        raise UserInputError(f"landmarks: expected [T, 478, 2] face-mesh points, got {list(p.shape)}")
    return p


def _distance(p: np.ndarray, a: int, b: int) -> np.ndarray:
    return np.linalg.norm(p[:, a] - p[:, b], axis=-1)


def mouth_opening(points) -> np.ndarray:
    """[T] inner-lip gap over inner mouth width (scale-free; ~0.15 closed on our faces); NaN without a face."""
    p = _points(points)
    gap = np.mean([_distance(p, a, b) for a, b in INNER_LIP_PAIRS], axis=0)
    return gap / _distance(p, *INNER_CORNERS)


def inter_ocular(points) -> np.ndarray:
    """[T] distance between the outer eye corners, in pixels."""
    return _distance(_points(points), *OUTER_EYE_CORNERS)


def mouth_boxes(points, frame_shape, margin: float = 0.4) -> np.ndarray:
    """int [T, 4] (x0, y0, x1, y1), x1 / y1 exclusive: squares around the lips, clipped to the frame.

    The side is the outer mouth width times (1 + 2 * margin), centred on the mean lip point. Frames
    without a face take the box of the nearest frame with one; a clip without any face is an error.
    frame_shape: (H, W, ...) of the frames.
    """
    p = _points(points)
    height, width = int(frame_shape[0]), int(frame_shape[1])
    found = ~np.isnan(p).any(axis=(1, 2))
    if not found.any():
        raise UserInputError(f"mouth_boxes: no face in any of the {len(p)} frames")
    nearest = np.flatnonzero(found)[np.abs(np.arange(len(p))[:, None] - np.flatnonzero(found)[None]).argmin(1)]
    p = p[nearest]
    centre = p[:, MOUTH_POINTS].mean(axis=1)
    half = 0.5 * (1 + 2 * margin) * _distance(p, *OUTER_CORNERS)
    x0 = np.clip(np.floor(centre[:, 0] - half), 0, width - 1)
    y0 = np.clip(np.floor(centre[:, 1] - half), 0, height - 1)
    x1 = np.clip(np.ceil(centre[:, 0] + half) + 1, x0 + 1, width)
    y1 = np.clip(np.ceil(centre[:, 1] + half) + 1, y0 + 1, height)
    return np.stack([x0, y0, x1, y1], axis=1).astype(np.int64)


def clip_mouth_box(points, frame_shape, margin: float = 0.25, percentile: float = 5.0) -> tuple[float, ...]:
    """(x0, y0, x1, y1) in fractions of the frame: where the lips are over a whole clip.

    The extent of the lip landmarks in each frame with a face, over the clip from the `percentile` of the lower
    edges to the (100 - `percentile`) of the upper edges (robust to a few misplaced frames), padded by `margin`
    times the median mouth width on every side and clipped to the frame. A clip without any face is an error.
    frame_shape: (H, W, ...) of the frames.
    """
    p = _points(points)[:, MOUTH_POINTS]
    p = p[~np.isnan(p).any(axis=(1, 2))]
    if not len(p):
        raise UserInputError(f"no face in any of the {len(points)} frames")
    low = np.percentile(p.min(axis=1), percentile, axis=0)
    high = np.percentile(p.max(axis=1), 100 - percentile, axis=0)
    pad = margin * np.median(np.ptp(p[..., 0], axis=1))
    size = np.array([frame_shape[1], frame_shape[0]], np.float64)
    centre = 0.5  # landmark pixel centres are at integers; fractions measure from the frame's edge
    (x0, y0), (x1, y1) = (np.clip((edge + centre) / size, 0, 1) for edge in (low - pad, high + pad))
    return float(x0), float(y0), float(x1), float(y1)
