"""The wrong-audio control: a student whose mouth follows the audio fails to follow the teacher on another clip's
audio; one that copies the mouth from its (leaky) masked input follows it anyway, and the control's gate catches it.
Exact checks with pixel-coded frames (no MediaPipe)."""

from types import SimpleNamespace

import numpy as np
import pytest

from compress.errors import UserInputError
from compress.evaluate.suite import Gate
from compress.evaluate.tier_a import check_gates
from compress.evaluate.wrong_audio import student_tier_a, summary, with_audio_of
from compress.utils.arrays import decode_array
from tests.face.meshes import PixelCodedDetector

FPS, FRAMES, RATE = 16, 48, 16_000
CONTROL_GATE = Gate(metric="wrong_audio.tier_a.zero_lag_corr", max=0.4)


def _speech(seed: int) -> np.ndarray:
    """Audio whose loudness per video frame is a smooth random series in [0, 1]."""
    rng = np.random.default_rng(seed)
    loud = np.convolve(rng.random(FRAMES + 4), np.ones(5) / 5, mode="valid")[:FRAMES]
    loud = (loud - loud.min()) / (loud.max() - loud.min())
    return (np.repeat(loud, RATE // FPS) * rng.standard_normal(FRAMES * RATE // FPS)).astype(np.float32)


def _mouth_frames(audio: np.ndarray) -> np.ndarray:
    """Pixel-coded frames (PixelCodedDetector) whose mouth opens with the audio's loudness per frame."""
    loud = np.sqrt((audio.reshape(FRAMES, -1) ** 2).mean(1))
    values = np.round(200 * loud / loud.max()).astype(np.uint8)
    return np.repeat(values[:, None, None, None], 16, 1).repeat(16, 2).repeat(3, 3)


def _row(index: int) -> dict:
    audio = _speech(index)
    frames = _mouth_frames(audio)  # the teacher's
    return {"id": f"clip-{index}", "fps": FPS, "audio": audio.tobytes(), "audio_dtype": "float32",
            "audio_shape": list(audio.shape), "frames": frames.tobytes(), "frames_dtype": "uint8",
            "frames_shape": list(frames.shape)}


class _Reference:
    def __init__(self, clips: int):
        self.rows = [_row(i) for i in range(clips)]
        self.artifact = SimpleNamespace(name="heldout")

    def __len__(self):
        return len(self.rows)

    def teacher(self, index):
        return {"frames": decode_array(self.rows[index], "frames")}


class _Listens:
    """Draws the mouth from the audio it is given."""

    def eval_generate(self, row, components):
        return {"frames": _mouth_frames(decode_array(row, "audio"))}


class _Copies:
    """Copies the mouth of the teacher's frames (what a `target`-mode student can read through its masked input)."""

    def eval_generate(self, row, components):
        return {"frames": decode_array(row, "frames").copy()}


def _control(model, clips: int = 4) -> dict:
    pooled = student_tier_a(model, _Reference(clips), PixelCodedDetector(), audio_shift=1, max_lag=8, components=0)
    return {"wrong_audio": {"tier_a": summary(pooled)}}


def _flat(metrics: dict) -> dict:
    return {"wrong_audio.tier_a.zero_lag_corr": metrics["wrong_audio"]["tier_a"]["zero_lag_corr"]}


def test_a_student_that_listens_follows_its_own_audio_and_fails_to_follow_another():
    reference = _Reference(4)
    own = summary(student_tier_a(_Listens(), reference, PixelCodedDetector(), max_lag=8, components=0))
    assert own["zero_lag_corr"] == pytest.approx(1.0) and own["clip_lags"] == [0, 0, 0, 0]
    assert own["max_clip_abs_lag"] == 0 and own["gain"] == pytest.approx(1.0)
    control = _control(_Listens())
    assert control["wrong_audio"]["tier_a"]["zero_lag_corr"] <= 0.4
    assert CONTROL_GATE.check(_flat(control))["passed"] is True


def test_a_student_that_copies_the_mouth_through_its_input_fails_the_control():
    control = _control(_Copies())
    assert control["wrong_audio"]["tier_a"]["zero_lag_corr"] == pytest.approx(1.0)
    assert CONTROL_GATE.check(_flat(control))["passed"] is False


def test_clip_lag_gate_names_the_worst_clip():
    pooled = student_tier_a(_Listens(), _Reference(3), PixelCodedDetector(), max_lag=8, components=0)
    rows = {g["name"]: g for g in check_gates(pooled, {"max_clip_abs_lag": 1})}
    assert rows["max_clip_abs_lag"]["passed"] is True and rows["max_clip_abs_lag"]["bound"] == "<= 1"


def test_swapped_audio_keeps_everything_else_and_refuses_other_lengths():
    a, b = _row(0), _row(1)
    swapped = with_audio_of(a, b)
    assert swapped["audio"] == b["audio"] and swapped["frames"] == a["frames"] and swapped["id"] == a["id"]
    short = {**b, "audio_shape": [100]}
    with pytest.raises(UserInputError, match="clip-0.*clip-1.*audio length"):
        with_audio_of(a, short)


def test_one_clip_is_too_few_for_the_control():
    with pytest.raises(UserInputError, match="at least 2 clips.*'heldout' has 1"):
        student_tier_a(_Listens(), _Reference(1), PixelCodedDetector(), audio_shift=1, components=0)
