"""Landmark test material without MediaPipe: a schematic face mesh and a detector double that reads the mouth
opening from the frames' pixel values."""

import numpy as np

from compress.face.landmarks import FaceTracks


def schematic_mesh(gap: float, shift=(0.0, 0.0)) -> np.ndarray:
    """[478, 2] face-mesh points of a schematic face: inner mouth 20 px wide, inner-lip gap `gap` px,
    outer eye corners 40 px apart; every other point at the mouth centre (50, 60) + `shift`."""
    p = np.zeros((478, 2))
    p[:, 0], p[:, 1] = 50.0, 60.0
    p[[78, 61], 0], p[[308, 291], 0] = 40.0, 60.0
    for upper, lower in ((82, 87), (13, 14), (312, 317)):
        p[upper, 1], p[lower, 1] = 60.0 - gap / 2, 60.0 + gap / 2
    p[33], p[263] = (30.0, 30.0), (70.0, 30.0)
    return p + np.asarray(shift)


class PixelCodedDetector:
    """Test double of `LandmarkDetector` for exact checks without MediaPipe: frame t's first pixel value v
    encodes a mouth opening of v / 200 (a schematic mesh); v = 255 means no face."""

    def detect(self, frames: np.ndarray) -> FaceTracks:
        values = np.asarray(frames)[:, 0, 0, 0].astype(np.float64)
        points = np.stack([schematic_mesh(20 * v / 200) for v in values])
        points[values == 255] = np.nan
        return FaceTracks(points=points.astype(np.float32), found=values != 255)
