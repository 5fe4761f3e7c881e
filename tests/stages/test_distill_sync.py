"""The distill stage's sync loss (a sync_expert stage's frozen expert on 5-frame windows of the lip-sync student's
decoded frames) and its landmark mouth boxes: settings, the sync term in the history, the errors that name what
is missing."""

import json
import math

import pytest

from compress import Recipe
from compress.errors import RecipeError, UserInputError
from compress.face.landmarks import ENV_VAR
from compress.stages.distill import DistillStage
from compress.stages.reference import ReferenceStage
from compress.stages.sync_expert import SyncExpertStage

REFERENCE = ReferenceStage(name="reference", max_clips=3, frames=16, size="64*64", num_inference_steps=2)
EXPERT = SyncExpertStage(name="expert", reference="reference", steps=2, width=8)
SMALL = {"channels": 32, "mid_blocks": 1, "audio_channels": 32, "audio_dim": 32}
SYNCED = dict(name="synced", input="source", student="lipsync-30m", student_config=SMALL, reference="reference",
              sync_expert="expert", losses={"latent_mse": 1.0, "sync": 0.5},
              train={"steps": 3, "batch_size": 2, "lr": 1e-3, "checkpoint_every": 3})
LANDMARKS = dict(name="landmarks", input="source", student="lipsync-30m", student_config=SMALL,
                 reference="reference", losses={"latent_mse": 1.0, "mouth_weight": 2.0, "mouth_box": "landmarks"},
                 train={"steps": 1, "batch_size": 2})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("distill_sync")
    stages = [REFERENCE, EXPERT, DistillStage(**SYNCED)]
    return root, Recipe(model="tiny", output="runs/s", stages=stages).run(root=root, quiet=True)


@pytest.mark.slow
def test_a_sync_loss_run_trains_and_records_the_sync_term(run):
    _, result = run
    artifact = result["synced"]
    history = json.loads((artifact.path / "train_history.json").read_text())
    terms = history["terms"]
    assert set(terms) == {"latent_mse", "sync"} and len(terms["sync"]) == len(history["losses"]) == 3
    for total, latent, sync in zip(history["losses"], terms["latent_mse"], terms["sync"]):
        assert math.isfinite(sync) and sync > 0 and total == pytest.approx(latent + 0.5 * sync, rel=1e-4)
    assert artifact.metrics["heldout_error"] is not None


def test_the_expert_is_a_read_stage():
    assert DistillStage(**SYNCED).referenced_stages()["sync_expert"] == "expert"  # its hash is in the resume keys
    with pytest.raises(RecipeError, match=r"stages\[1\] \(synced\)\.sync_expert: .*found 'expert'"):
        Recipe(model="tiny", output="runs/x", stages=[REFERENCE, DistillStage(**SYNCED)])


def test_bad_sync_settings_name_the_field():
    with pytest.raises(ValueError, match="losses.sync needs `sync_expert`"):
        DistillStage(**{**SYNCED, "sync_expert": None})
    with pytest.raises(ValueError, match="sync_expert is set but losses.sync is 0"):
        DistillStage(**{**SYNCED, "losses": {"latent_mse": 1.0}})
    with pytest.raises(ValueError, match="sync_expert: the sync loss trains lip-sync students .* tiny-vae-decoder"):
        DistillStage(**{**SYNCED, "student": "tiny-vae-decoder", "student_config": {},
                        "losses": {"pixel_l1": 1.0, "sync": 0.5}})


@pytest.mark.slow
def test_landmark_boxes_without_the_landmark_environment_say_how_to_get_it(run, monkeypatch):
    root, _ = run
    monkeypatch.setenv(ENV_VAR, str(root / "no-such-python"))
    stages = [REFERENCE, DistillStage(**LANDMARKS)]
    with pytest.raises(UserInputError, match=r"setup_landmarks\.sh.*mouth_box: inputs.*fixed box"):
        Recipe(model="tiny", output="runs/s", stages=stages).run(root=root, quiet=True)


@pytest.mark.slow
def test_landmark_boxes_name_a_clip_without_a_face(run, detector):
    """The random tiny teacher draws no face (`detector`: the landmark environment is there)."""
    root, _ = run
    stages = [REFERENCE, DistillStage(**LANDMARKS)]
    with pytest.raises(UserInputError, match=r"landmarks: clip '[^']+': no face in any of the 16 frames"):
        Recipe(model="tiny", output="runs/s", stages=stages).run(root=root, quiet=True)
