"""Procedural talking mouth: warp the lower face of a neutral image along a mouth-open schedule.

Geometry (all from a ``MouthBox``, so it scales with the image): below the lip seam the
lower lip and jaw slide down by ``D(x)``; between the seam and the displaced lower lip a
lens-shaped aperture of height ``G(x) <= D(x)`` shows the mouth interior (dark cavity, lower
teeth near the lip). Outside the aperture the lower lip near the corners stretches instead.
The displacement fades out below the chin so the neck and everything above the seam stay put.

Per column x and output distance u below the seam, the source distance v solves
``u = v + disp(v)``, ``disp(v) = (G + (D - G) * ramp(v)) * fade(v)``, which is monotone, so a
vectorised bisection inverts it. Rows are anti-aliased by exact box coverage of the three
parts (upper face / interior / warped lower face). Opening 0 gives the neutral face exactly
(and G = D = 0 makes v = u, so tiny openings approach it continuously).
"""

from __future__ import annotations

import numpy as np

from .faces import IDENTITIES, MouthBox

DEFAULT_MOUTH_BOX = IDENTITIES[0].mouth_box
MAX_GAP = 0.7  # aperture height at opening 1, in mouth half-widths
LIP = 0.3  # lower-lip thickness over which the corners stretch, in half-widths
FADE = 1.5  # length of the fade below the chin, in half-widths (> 1.5 * MAX_GAP keeps it monotone)
JAW_SPREAD = 1.8  # horizontal extent of the jaw displacement, in half-widths
CAVITY = np.array([58.0, 18.0, 24.0], np.float32)
TEETH = np.array([228.0, 220.0, 208.0], np.float32)


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _pixels(box: MouthBox, height: int, width: int):
    """Centre x, seam y at the centre, half-width, jaw and smile rise in pixels."""
    return (box.cx * width - 0.5, box.cy * height - 0.5, box.half_width * width,
            box.jaw * height, box.smile * height)


def render_talking_clip(face: np.ndarray, schedule: np.ndarray,
                        mouth_box: MouthBox = DEFAULT_MOUTH_BOX) -> np.ndarray:
    """Frames uint8 [T, H, W, 3]: `face` (uint8 [H, W, 3]) with the mouth open by `schedule` [T] in [0, 1]."""
    face = np.asarray(face)
    if face.dtype != np.uint8 or face.ndim != 3 or face.shape[2] != 3:
        raise ValueError(f"face must be uint8 [H, W, 3], got {face.dtype} {face.shape}")
    opening = np.clip(np.asarray(schedule, dtype=np.float32), 0.0, 1.0)
    height, width = face.shape[:2]
    frames = np.repeat(face[None], len(opening), axis=0)
    cx, yc0, hw, jaw, smile = _pixels(mouth_box, height, width)
    # region that can change: from the corners of the seam down to the end of the fade, jaw width
    r0 = max(int(np.floor(yc0 - smile - 0.5)), 0)
    r1 = min(int(np.ceil(yc0 + jaw + (FADE + MAX_GAP) * hw)) + 2, height)
    c0 = max(int(np.floor(cx - JAW_SPREAD * hw)), 0)
    c1 = min(int(np.ceil(cx + JAW_SPREAD * hw)) + 1, width)
    if r0 >= r1 or c0 >= c1:
        return frames
    levels, index = np.unique(opening, return_inverse=True)  # render each distinct opening once
    moving = levels > 0  # opening 0 is the neutral face, exactly
    if moving.any():
        img = face.astype(np.float32)
        rows = np.arange(r0, r1, dtype=np.float32)[None, :, None]  # [1, h, 1]
        cols = np.arange(c0, c1)
        # 3 horizontal sub-samples per pixel anti-alias the steep sides of the aperture
        out = sum(_warp(img, levels[moving].astype(np.float32), rows, cols, (cols + dx).astype(np.float32),
                        (cx, yc0, hw, jaw, smile)) for dx in (-1 / 3, 0.0, 1 / 3)) / 3
        patches = np.repeat(face[None, r0:r1, c0:c1], len(levels), axis=0)
        patches[moving] = np.clip(np.rint(out), 0, 255).astype(np.uint8)
        frames[:, r0:r1, c0:c1] = patches[index.reshape(-1)]
    return frames


