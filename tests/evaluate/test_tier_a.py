"""Tier A: exact checks on pixel-coded series, then every injected fault of the synthetic set."""

import io
import math

import numpy as np
import pytest
from PIL import Image

from compress.data.faults import shift
from compress.errors import UserInputError
from compress.evaluate.tier_a import DEFAULT_GATES, check_gates, pool_tier_a, tier_a_clip
from tests.face.meshes import PixelCodedDetector

T = 48


def _series(seed: int) -> np.ndarray:
    """A smooth, speech-like opening series in [0, 1]."""
    rng = np.random.default_rng(seed)
    x = np.convolve(rng.random(T + 8), np.ones(5) / 5, mode="valid")[:T]
    return (x - x.min()) / (x.max() - x.min())


def _frames(series) -> np.ndarray:
    """64x64 frames whose pixel value codes the opening (see PixelCodedDetector); NaN: no face."""
    values = [255 if np.isnan(v) else round(200 * v) for v in np.asarray(series, np.float64)]
    return np.repeat(np.asarray(values, np.uint8)[:, None, None, None], 64, 1).repeat(64, 2).repeat(3, 3)


def _clip(student, teacher, **kw) -> dict:
    return tier_a_clip(_frames(student), _frames(teacher), PixelCodedDetector(), **kw)


def _passed(results, gates=None) -> dict:
    return {g["name"]: g["passed"] for g in check_gates(results, gates)}


@pytest.mark.parametrize("lag", [0, 1, 3, -2, 7])
def test_exact_lag_positive_means_student_late(lag):
    teacher = _series(0)
    result = _clip(shift(teacher, lag), teacher)
    assert result["status"] == "ok" and result["tier"] == "A"
    assert result["timing"]["lag"] == lag
    assert result["timing"]["peak_corr"] == pytest.approx(1.0, abs=1e-3)
    assert (result["timing"]["zero_lag_corr"] < 0.99) == (lag != 0)
    assert _passed(result)["max_abs_lag"] == (abs(lag) <= 1)


def test_correlation_ignores_amplitude_but_gain_does_not():
    teacher = _series(1)
    result = _clip(0.2 + 0.5 * teacher, teacher)
    assert result["timing"]["lag"] == 0 and result["timing"]["zero_lag_corr"] > 0.999  # looks perfect ...
    assert result["articulation"]["gain"] == pytest.approx(0.5, abs=0.01)  # ... but the mouth moves half as much
    expected_rms = np.sqrt(np.mean((np.round(200 * (0.2 + 0.5 * teacher)) - np.round(200 * teacher)) ** 2)) / 200
    assert result["articulation"]["rms_error"] == pytest.approx(expected_rms, rel=1e-4)
    assert _passed(result) == {"max_abs_lag": True, "min_zero_lag_corr": True, "gain": False}


def test_frozen_mouth_fails_and_has_no_lag():
    teacher = _series(2)
    result = _clip(np.full(T, 0.3), teacher)
    assert result["timing"]["lag"] is None and result["timing"]["zero_lag_corr"] == 0.0
    assert result["articulation"]["gain"] == 0.0
    assert _passed(result) == {"max_abs_lag": None, "min_zero_lag_corr": False, "gain": False}


def test_pooling_uses_the_series_of_all_clips():
    teachers = [_series(s) for s in (3, 4, 5)]
    late = [_clip(shift(t, 2), t) for t in teachers]
    pooled = pool_tier_a(late)
    assert pooled["status"] == "ok" and pooled["timing"]["lag"] == 2 and pooled["clips"]["computed"] == 3
    assert pooled["faces_found"] == {"student": 3 * T, "teacher": 3 * T, "frames": 3 * T}
    # one half-amplitude clip among full ones: the pooled gain is the ratio of the pooled spreads
    parts = [_clip(0.5 * teachers[0], teachers[0]), *(_clip(t, t) for t in teachers[1:])]
    mixed = pool_tier_a(parts)
    q = [np.round(200 * t) / 200 for t in teachers]
    spread = [float(((x - x.mean()) ** 2).sum()) for x in q]
    half = np.round(100 * teachers[0]) / 200
    expected = math.sqrt((((half - half.mean()) ** 2).sum() + sum(spread[1:])) / sum(spread))
    assert mixed["articulation"]["gain"] == pytest.approx(expected, rel=1e-6)
    assert mixed["fidelity"]["frame_psnr"] == pytest.approx(np.mean([c["fidelity"]["frame_psnr"] for c in parts]))


