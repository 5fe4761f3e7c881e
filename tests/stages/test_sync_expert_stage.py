"""The sync_expert stage: trains on a reference stage's teacher outputs, writes a reloadable expert and its
validation accuracy, is not a model for later stages, and says when the teacher taught it nothing."""

import json

import numpy as np
import pytest

from compress import Recipe
from compress.errors import RecipeError
from compress.evaluate.sync import tier_b_clip
from compress.face.sync_clip import SyncClip
from compress.models.sync_expert import load_sync_expert
from compress.recipe import load_recipe
from compress.reference import ReferenceArtifact
from compress.stages.base import stage_class
from compress.stages.reference import ReferenceStage
from compress.stages.sync_expert import SyncExpertStage
from compress.utils.arrays import decode_array

REFERENCE = dict(name="reference", inputs="builtin:quickstart", max_clips=2, frames=24, size="64*64",
                 num_inference_steps=2)


def recipe(**expert):
    stages = [ReferenceStage(**REFERENCE), SyncExpertStage(name="sync", reference="reference", **expert)]
    return Recipe(model="tiny", output="runs/sync", stages=stages)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("sync_stage")
    return root, recipe(steps=6, width=8).run(root=root, quiet=True)


@pytest.mark.slow
def test_the_stage_writes_a_reloadable_expert_and_its_validation(run):
    _, result = run
    artifact = result["sync"]
    report = json.loads((artifact.path / "sync_expert_report.json").read_text())
    assert report == {k: artifact.metrics[k] for k in report}
    assert (report["train_clips"], report["val_clips"], report["steps"]) == (1, 1, 6)
    expert = load_sync_expert(artifact)
    assert expert.config.width == 8
    assert expert.config.validation_offset_accuracy == report["validation_offset_accuracy"]
    assert "model" not in artifact.manifest  # an evaluation tool, not a model


@pytest.mark.slow
def test_a_noise_teacher_makes_an_unreliable_expert(run):
    """The tiny teacher has random weights: its video ignores the audio, so the expert fails its own checks."""
    _, result = run
    expert = load_sync_expert(result["sync"])
    assert min(expert.config.validation_offset_accuracy, expert.config.validation_reversed_audio_accuracy) < 0.8
    row = ReferenceArtifact(result["reference"]).rows[0]
    frames = decode_array(row, "frames")
    clip = SyncClip(frames, decode_array(row, "audio"), row["fps"], np.tile([16, 32, 48, 56], (len(frames), 1)))
    assert tier_b_clip(expert, clip)["status"].startswith("unreliable: the sync expert ")


@pytest.mark.slow
def test_a_rerun_skips_and_later_stages_start_from_the_model(run):
    root, _ = run
    again = recipe(steps=6, width=8).run(root=root, quiet=True)
    assert {r.name: r.status for r in again.results}["sync"] == "skipped"
    assert not SyncExpertStage.produces_model and stage_class("sync_expert") is SyncExpertStage


def test_recipe_errors_name_the_field(workdir):
    (workdir / "bad.yaml").write_text("model: tiny\noutput: runs/x\nstages:\n  - kind: sync_expert\n    steps: 0\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(workdir / "bad.yaml")
    assert "bad.yaml:4: stages[0].reference: required field is missing" in info.value.problems
    assert any("stages[0].steps: expected greater than or equal to 1" in p for p in info.value.problems)
    with pytest.raises(RecipeError, match=r"stages\[0\] \(sync_expert\)\.reference: .*found 'nowhere'"):
        Recipe(model="tiny", output="runs/x", stages=[SyncExpertStage(reference="nowhere")])
