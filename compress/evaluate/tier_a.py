"""Lip-sync tier A: reference-relative mouth timing, articulation and fidelity from face landmarks.

Student and teacher frames of the same input are compared through the mouth-opening series of each
(`mouth.mouth_opening`). Three groups are reported apart, never folded into one number:

- timing: the lag in [-max_lag, max_lag] that maximises the correlation of the two series (positive =
  student late, as in `compress.data.faults`), the correlation at that lag and at lag 0;
- articulation: gain (student spread over teacher spread: 0.5 is a half-amplitude mouth, which
  correlation alone does not see) and the RMS mouth-opening error;
- fidelity: mouth landmark distance (% of the teacher's inter-ocular distance), mouth-region and
  whole-frame PSNR / SSIM (the mouth region is the teacher's landmark mouth box per frame; its SSIM is the
  frame's SSIM map averaged inside the box), latent relative error. These mix blur with sync: read them
  with timing.

Pooling over clips (`pool_tier_a`) uses the series, not per-clip summaries: each clip's overlapping
segments are centred on their own means, and the cross products and sums of squares of all clips are
added before dividing (a pooled Pearson correlation, so clips with more mouth motion weigh more); the
gain is the ratio of the pooled within-clip spreads; the RMS error pools squared errors over frames.
Fidelity metrics are frame-weighted means of the per-clip values.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.ndimage import uniform_filter

from compress.errors import UserInputError
from compress.face.landmarks import FaceTracks, LandmarkDetector
from compress.face.mouth import MOUTH_POINTS, inter_ocular, mouth_boxes, mouth_opening
from compress.quant import relative_error
from compress.utils.psnr import psnr_of_mse

TIER = "A"
MIN_STUDENT_FACES = 0.5  # fraction of frames; fewer and the student series is not computed
SSIM_WIN = 7
FIDELITY_CHUNK = 4  # frames per step: bounds memory at 480x832
_EPS = 1e-12
DEFAULT_GATES = {"max_abs_lag": 1, "min_zero_lag_corr": 0.8, "gain": [0.8, 1.2]}
FIDELITY_KEYS = ("mouth_landmark_dist_pct_iod", "mouth_psnr", "mouth_ssim", "frame_psnr", "frame_ssim",
                 "latent_rel_error")


def tier_a_clip(student_frames, teacher_frames, detector: LandmarkDetector, student_latents=None,
                teacher_latents=None, max_lag: int = 15) -> dict:
    """Tier-A metrics of one clip: uint8 [T, H, W, 3] student and teacher frames of the same input."""
    student_frames, teacher_frames = _check_frames(student_frames, teacher_frames)
    teacher, student = detector.detect(teacher_frames), detector.detect(student_frames)
    frames = len(teacher_frames)
    result = {"tier": TIER, "status": "ok",
              "faces_found": {"student": int(student.found.sum()), "teacher": int(teacher.found.sum()),
                              "frames": frames},
              "series": {"student": _as_list(mouth_opening(student.points)),
                         "teacher": _as_list(mouth_opening(teacher.points))}}
    if not teacher.found.all():
        return {**result, "status": f"not computed: no face in {frames - int(teacher.found.sum())} of {frames} "
                                    f"teacher frames"}
    if student.found.mean() < MIN_STUDENT_FACES:
        return {**result, "status": f"not computed: no face in {frames - int(student.found.sum())} of {frames} "
                                    f"student frames"}
    pair = (_filled(result["series"]["student"]), _filled(result["series"]["teacher"]))
    fidelity = _fidelity(student_frames, teacher_frames, student, teacher)
    fidelity["latent_rel_error"] = _latent_rel_error(student_latents, teacher_latents)
    return {**result, "timing": _timing([pair], max_lag), "articulation": _articulation([pair]),
            "fidelity": fidelity}


def pool_tier_a(clips: list[dict]) -> dict:
    """Pool per-clip results of `tier_a_clip` (see the module docstring for how)."""
    done = [c for c in clips if c.get("status") == "ok"]
    counts = {"total": len(clips), "computed": len(done),
              "not_computed": [c.get("status", "missing status") for c in clips if c.get("status") != "ok"]}
    faces = {k: sum(c["faces_found"][k] for c in clips) for k in ("student", "teacher", "frames")}
    pooled = {"tier": TIER, "clips": counts, "faces_found": faces}
    if not done:
        return {**pooled, "status": f"not computed: no clip computed ({len(clips)} given)"}
    pairs = [(_filled(c["series"]["student"]), _filled(c["series"]["teacher"])) for c in done]
    max_lag = min(c["timing"]["max_lag"] for c in done)
    weights = [c["faces_found"]["frames"] for c in done]
    fidelity = {k: _weighted_mean([c["fidelity"][k] for c in done], weights) for k in FIDELITY_KEYS}
    clip_lags = [c["timing"]["lag"] for c in done]
    worst = max((abs(lag) for lag in clip_lags if lag is not None), default=None)
    timing = {**_timing(pairs, max_lag), "clip_lags": clip_lags, "max_clip_abs_lag": worst}
    return {**pooled, "status": "ok", "timing": timing, "articulation": _articulation(pairs), "fidelity": fidelity}


# gate name -> (section, metric, kind); kind: "max" / "min" bound the value, "abs_max" its magnitude,
# "range" takes [low, high]
GATES = {
    "max_abs_lag": ("timing", "lag", "abs_max"),
    "max_clip_abs_lag": ("timing", "max_clip_abs_lag", "max"),  # the worst clip's own best lag
    "min_zero_lag_corr": ("timing", "zero_lag_corr", "min"),
    "min_peak_corr": ("timing", "peak_corr", "min"),
    "gain": ("articulation", "gain", "range"),
    "max_rms_error": ("articulation", "rms_error", "max"),
    "max_mouth_landmark_dist_pct_iod": ("fidelity", "mouth_landmark_dist_pct_iod", "max"),
    "min_mouth_psnr": ("fidelity", "mouth_psnr", "min"),
    "min_mouth_ssim": ("fidelity", "mouth_ssim", "min"),
    "min_frame_psnr": ("fidelity", "frame_psnr", "min"),
    "min_frame_ssim": ("fidelity", "frame_ssim", "min"),
    "max_latent_rel_error": ("fidelity", "latent_rel_error", "max"),
}


def check_gates(results: dict, gates: dict | None = None) -> list[dict]:
    """[{name, value, bound, passed}] for a clip or pooled result; passed is None where not computed."""
    rows = []
    for name, limit in (DEFAULT_GATES if gates is None else gates).items():
        if name not in GATES:
            raise UserInputError(f"tier-A gate {name!r}: unknown; known: {', '.join(GATES)}")
        section, metric, kind = GATES[name]
        low, high = _bounds(name, kind, limit)
        value = results.get(section, {}).get(metric)
        subject = abs(value) if kind == "abs_max" and value is not None else value
        passed = None if subject is None else bool(low <= subject <= high)
        bound = {"max": f"<= {high:g}", "abs_max": f"|x| <= {high:g}", "min": f">= {low:g}",
                 "range": f"in [{low:g}, {high:g}]"}[kind]
        rows.append({"name": name, "value": value, "bound": bound, "passed": passed})
    return rows


def _bounds(name: str, kind: str, limit) -> tuple[float, float]:
    if kind == "range":
        ok = isinstance(limit, (list, tuple)) and len(limit) == 2 and all(_is_number(v) for v in limit) \
            and limit[0] <= limit[1]
        if not ok:
            raise UserInputError(f"tier-A gate {name!r}: expected [low, high] numbers; found {limit!r}")
        return float(limit[0]), float(limit[1])
    if not _is_number(limit):
        raise UserInputError(f"tier-A gate {name!r}: expected a number; found {limit!r}")
    return (float(limit), math.inf) if kind == "min" else (-math.inf, float(limit))


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_frames(student, teacher) -> tuple[np.ndarray, np.ndarray]:
    student, teacher = np.asarray(student), np.asarray(teacher)
    for name, f in (("student_frames", student), ("teacher_frames", teacher)):
        if f.dtype != np.uint8 or f.ndim != 4 or f.shape[3] != 3 or len(f) < 2:
            raise UserInputError(f"{name}: expected uint8 [T, H, W, 3] with T >= 2, got {f.dtype} {list(f.shape)}")
    if student.shape != teacher.shape:
        raise UserInputError(f"student_frames {list(student.shape)} and teacher_frames {list(teacher.shape)} "
                             f"must have the same shape (same input, same size)")
    return student, teacher


def _as_list(series: np.ndarray) -> list:
    """JSON-friendly series: None where no face."""
    return [None if math.isnan(v) else float(v) for v in series]


def _filled(series: list) -> np.ndarray:
    """Series with the frames without a face linearly interpolated (ends held)."""
    s = np.array([np.nan if v is None else v for v in series], np.float64)
    ok = ~np.isnan(s)
    return np.interp(np.arange(len(s)), np.flatnonzero(ok), s[ok])


def _segments(s: np.ndarray, t: np.ndarray, lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Overlap of student and teacher when the student is `lag` frames late: s[i + lag] vs t[i]."""
    n = len(t)
    a, b = (s[lag:], t[:n - lag]) if lag >= 0 else (s[:n + lag], t[-lag:])
    return a - a.mean(), b - b.mean()


