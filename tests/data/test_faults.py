import numpy as np
import pytest

from compress.data import (DEFAULT_FAULTS, IDENTITIES, SENTENCES, VOICES, Fault, apply_fault, blur,
                           mouth_opening_measure, mouth_schedule, render_talking_clip, shift, synthesize)


def best_lag(measure, schedule, max_lag=5):
    """Lag k maximising corr(measure[t], schedule[t - k]) over the overlapping frames."""
    def corr(k):
        m, s = (measure[k:], schedule[:len(schedule) - k]) if k >= 0 else (measure[:k], schedule[-k:])
        return np.corrcoef(m, s)[0, 1]

    return max(range(-max_lag, max_lag + 1), key=corr)


@pytest.mark.parametrize("k", [1, 3, -2])
def test_shift_recovers_the_injected_lag(k):
    for i, identity in enumerate(IDENTITIES):
        speech = synthesize(SENTENCES[i], VOICES[i], 140).fit(0.25, 4.0)
        schedule = mouth_schedule(speech, 16, 64)
        face = identity.image(64)
        frames = shift(render_talking_clip(face, schedule, identity.mouth_box), k)
        assert best_lag(mouth_opening_measure(frames, face, identity.mouth_box), schedule) == k


def test_shift_pads_with_edge_frames():
    clip = np.arange(6)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
    assert shift(clip, 2)[:, 0, 0, 0].tolist() == [0, 0, 0, 1, 2, 3]
    assert shift(clip, -2)[:, 0, 0, 0].tolist() == [2, 3, 4, 5, 5, 5]


def test_half_amplitude_halves_the_spread(talking):
    face, schedule, frames, box = talking
    half, _ = apply_fault(Fault("scale_amplitude", {"factor": 0.5}), face, schedule, np.zeros(4), box)
    ratio = mouth_opening_measure(half, face, box).std() / mouth_opening_measure(frames, face, box).std()
    assert 0.35 < ratio < 0.65


def test_frozen_blur_and_wrong_audio(talking):
    face, schedule, frames, box = talking
    audio, other = np.zeros(100, np.float32), np.ones(100, np.float32)
    still, _ = apply_fault(Fault("frozen", {"level": 0.5}), face, schedule, audio, box)
    assert (still == still[0]).all() and not np.array_equal(still[0], face)
    closed, _ = apply_fault(Fault("frozen", {"level": 0.0}), face, schedule, audio, box)
    assert (closed == face).all()
    h = face.shape[0]
    mouth_blur = blur(frames, 1.5, box)
    top = int((box.cy - box.half_width * 1.6 - 0.3 * box.jaw) * h) - 2
    assert np.array_equal(mouth_blur[:, :top], frames[:, :top]) and not np.array_equal(mouth_blur, frames)
    assert np.abs(blur(frames, 1.0)[:, :top].astype(int) - frames[:, :top]).mean() > 1
    same, swapped = apply_fault(Fault("wrong_audio"), face, schedule, audio, box, other, frames)
    assert same is frames and swapped is other
    with pytest.raises(ValueError):
        apply_fault(Fault("wrong_audio"), face, schedule, audio, box)


def test_fault_records():
    tags = [f.tag for f in DEFAULT_FAULTS]
    assert len(set(tags)) == len(tags) and "shift_+3" in tags and "shift_-2" in tags
    assert Fault("scale_amplitude", {"factor": 0.5}).to_dict() == {
        "name": "scale_amplitude", "params": {"factor": 0.5}, "tag": "scale_amplitude_0.5"}
    with pytest.raises(ValueError):
        Fault("melt")
