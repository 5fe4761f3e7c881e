"""Shared evaluation fixtures (session-scoped, read-only for every test that uses them).

- `synthetic_set`: the built-in synthetic talking-face set with `DEFAULT_FAULTS`, 3 clips at 96 px
  (`load_synthetic_set` output: absolute paths, each clip's `variants` keyed in order of the faults),
  plus "path" (its inputs.yaml). 96 px rather than 64: the faults' blur sigmas are in pixels, and at
  64 px a 1-pixel frame blur already fools the face mesh (it reads the dark open mouth as closed lips).
- `detector` (tests/conftest.py): one `LandmarkDetector` for the session.
"""

import numpy as np
import pytest

from compress.data import DEFAULT_FAULTS, build_synthetic_set, load_synthetic_set
from compress.evaluate.landmarks import FaceTracks

SET_CLIPS, SET_SIZE = 3, 96


@pytest.fixture(scope="session")
def synthetic_set(tmp_path_factory):
    path = build_synthetic_set(tmp_path_factory.mktemp("synthetic"), num_clips=SET_CLIPS, size=SET_SIZE,
                               faults=DEFAULT_FAULTS, mp4=False)
    return {**load_synthetic_set(path), "path": str(path)}


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
