"""Reference faces: crops of ``skimage.data.astronaut()`` (ships inside scikit-image, offline).

Coordinates below are in the 512x512 astronaut image, pixel centres at integers. They were
found once and hard-coded: the face box by ``skimage.feature.Cascade`` with
``data.lbp_frontal_face_cascade_filename()`` (r=66, c=174, 96x96), the mouth by eye on a
zoomed crop (she smiles: upper teeth show; the "seam" is the teeth / lower-lip boundary).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

FACE_BOX = (174, 66, 96, 96)  # x, y, width, height (LBP cascade)
MOUTH_CENTER_X, MOUTH_SEAM_Y = 223.5, 149.0  # centre of the lip line
MOUTH_HALF_WIDTH = 20.5  # corners at x ~ 203 and ~ 244
SMILE_RISE = 7.0  # the seam rises ~7 px towards the corners (roughly as the 4th power of the offset)
CHIN_Y = 170.0
_IMAGE_SIDE = 512


@dataclass(frozen=True)
class MouthBox:
    """Mouth geometry as fractions of the face crop (x of width, y of height), so it scales with size.

    cx, cy: centre of the lip seam; half_width: half the mouth width; jaw: seam-to-chin distance;
    smile: how far the seam rises at the mouth corners.
    A fraction f maps to pixel coordinate f * size - 0.5 (pixel centres at integers).
    """

    cx: float
    cy: float
    half_width: float
    jaw: float
    smile: float = 0.0


@dataclass(frozen=True)
class Identity:
    """A square crop of the (optionally mirrored) astronaut image with a colour transform."""

    name: str
    x0: int  # crop origin and side in the (mirrored) 512x512 image
    y0: int
    side: int
    mirror: bool = False
    hue_shift: float = 0.0  # in turns (1.0 = 360 degrees)
    saturation: float = 1.0
    gain: tuple[float, float, float] = (1.0, 1.0, 1.0)  # per-channel multiplier after the hue shift

    def image(self, size: int = 64) -> np.ndarray:
        """Neutral face, uint8 [size, size, 3] (a fresh copy)."""
        return _render_identity(self, size).copy()

    @property
    def mouth_box(self) -> MouthBox:
        cx = _IMAGE_SIDE - 1 - MOUTH_CENTER_X if self.mirror else MOUTH_CENTER_X

        def frac(v: float, origin: int) -> float:
            return (v - origin + 0.5) / self.side

        return MouthBox(frac(cx, self.x0), frac(MOUTH_SEAM_Y, self.y0),
                        MOUTH_HALF_WIDTH / self.side, (CHIN_Y - MOUTH_SEAM_Y) / self.side,
                        SMILE_RISE / self.side)


IDENTITIES = (
    Identity("astronaut", 126, 24, 192),
    Identity("astronaut-tinted", 126, 24, 192, hue_shift=-0.03, saturation=1.25, gain=(1.0, 0.93, 0.98)),
    Identity("astronaut-mirrored", 192, 30, 184, mirror=True),  # re-cropped: off-centre, tighter
    Identity("astronaut-zoomed", 142, 44, 160),
    Identity("astronaut-mirrored-cool", 186, 22, 200, mirror=True, saturation=0.8, gain=(0.92, 0.98, 1.08)),
)
IDENTITY_NAMES = tuple(i.name for i in IDENTITIES)


def get_identity(name: str) -> Identity:
    for identity in IDENTITIES:
        if identity.name == name:
            return identity
    raise KeyError(f"unknown identity {name!r}; known: {', '.join(IDENTITY_NAMES)}")


def face_image(name: str = "astronaut", size: int = 64) -> np.ndarray:
    return get_identity(name).image(size)


@lru_cache(maxsize=1)
def _astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


@lru_cache(maxsize=64)
def _render_identity(identity: Identity, size: int) -> np.ndarray:
    img = _astronaut()
    if identity.mirror:
        img = img[:, ::-1]
    crop = img[identity.y0:identity.y0 + identity.side, identity.x0:identity.x0 + identity.side]
    if crop.shape[:2] != (identity.side, identity.side):
        raise ValueError(f"crop of {identity.name} leaves the image")
    rgb = crop.astype(np.float64) / 255.0
    if identity.hue_shift or identity.saturation != 1.0:
        from skimage.color import hsv2rgb, rgb2hsv

        hsv = rgb2hsv(rgb)
        hsv[..., 0] = (hsv[..., 0] + identity.hue_shift) % 1.0
        hsv[..., 1] = np.clip(hsv[..., 1] * identity.saturation, 0, 1)
        rgb = hsv2rgb(hsv)
    rgb = np.clip(rgb * np.asarray(identity.gain), 0, 1)
    out = Image.fromarray(np.round(rgb * 255).astype(np.uint8)).resize((size, size), Image.Resampling.LANCZOS)
    result = np.asarray(out)
    result.flags.writeable = False
    return result