def _pooled_corr(pairs, lag: int) -> float:
    """Pooled Pearson correlation at `lag`; a series with no variation correlates 0."""
    num = ss = tt = 0.0
    for s, t in pairs:
        a, b = _segments(s, t, lag)
        num, ss, tt = num + a @ b, ss + a @ a, tt + b @ b
    return float(num / math.sqrt(ss * tt)) if ss > _EPS and tt > _EPS else 0.0


def _timing(pairs, max_lag: int) -> dict:
    """Best lag (ties go to the smaller |lag|; None if the student series does not vary) and correlations."""
    max_lag = max(0, min(int(max_lag), min(len(t) for _, t in pairs) // 3))  # keep >= 2/3 of frames overlapping
    order = sorted(range(-max_lag, max_lag + 1), key=lambda k: (abs(k), k))
    corr = {k: _pooled_corr(pairs, k) for k in order}
    best = max(order, key=lambda k: (corr[k], -abs(k)))
    moving = sum(float(np.var(s)) for s, _ in pairs) > _EPS
    return {"lag": best if moving else None, "zero_lag_corr": corr[0], "peak_corr": corr[best],
            "max_lag": max_lag}


def _articulation(pairs) -> dict:
    spread_s = sum(float(((s - s.mean()) ** 2).sum()) for s, _ in pairs)
    spread_t = sum(float(((t - t.mean()) ** 2).sum()) for _, t in pairs)
    squared = sum(float(((s - t) ** 2).sum()) for s, t in pairs)
    frames = sum(len(t) for _, t in pairs)
    return {"gain": math.sqrt(spread_s / spread_t) if spread_t > _EPS else None,
            "rms_error": math.sqrt(squared / frames)}


def _fidelity(student_frames, teacher_frames, student: FaceTracks, teacher: FaceTracks) -> dict:
    both = student.found & teacher.found
    dist = np.linalg.norm(student.points[both][:, MOUTH_POINTS] - teacher.points[both][:, MOUTH_POINTS], axis=-1)
    pct = 100 * dist.mean(axis=1) / inter_ocular(teacher.points[both])
    boxes = mouth_boxes(teacher.points, teacher_frames.shape[1:])
    stats = np.concatenate([_frame_stats(student_frames[i:i + FIDELITY_CHUNK], teacher_frames[i:i + FIDELITY_CHUNK],
                                         boxes[i:i + FIDELITY_CHUNK])
                            for i in range(0, len(boxes), FIDELITY_CHUNK)])
    frame_mse, mouth_mse, frame_ssim, mouth_ssim = stats.T
    mouth_ssim = mouth_ssim[~np.isnan(mouth_ssim)]
    return {"mouth_landmark_dist_pct_iod": float(pct.mean()) if both.any() else None,
            "mouth_psnr": psnr_of_mse(mouth_mse.mean()),
            "mouth_ssim": float(mouth_ssim.mean()) if len(mouth_ssim) else None,
            "frame_psnr": psnr_of_mse(frame_mse.mean()), "frame_ssim": float(frame_ssim.mean())}


def _frame_stats(student, teacher, boxes) -> np.ndarray:
    """[t, 4] per frame: MSE of the frame and of its mouth box, mean SSIM of the frame and of its mouth box
    (the SSIM map inside the box, away from the frame border; NaN if the box lies in the border)."""
    x, y = student.astype(np.float64), teacher.astype(np.float64)
    squared, ssim = ((x - y) ** 2).mean(-1), ssim_maps(x, y)
    pad = SSIM_WIN // 2
    valid = np.zeros(ssim.shape[1:], bool)
    valid[pad:-pad, pad:-pad] = True
    rows = []
    for e, m, (x0, y0, x1, y1) in zip(squared, ssim, boxes):
        box = np.zeros_like(valid)
        box[y0:y1, x0:x1] = True
        inside = box & valid
        rows.append([e.mean(), e[box].mean(), m[valid].mean(), m[inside].mean() if inside.any() else np.nan])
    return np.asarray(rows, np.float64).reshape(-1, 4)


def ssim_maps(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-pixel SSIM [T, H, W] of [T, H, W, C] images in 0..255, averaged over channels: skimage's
    `structural_similarity` (7x7 uniform window, sample covariance), whose value is this map's mean
    without a 3-pixel border, computed for all frames at once."""
    size, n = (1, SSIM_WIN, SSIM_WIN, 1), SSIM_WIN ** 2
    mx, my = uniform_filter(x, size), uniform_filter(y, size)
    norm = n / (n - 1)
    vx = norm * (uniform_filter(x * x, size) - mx * mx)
    vy = norm * (uniform_filter(y * y, size) - my * my)
    vxy = norm * (uniform_filter(x * y, size) - mx * my)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    return (((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))).mean(-1)


def _latent_rel_error(student, teacher) -> float | None:
    """None without both latents, or when the student's are in another space (a lip-sync student's per-frame image
    latents vs the teacher's video latents; the fidelity report notes the shapes)."""
    if student is None or teacher is None:
        return None
    s, t = (torch.as_tensor(x).cpu() for x in (student, teacher))
    return relative_error(s, t) if s.shape == t.shape else None


def _weighted_mean(values: list, weights: list) -> float | None:
    pairs = [(v, w) for v, w in zip(values, weights) if v is not None]
    return float(sum(v * w for v, w in pairs) / sum(w for _, w in pairs)) if pairs else None
