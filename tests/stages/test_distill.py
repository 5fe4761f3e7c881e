"""The distill stage: the smallest lip-sync student and the tiny VAE decoder learn the tiny teacher's reference
outputs (held-out error well below the untrained student's), reload, generate frames for evaluation, and a run
killed mid-training resumes from its checkpoint with the same loss curve."""

import json
import shutil

import numpy as np
import pytest

from compress import Recipe
from compress.errors import StageError, UserInputError
from compress.models.students import LipSyncStudent, TinyVAEDecoder
from compress.pipelines.components import S2VComponents
from compress.reference import ReferenceArtifact
from compress.stages.distill import DistillStage
from compress.stages.reference import ReferenceStage

REFERENCE = ReferenceStage(name="reference", max_clips=3, frames=8, size="64*64", num_inference_steps=2)
LIPSYNC = dict(name="lipsync", input="source", student="lipsync-30m", reference="reference", holdout=1,
               losses={"latent_mse": 1.0, "pixel_l1": 0.1, "mouth_weight": 2.0},
               train={"steps": 6, "batch_size": 4, "lr": 1e-3, "checkpoint_every": 2})
DECODER = dict(name="decoder", input="source", student="tiny-vae-decoder", reference="reference", holdout=1,
               train={"steps": 6, "batch_size": 2, "lr": 2e-3, "checkpoint_every": 3})
REFERENCE_DECODER = {**DECODER, "name": "reference-decoder", "student_config": {"reference": True}}
SMALL = dict(name="small", input="source", student="lipsync-30m", reference="reference",
             student_config={"channels": 32, "mid_blocks": 1, "audio_channels": 32, "audio_dim": 32},
             train={"steps": 6, "batch_size": 4, "lr": 1e-3, "checkpoint_every": 3})
# Measured with these settings on the 2-core CPU machine (heldout_error / heldout_error_before): lipsync-30m 0.092,
# tiny-vae-decoder 0.29 (0.0074 for lipsync-30m after 40 steps of 8). The bound: at least 30% lower.
MAX_RATIO = 0.7


pytestmark = pytest.mark.slow  # every test uses `run`, a distill run of about a minute


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("distill")
    stages = [REFERENCE, DistillStage(**LIPSYNC), DistillStage(**DECODER), DistillStage(**REFERENCE_DECODER),
              DistillStage(**SMALL)]
    return root, Recipe(model="tiny", output="runs/d", stages=stages).run(root=root, quiet=True)


@pytest.mark.parametrize("name,cls", [("lipsync", LipSyncStudent), ("decoder", TinyVAEDecoder)])
def test_students_beat_the_untrained_student_on_held_out_inputs(run, name, cls):
    root, result = run
    artifact = result[name]
    metrics = artifact.metrics
    assert metrics["heldout_error"] <= MAX_RATIO * metrics["heldout_error_before"], metrics
    assert metrics["heldout_improvement"] == pytest.approx(1 - metrics["heldout_error"] / metrics["heldout_error_before"])
    history = json.loads((artifact.path / "train_history.json").read_text())["losses"]
    assert len(history) == metrics["train_steps"] == 6 and all(np.isfinite(history))
    assert isinstance(artifact.load_model(), cls)
    assert not (root / "runs/d/.checkpoints" / name).exists()  # removed once the stage finished


def test_students_generate_frames_for_evaluation(run):
    root, result = run
    row = ReferenceArtifact(result["reference"]).rows[2]
    components = S2VComponents.tiny(seed=0)
    assert result["reference-decoder"].load_model().config.reference  # decodes against the reference image
    for name in ("lipsync", "decoder", "reference-decoder"):
        out = result[name].load_model().eval_generate(row, components)
        assert out["frames"].shape == (8, 64, 64, 3) and out["frames"].dtype == np.uint8
    lipsync = result["lipsync"].load_model().eval_generate(row, components)
    assert lipsync["latents"].shape == (8, 16, 8, 8)


def test_a_killed_run_resumes_with_the_same_losses(run, monkeypatch):
    root, result = run
    import compress.distill.trainer as trainer

    real, calls = trainer._optimizer_step, []

    def dies_at_step_5(*args):
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("killed")
        return real(*args)

    monkeypatch.setattr(trainer, "_optimizer_step", dies_at_step_5)
    stages = [REFERENCE, DistillStage(**SMALL)]
    for done in ("00-source", "01-reference"):  # finished artifacts: the new recipe skips them
        shutil.copytree(root / "runs/d" / done, root / "runs/killed" / done)
    with pytest.raises(StageError, match="killed"):
        Recipe(model="tiny", output="runs/killed", stages=stages).run(root=root, quiet=True)
    assert list((root / "runs/killed/.checkpoints/small").glob("*/step-00000003.pt"))
    monkeypatch.setattr(trainer, "_optimizer_step", real)
    resumed = Recipe(model="tiny", output="runs/killed", stages=stages).run(root=root, quiet=True)["small"]
    assert resumed.metrics["resumed_from_step"] == 3
    losses = json.loads((resumed.path / "train_history.json").read_text())["losses"]
    assert losses == json.loads((result["small"].path / "train_history.json").read_text())["losses"]


def test_bad_settings_are_named(run):
    root, result = run
    with pytest.raises(ValueError, match="needs `student`"):
        DistillStage(reference="reference")
    with pytest.raises(ValueError, match="x0 < x1"):
        DistillStage(**{**LIPSYNC, "losses": {"mouth_box": [0.5, 0.5, 0.2, 0.9]}})
    with pytest.raises(ValueError, match=r"curve_every \(5\) must be a multiple of train.checkpoint_every \(2\)"):
        DistillStage(**{**LIPSYNC, "curve_reference": "reference", "curve_every": 5,
                        "train": {"steps": 10, "checkpoint_every": 2}})
    bad = DistillStage(**{**DECODER, "name": "bad", "losses": {"latent_mse": 1.0}})
    with pytest.raises(UserInputError, match="latent_mse does not apply"):
        Recipe(model="tiny", output="runs/d", stages=[REFERENCE, bad]).run(root=root, quiet=True)
