import numpy as np
import pytest

from compress.data import IDENTITIES, mouth_opening_measure, render_talking_clip


@pytest.mark.parametrize("size", [64, 96, 128, 256])
def test_opening_zero_is_the_neutral_face(size):
    for identity in IDENTITIES:
        face = identity.image(size)
        frames = render_talking_clip(face, np.zeros(2), identity.mouth_box)
        assert frames.shape == (2, size, size, 3) and frames.dtype == np.uint8
        assert np.abs(frames.astype(int) - face).max() <= 1


def test_mouth_change_follows_schedule(talking):
    face, schedule, frames, box = talking
    measure = mouth_opening_measure(frames, face, box)
    assert np.corrcoef(measure, schedule)[0, 1] > 0.9
    h, w = face.shape[:2]
    y0, x0, hw = int(box.cy * h), int(box.cx * w), int(box.half_width * w)
    change = np.abs(frames.astype(float) - face)[:, y0 - 2:y0 + 2 * hw, x0 - hw:x0 + hw + 1].mean(axis=(1, 2, 3))
    assert np.corrcoef(change, schedule)[0, 1] > 0.9


def test_rest_of_face_is_intact(talking):
    face, schedule, frames, box = talking
    h = face.shape[0]
    top = int((box.cy - box.smile) * h) - 1  # everything above the lip seam (eyes, nose, upper lip)
    assert np.array_equal(frames[:, :top], np.broadcast_to(face[:top], frames[:, :top].shape))
    assert schedule.max() > 0.9 and np.abs(frames[schedule.argmax()].astype(int) - face).max() > 60


def test_opening_is_monotone_and_smooth():
    identity = IDENTITIES[0]
    face = identity.image(64)
    levels = np.linspace(0, 1, 21)
    measure = mouth_opening_measure(render_talking_clip(face, levels, identity.mouth_box), face, identity.mouth_box)
    steps = np.diff(measure)
    assert (steps > 0).all() and steps.max() < 4 * steps.mean()
