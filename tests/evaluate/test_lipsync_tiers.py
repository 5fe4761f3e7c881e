"""Lip-sync tiers B and C through `evaluate_artifact`: a tiny sync expert trained on the reference (tier B) and
SyncNet with random weights from a safetensors file (tier C, mechanics only) give student and teacher scores,
their ratios and offsets; without weights or audio a tier says why."""

import math

import numpy as np
import pytest
import torch

from compress import Recipe
from compress.evaluate.generate import EvalContext
from compress.evaluate.lipsync import lipsync_tiers
from compress.evaluate.report import evaluate_artifact
from compress.evaluate.suite import Suite
from compress.evaluate.sync.syncnet import SyncNet, save_syncnet_weights
from compress.reference import ReferenceArtifact
from compress.stages.reference import ReferenceStage
from compress.stages.sync_expert import SyncExpertStage


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A one-clip reference of the tiny model and an expert trained on it (no held-out clip: no validation)."""
    root = tmp_path_factory.mktemp("lipsync_tiers")
    stages = [ReferenceStage(name="reference", inputs="builtin:quickstart", max_clips=1, frames=12, size="64*64",
                             num_inference_steps=2),
              SyncExpertStage(name="sync", reference="reference", steps=3, width=8, val_fraction=0)]
    result = Recipe(model="tiny", output="runs/lips", stages=stages).run(root=root, quiet=True)
    torch.manual_seed(0)
    weights = root / "syncnet.safetensors"
    state = {k: v for k, v in SyncNet().state_dict().items() if not k.endswith("num_batches_tracked")}
    save_syncnet_weights(state, weights)
    return root, result, weights


def suite(**lipsync) -> Suite:
    return Suite.model_validate({"name": "lips", "max_inputs": 1, "lipsync": lipsync, "metrics": [],
                                 "cost": {"latency_repeats": 1, "warmup": 0, "flops": False, "onnx": False,
                                          "fit": None}})


def test_tiers_b_and_c_score_student_against_teacher(run):
    root, result, weights = run
    ctx = EvalContext(root=root)
    reference = ReferenceArtifact(result["reference"], ctx, max_inputs=1)
    record = evaluate_artifact(result["source"], reference,
                               suite(tiers=["B", "C"], sync_expert=str(result["sync"].path),
                                     syncnet_weights=str(weights)), ctx)
    for tier in ("B", "C"):
        assert record["tiers"][tier]["status"] == "ok", record["tiers"][tier]
        pooled = record["metrics"][f"tier_{tier.lower()}"]
        for key in ("lse_d", "lse_c", "teacher_lse_d", "lse_d_ratio", "lse_c_ratio"):
            assert isinstance(pooled[key], float) and not math.isnan(pooled[key]), (tier, key, pooled)
        assert pooled["lse_d_ratio"] > 0 and pooled["clips"] == 1
        assert isinstance(pooled["av_offset"], float) and isinstance(pooled["teacher_av_offset"], float)
        clip = record["clips"][0][f"tier_{tier.lower()}"]
        assert clip["student"]["tier"] == clip["teacher"]["tier"] == tier
        assert {"lse_d_ratio", "lse_c_ratio", "av_offset", "av_offset_delta"} <= set(clip["compared"])
    assert record["metrics"]["tier_b"]["expert_offset_accuracy"] is None  # no held-out clip to validate on
    assert record["tiers"]["A"]["status"] == "not computed: not in this suite"


def test_tier_statuses_say_why(run):
    root, result, _ = run
    teacher = ReferenceArtifact(result["reference"], EvalContext(root=root), max_inputs=1).teacher(0)
    assert teacher["mouth_box"] is not None and teacher["audio"].dtype == np.float32
    pair = ({"frames": teacher["frames"]}, teacher)
    options = suite(tiers=["B", "C"]).lipsync
    tiers = lipsync_tiers([pair], options)
    assert tiers["C"]["status"] == "not computed: no SyncNet weights given"
    assert tiers["B"]["status"].startswith("not computed: no sync expert given")

    no_audio = ({"frames": teacher["frames"]}, {k: v for k, v in teacher.items() if k != "audio"})
    tiers = lipsync_tiers([no_audio], suite(tiers=["B"], sync_expert=str(result["sync"].path)).lipsync)
    assert tiers["B"]["status"] == "not computed: the reference outputs give no audio to score lip sync against"


def test_an_unreliable_expert_keeps_its_status(run, monkeypatch):
    root, result, _ = run
    from compress.models import sync_expert

    real = sync_expert.load_sync_expert

    def unreliable(path):
        expert = real(path)
        expert.register_to_config(validation_offset_accuracy=0.25, validation_reversed_audio_accuracy=1.0)
        return expert

    monkeypatch.setattr("compress.models.sync_expert.load_sync_expert", unreliable)
    teacher = ReferenceArtifact(result["reference"], EvalContext(root=root), max_inputs=1).teacher(0)
    tiers = lipsync_tiers([({"frames": teacher["frames"]}, teacher)],
                          suite(tiers=["B"], sync_expert=str(result["sync"].path)).lipsync)
    assert tiers["B"]["status"].startswith("unreliable: the sync expert found known lags in 25%")
    assert tiers["B"]["lse_d_ratio"] == pytest.approx(1.0)  # the teacher's own frames as the student
