"""The shipped `demo` teacher: it loads as a preset, and on held-out sentences it draws a face whose mouth follows
the audio it is given (MediaPipe landmarks, the evaluation's detector; and a pixel measure that needs nothing)."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from compress.data import espeak_available
from compress.models.auto import build_preset, get_preset
from compress.models.demo import DEMO_CONFIG, DEMO_DIR
from compress.pipelines import S2VComponents
from compress.pipelines.demo_check import heldout_check, heldout_set, lagged_correlation
from tests.helpers import ESPEAK_MISSING

# issue #10's bar for the mouth (lag-0 correlation with the true schedule, |best lag| <= 1), met by both measures;
# the other bounds are set from the shipped weights' measurements in their model card (face mesh: 0.638 own audio,
# 0.278 another sentence's audio; pixel measure: 0.690 and 0.274; frame PSNR 25.5 dB), with room for other CPUs'
# arithmetic
MIN_CORRELATION = 0.6
MAX_SWAPPED_CORRELATION = 0.4
MIN_PSNR = 24.5


def test_demo_preset_loads_the_shipped_weights_and_card():
    preset = get_preset("demo")
    assert preset.weights_dir == DEMO_DIR
    model = build_preset("demo")
    assert {k: v for k, v in model.config.items() if k in DEMO_CONFIG} == {
        k: list(v) if isinstance(v, tuple) else v for k, v in DEMO_CONFIG.items()}
    stored = load_file(DEMO_DIR / "diffusion_pytorch_model.safetensors")
    assert all(torch.equal(v, stored[k]) for k, v in model.state_dict().items())
    assert 1e6 < sum(p.numel() for p in model.parameters()) < 5e6
    assert any(p.abs().sum() > 0 for p in model.audio_injectors.parameters())  # trained: injectors left zero
    card = (DEMO_DIR / "README.md").read_text()
    assert "scripts/train_demo_teacher.py" in card and "held-out" in card
    assert json.loads((DEMO_DIR / "training.json").read_text())["args"]["dit_steps"]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """Held-out clips spoken by espeak-ng, the demo teacher's training speech."""
    if not espeak_available():
        pytest.skip(ESPEAK_MISSING)
    inputs = heldout_set(tmp_path_factory.mktemp("heldout"))
    return heldout_check(S2VComponents.tiny(dit=build_preset("demo")), inputs)


@pytest.fixture(scope="module")
def landmarks(generated, detector):
    from compress.face.mouth import mouth_opening

    tracks = {k: [detector.detect(v) for v in generated[k]] for k in ("own", "swapped")}
    return {k: [(t.found, mouth_opening(t.points)) for t in v] for k, v in tracks.items()}


def _assert_follows(correlation: dict[int, float], swapped: float) -> None:
    best = max(correlation, key=correlation.get)
    assert correlation[0] >= MIN_CORRELATION, correlation
    assert abs(best) <= 1, correlation
    assert swapped <= MAX_SWAPPED_CORRELATION, (swapped, correlation)


@pytest.mark.slow
def test_every_generated_frame_has_a_detected_face(landmarks):
    for found, _ in landmarks["own"] + landmarks["swapped"]:
        assert found.all(), f"no face in frames {np.flatnonzero(~found).tolist()}"


@pytest.mark.slow
def test_landmark_mouth_follows_heldout_audio_and_not_another_sentence(generated, landmarks):
    own = lagged_correlation([m for _, m in landmarks["own"]], generated["truth"])
    swapped = lagged_correlation([m for _, m in landmarks["swapped"]], generated["truth"])[0]
    _assert_follows(own, swapped)


@pytest.mark.slow
def test_pixel_mouth_follows_heldout_audio_and_not_another_sentence(generated):
    _assert_follows(generated["pixel_correlation"], generated["pixel_swapped"])


@pytest.mark.slow
def test_identity_and_background_are_preserved(generated):
    assert generated["psnr"] >= MIN_PSNR