def _warp(img, opening, yc, cols, xs, geometry):
    """Colours [T, h, w, 3] of rows `yc` [1, h, 1] at sub-pixel column positions `xs` [w]."""
    cx, yc0, hw, jaw, smile = geometry
    gap_max, lip, fade = MAX_GAP * hw, LIP * hw, FADE * hw
    s = np.abs(xs - cx) / hw
    y0 = yc0 - smile * np.minimum(s, 1) ** 4  # seam per column, curving up to the corners
    aperture = np.where(s < 1, np.cos(0.5 * np.pi * np.minimum(s, 1)), 0.0)
    sj = np.abs(xs - cx) / (JAW_SPREAD * hw)
    jaw_w = np.where(sj < 0.5, 1.0, np.cos(np.pi * np.clip(sj - 0.5, 0, 0.5)) ** 2)
    o = opening[:, None, None] * gap_max
    G, D = o * aperture, o * jaw_w  # [T, 1, w] aperture height and jaw drop
    u = yc - y0  # [1, h, w] distance below the seam

    def forward(v):  # source distance below the seam -> output distance (monotone)
        disp = (G + (D - G) * _smoothstep(v / lip)) * (1.0 - _smoothstep((v - jaw) / fade))
        return v + np.where(v < 0, G, disp)

    lo = u - D  # disp is in [0, D], so v is in [u - D, u]
    hi = np.broadcast_to(u, lo.shape).copy()
    for _ in range(12):  # bracket / 4096: < 0.01 px at 256 px
        mid = 0.5 * (lo + hi)
        below = forward(mid) < u
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    v = 0.5 * (lo + hi)
    src_y = np.clip(yc + (v - u), 0, img.shape[0] - 1)  # == yc exactly where nothing moves
    i0 = np.floor(src_y).astype(np.int64)
    t = (src_y - i0)[..., None]
    lower = (1 - t) * img[i0, cols] + t * img[np.minimum(i0 + 1, img.shape[0] - 1), cols]

    a_up = np.clip(y0 - (yc - 0.5), 0, 1)  # exact box coverage of the pixel row
    a_in = np.clip(np.minimum(yc + 0.5, y0 + G) - np.maximum(yc - 0.5, y0), 0, 1)
    a_lo = 1.0 - a_up - a_in
    r = np.clip(u / np.maximum(G, 1e-6), 0, 1)[..., None]  # depth in the aperture: teeth at the bottom
    interior = CAVITY + (TEETH - CAVITY) * 0.9 * _smoothstep((r - 0.72) / 0.2)
    upper = img[yc[0, :, 0].astype(np.int64)][:, cols][None]
    return a_up[..., None] * upper + a_in[..., None] * interior + a_lo[..., None] * lower


def mouth_opening_measure(frames: np.ndarray, neutral: np.ndarray,
                          mouth_box: MouthBox = DEFAULT_MOUTH_BOX) -> np.ndarray:
    """A simple pixel measure of mouth opening per frame: mean darkening vs `neutral` in the mouth box."""
    height, width = neutral.shape[:2]
    cx, y0, hw, _, smile = _pixels(mouth_box, height, width)
    rows = slice(max(int(np.floor(y0 - smile - 0.5)), 0), min(int(np.ceil(y0 + (MAX_GAP + LIP) * hw)) + 1, height))
    cols = slice(max(int(np.floor(cx - hw)), 0), min(int(np.ceil(cx + hw)) + 1, width))
    weights = np.array([0.299, 0.587, 0.114])
    lum = np.asarray(frames, np.float64)[:, rows, cols] @ weights
    ref = np.asarray(neutral, np.float64)[rows, cols] @ weights
    return np.clip(ref[None] - lum, 0, None).mean(axis=(1, 2)).astype(np.float32)