def test_missing_faces():
    teacher = _series(6)
    gappy_teacher = teacher.copy()
    gappy_teacher[[5, 9]] = np.nan
    result = _clip(teacher, gappy_teacher)
    assert result["status"] == f"not computed: no face in 2 of {T} teacher frames"
    assert "timing" not in result and result["series"]["teacher"][5] is None
    assert _passed(result) == {"max_abs_lag": None, "min_zero_lag_corr": None, "gain": None}

    gappy_student = teacher.copy()
    gappy_student[10:13] = np.nan  # interpolated over: the series still matches
    result = _clip(gappy_student, teacher)
    assert result["status"] == "ok" and result["faces_found"]["student"] == T - 3
    assert result["timing"]["lag"] == 0 and result["timing"]["zero_lag_corr"] > 0.9
    assert _clip(np.full(T, np.nan), teacher)["status"] == f"not computed: no face in {T} of {T} student frames"

    pooled = pool_tier_a([_clip(teacher, gappy_teacher), _clip(teacher, teacher)])
    assert pooled["clips"] == {"total": 2, "computed": 1,
                               "not_computed": [f"not computed: no face in 2 of {T} teacher frames"]}
    assert pooled["timing"]["lag"] == 0
    assert pool_tier_a([_clip(teacher, gappy_teacher)])["status"].startswith("not computed: no clip computed")


def test_latent_error_and_input_checks():
    teacher = _series(7)
    s = np.ones((4, 2, 3, 3), np.float32)
    result = _clip(teacher, teacher, student_latents=1.1 * s, teacher_latents=s)
    assert result["fidelity"]["latent_rel_error"] == pytest.approx(0.1, rel=1e-5)
    assert result["fidelity"]["frame_psnr"] == 100.0 and result["fidelity"]["mouth_ssim"] == pytest.approx(1.0)
    assert _clip(teacher, teacher)["fidelity"]["latent_rel_error"] is None
    # latents in another space (e.g. a lip-sync student's per-frame image latents): no latent error, no failure
    assert _clip(teacher, teacher, student_latents=s[:2], teacher_latents=s)["fidelity"]["latent_rel_error"] is None
    with pytest.raises(UserInputError, match="same shape"):
        tier_a_clip(_frames(teacher)[:10], _frames(teacher), PixelCodedDetector())
    with pytest.raises(UserInputError, match=r"student_frames: expected uint8"):
        tier_a_clip(_frames(teacher).astype(np.float32), _frames(teacher), PixelCodedDetector())


def test_gate_rows_and_errors():
    teacher = _series(8)
    result = _clip(shift(teacher, 3), teacher)
    rows = check_gates(result, {"max_abs_lag": 1, "gain": [0.8, 1.2], "min_frame_psnr": 10,
                                "max_latent_rel_error": 0.1})
    assert rows[0] == {"name": "max_abs_lag", "value": 3, "bound": "|x| <= 1", "passed": False}
    assert rows[1]["bound"] == "in [0.8, 1.2]" and rows[1]["passed"] is True
    assert rows[2]["bound"] == ">= 10" and rows[2]["passed"] is True
    assert rows[3] == {"name": "max_latent_rel_error", "value": None, "bound": "<= 0.1", "passed": None}
    with pytest.raises(UserInputError, match="'max_lag': unknown; known: max_abs_lag"):
        check_gates(result, {"max_lag": 1})
    with pytest.raises(UserInputError, match=r"'gain': expected \[low, high\] numbers; found 0.8"):
        check_gates(result, {"gain": 0.8})
    with pytest.raises(UserInputError, match="'min_zero_lag_corr': expected a number; found 'high'"):
        check_gates(result, {"min_zero_lag_corr": "high"})


def test_ssim_matches_scikit_image():
    from skimage.metrics import structural_similarity

    from compress.evaluate.tier_a import ssim_maps

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (3, 20, 24, 3)).astype(np.float64)
    y = np.clip(x + rng.normal(0, 40, x.shape), 0, 255)
    maps = ssim_maps(x, y)
    for m, a, b in zip(maps, x, y):
        expected = structural_similarity(a, b, channel_axis=-1, data_range=255)
        assert m[3:-3, 3:-3].mean() == pytest.approx(expected, abs=1e-9)


# --- the synthetic set's injected faults, through the real landmark detector --------------------------

def _jpeg(frames: np.ndarray, quality: int = 90) -> np.ndarray:
    """A faultless but not identical copy: every frame through JPEG."""
    out = []
    for frame in frames:
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="JPEG", quality=quality)
        out.append(np.asarray(Image.open(buffer).convert("RGB")))
    return np.stack(out)


