"""Face landmarks on the synthetic set (MediaPipe worker), and the mouth opening read from them."""

import importlib.util
import sys

import numpy as np
import pytest

from compress.errors import UserInputError
from compress.face.landmarks import ENV_VAR, LandmarkDetector, LandmarksUnavailable
from compress.face.mouth import inter_ocular, mouth_opening


def _clean(synthetic_set):
    return [(np.load(c["frames"]), np.load(c["schedule"]), c) for c in synthetic_set["clips"]]


def test_faces_found_in_every_frame_and_opening_follows_schedule(synthetic_set, detector):
    for frames, schedule, clip in _clean(synthetic_set):
        tracks = detector.detect(frames)
        assert tracks.points.shape == (len(frames), 478, 2) and tracks.points.dtype == np.float32
        assert tracks.found.all(), f"{clip['id']}: no face in {int((~tracks.found).sum())} frames"
        opening = mouth_opening(tracks.points)
        r = np.corrcoef(opening, schedule)[0, 1]
        print(f"{clip['id']} ({clip['identity']}): opening vs schedule r = {r:.3f}")
        assert r > 0.9
        # a wide-open mouth reads clearly larger than a closed one
        assert opening[schedule > 0.8].mean() > opening[schedule < 0.05].mean() + 0.15


def test_faces_found_in_every_faulty_variant(synthetic_set, detector):
    for clip in synthetic_set["clips"]:
        for variant in clip["variants"]:
            found = detector.detect(np.load(variant["frames"])).found
            assert found.all(), f"{clip['id']} {variant['tag']}: no face in {int((~found).sum())} frames"


def test_pixel_coordinates_match_the_rendered_mouth(synthetic_set, detector):
    frames, schedule, clip = _clean(synthetic_set)[0]
    size = synthetic_set["size"]
    box = clip["mouth_box"]
    closed = int(np.argmin(schedule))
    points = detector.detect(frames[closed:closed + 1]).points[0]
    corners = points[[61, 291]]
    centre_x = corners[:, 0].mean()
    assert abs(centre_x - (box["cx"] * size - 0.5)) < 0.06 * size
    assert abs(corners[:, 1].mean() - (box["cy"] * size - 0.5)) < 0.08 * size
    width = np.linalg.norm(corners[0] - corners[1])
    assert 1.4 * box["half_width"] * size < width < 2.6 * box["half_width"] * size
    assert 0.25 * size < inter_ocular(points[None])[0] < 0.7 * size


def test_static_mode_is_order_independent_and_deterministic(synthetic_set, detector):
    frames = np.load(synthetic_set["clips"][1]["frames"])[::6]
    with LandmarkDetector(python=detector.python, cache_frames=0) as fresh:  # uncached, in the session's environment
        forward = fresh.detect(frames).points
        backward = fresh.detect(frames[::-1]).points
    np.testing.assert_array_equal(backward[::-1], forward)  # tracking mode would depend on the order


def test_no_face_gives_nan_and_cache_keeps_results_per_frame(detector, synthetic_set):
    face = np.load(synthetic_set["clips"][0]["frames"])[:1]
    blank = np.full_like(face, 128)
    tracks = detector.detect(np.concatenate([face, blank, face]))
    assert tracks.found.tolist() == [True, False, True]
    assert np.isnan(tracks.points[1]).all() and not np.isnan(tracks.points[0]).any()
    np.testing.assert_array_equal(tracks.points[0], tracks.points[2])
    assert detector.detect(face[:0]).points.shape == (0, 478, 2)


def test_bad_frames_are_refused(detector):
    with pytest.raises(UserInputError, match=r"uint8 \[T, H, W, 3\]"):
        detector.detect(np.zeros((2, 32, 32, 3), np.float32))
    with pytest.raises(UserInputError, match=r"uint8 \[T, H, W, 3\]"):
        detector.detect(np.zeros((32, 32, 3), np.uint8))


def test_missing_environment_says_how_to_set_it_up(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nowhere" / "python"))
    with pytest.raises(LandmarksUnavailable, match="setup_landmarks.sh") as err:
        LandmarkDetector().detect(np.zeros((1, 8, 8, 3), np.uint8))
    assert "nowhere" in str(err.value)


@pytest.mark.skipif(importlib.util.find_spec("mediapipe") is not None,
                    reason="needs a main environment without mediapipe")
def test_python_without_mediapipe_is_reported():
    with pytest.raises(LandmarksUnavailable, match=r"(?s)No module named.*setup_landmarks.sh"):
        with LandmarkDetector(python=sys.executable):
            pass