@pytest.fixture(scope="module")
def faults(synthetic_set, detector):
    """{tag: (per-clip results, pooled)} for every variant, the identical copy ("clean") and a JPEG copy."""
    per_tag = {}
    for clip in synthetic_set["clips"]:
        teacher = np.load(clip["frames"])
        students = {"clean": teacher, "jpeg": _jpeg(teacher),
                    **{v["tag"]: np.load(v["frames"]) for v in clip["variants"]}}
        for tag, student in students.items():
            per_tag.setdefault(tag, []).append(tier_a_clip(student, teacher, detector))
    return {tag: (clips, pool_tier_a(clips)) for tag, clips in per_tag.items()}


@pytest.mark.parametrize("tag", ["clean", "wrong_audio"])
def test_faultless_copies_pass(faults, tag):
    # wrong_audio keeps the teacher's frames: tier A compares videos and cannot hear (tiers B / C do)
    clips, pooled = faults[tag]
    for result in [*clips, pooled]:
        assert result["status"] == "ok" and result["timing"]["lag"] == 0
        assert all(_passed(result).values()), check_gates(result)


def test_jpeg_copy_keeps_timing_and_roughly_the_gain(faults):
    """A faultless, not identical copy. Its timing is exact; the refined lip landmarks of a 96 px face read a
    JPEG-softened mouth as opening a little less (gain ~0.75-0.85 at q90), so gain bands need that slack."""
    clips, pooled = faults["jpeg"]
    print("JPEG q90 copy: gains", [round(c["articulation"]["gain"], 3) for c in clips],
          "pooled", round(pooled["articulation"]["gain"], 3))
    for result in [*clips, pooled]:
        assert result["timing"]["lag"] == 0 and result["timing"]["zero_lag_corr"] > 0.9
        assert 0.65 < result["articulation"]["gain"] < 1.35
    assert 30 < pooled["fidelity"]["frame_psnr"] < 100 and 0.9 < pooled["fidelity"]["frame_ssim"] < 1


@pytest.mark.parametrize("lag", [1, 3, -2])
def test_injected_lag_is_recovered_exactly(faults, lag):
    clips, pooled = faults[f"shift_{lag:+d}"]
    assert [c["timing"]["lag"] for c in clips] == [lag] * len(clips)
    assert pooled["timing"]["lag"] == lag and pooled["timing"]["peak_corr"] > 0.95
    assert pooled["articulation"]["gain"] == pytest.approx(1.0, abs=0.05)
    flags = _passed(pooled)
    assert flags["max_abs_lag"] == (abs(lag) <= 1)
    assert not flags["min_zero_lag_corr"]  # even one frame late loses the zero-lag correlation


def test_half_amplitude_passes_correlation_but_fails_gain(faults):
    # the landmarks read a half-open mouth a little below half (0.37-0.55 per clip at 96 px): the closed
    # mouth reads as slightly open, so small openings change the reading less than large ones
    clips, pooled = faults["scale_amplitude_0.5"]
    assert all(0.3 < c["articulation"]["gain"] < 0.7 for c in clips)
    assert pooled["articulation"]["gain"] == pytest.approx(0.5, abs=0.15)
    assert pooled["timing"]["lag"] == 0 and pooled["timing"]["zero_lag_corr"] >= DEFAULT_GATES["min_zero_lag_corr"]
    assert _passed(pooled) == {"max_abs_lag": True, "min_zero_lag_corr": True, "gain": False}


@pytest.mark.parametrize("level", ["0.5", "0.0"])
def test_frozen_mouth_fails(faults, level):
    clips, pooled = faults[f"frozen_{level}"]
    for result in [*clips, pooled]:
        assert result["articulation"]["gain"] < 0.05 and result["timing"]["lag"] is None
        assert _passed(result)["min_zero_lag_corr"] is False and _passed(result)["gain"] is False


def test_blur_is_not_a_lag_but_fools_landmark_distance_and_mouth_psnr(faults):
    blurred, late = faults["blur_mouth_1.5"][1], faults["shift_+1"][1]
    for tag in ("blur_mouth_1.5", "blur_frame_1.0"):
        clips, pooled = faults[tag]
        assert [c["timing"]["lag"] for c in clips] == [0] * len(clips) and pooled["timing"]["lag"] == 0
    # an in-sync blurred mouth is further from the teacher's landmarks than a sharp one a frame late ...
    assert blurred["fidelity"]["mouth_landmark_dist_pct_iod"] > late["fidelity"]["mouth_landmark_dist_pct_iod"]
    # ... and a mouth-PSNR gate flags both alike: only timing tells them apart
    psnr_gate = {"min_mouth_psnr": 30}
    assert _passed(blurred, psnr_gate) == _passed(late, psnr_gate) == {"min_mouth_psnr": False}
    assert (blurred["timing"]["lag"], late["timing"]["lag"]) == (0, 1)
