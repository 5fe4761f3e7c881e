"""The distill stage's `method: dmd` on the tiny teacher: the artifact (peft adapters, a merged model that samples as
the adapters did, the sampling record evaluation reads, the history, the clips it saw) and its bad settings."""

import json

import pytest
import torch

from compress import Recipe
from compress.artifacts import Artifact
from compress.distill.dmd import reference_conditionings
from compress.distill.dmd_training import LIVEAVATAR_LORA, sample_error
from compress.distill.lora import ADAPTERS_DIR
from compress.models.s2v.liveavatar_lora import read_liveavatar_lora, read_peft_adapters
from compress.pipelines.sampling import euler_sigmas
from compress.reference import ReferenceArtifact
from compress.stages.distill import DistillStage
from compress.stages.reference import ReferenceStage
from tests.helpers import torch_threads

REFERENCE = ReferenceStage(name="reference", max_clips=3, frames=8, size="64*64", num_inference_steps=2)
DMD = dict(name="dmd", method="dmd", reference="reference", holdout=1,
           dmd={"rank": 4, "fake_updates_per_step": 1, "regression_warmup_steps": 1},
           train={"steps": 2, "batch_size": 1, "lr": 1e-3, "checkpoint_every": 1})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("dmd")
    with torch_threads(1):
        recipe = Recipe(model="tiny", output="runs/d", stages=[REFERENCE, DistillStage(**DMD)])
        result = recipe.run(root=root, quiet=True)
    return root, result


@pytest.mark.slow  # a reference and a DMD run: about 15 s on the shared 2-core CPU
def test_the_artifact_holds_adapters_a_merged_generator_and_how_to_sample_it(run):
    root, result = run
    artifact = result["dmd"]
    assert artifact.manifest["sampling"] == {"sampler": "euler", "num_inference_steps": 4, "guidance_scale": 0.0,
                                             "shift": 3.0}
    assert artifact.manifest["dmd_layout"] == {"layout": "shared-base", "sharding": "none", "world_size": 1}
    m = artifact.metrics
    assert m["train_steps"] == 3 and m["dit_forwards"] == 4 and m["teacher_dit_forwards"] == 4  # 2 steps, CFG
    assert m["heldout_improvement"] == pytest.approx(1 - m["heldout_error"] / m["heldout_error_before"])
    peft = read_peft_adapters(artifact.path / ADAPTERS_DIR)
    liveavatar = read_liveavatar_lora(artifact.path / ADAPTERS_DIR / LIVEAVATAR_LORA)  # the same adapters, in bf16
    assert sorted(liveavatar.pairs) == sorted(peft.pairs) and (liveavatar.rank, liveavatar.alpha) == (4, 4)
    for module, (a, b) in peft.pairs.items():
        torch.testing.assert_close(liveavatar.pairs[module][1].float(), b.to(torch.bfloat16).float())
    history = json.loads((artifact.path / "train_history.json").read_text())
    assert len(history["losses"]) == 3 and len(history["terms"]["fake_loss"]) == 2
    roles = [clip["role"] for clip in artifact.manifest["inputs_seen"]["clips"]]
    assert roles == ["train", "train", "holdout"]
    reference = ReferenceArtifact(result["reference"])
    heldout = reference_conditionings(reference.rows.select([2]))
    merged = artifact.load_model()
    assert not any("lora" in name for name, _ in merged.named_parameters())
    assert sample_error(merged, heldout, euler_sigmas(4)) == pytest.approx(m["heldout_error"], rel=1e-4)
    assert not (root / "runs/d/.checkpoints/dmd").exists()


@pytest.mark.parametrize("change,message", [
    ({"reference": None}, "needs `reference`"),
    ({"student": "lipsync-30m"}, "student does not apply"),
    ({"lora": {"rank": 4}}, "lora does not apply"),
    ({"holdout": 0}, "holdout >= 1"),
    ({"train": {"steps": 2, "grad_accum": 2}}, "grad_accum"),
    ({"dmd": {"t_min": 0.9, "t_max": 0.1}}, "t_min"),
    ({"dmd": {"fake_updates": 5}}, "fake_updates"),
])
def test_bad_dmd_settings_are_named(change, message):
    with pytest.raises(ValueError, match=message):
        DistillStage(**{**DMD, **change})


def test_dmd_settings_on_another_method_are_refused():
    with pytest.raises(ValueError, match="apply to method 'dmd', not 'lora'"):
        DistillStage(method="lora", dmd={"rank": 4})
    with pytest.raises(ValueError, match="sharding 'fsdp' applies to method 'dmd'"):
        DistillStage(method="lora", train={"sharding": "fsdp"})


FSDP_SCRIPT = """
import json, sys
from compress import Recipe
from compress.artifacts import Artifact
from compress.stages.distill import DistillStage
from compress.stages.reference import ReferenceStage

reference = ReferenceStage(**json.loads(sys.argv[1]))
Recipe(model="tiny", output="runs/d", stages=[reference, DistillStage(**json.loads(sys.argv[2]))]).run(quiet=True)
"""


@pytest.mark.slow  # a reference and a DMD run on 2 gloo ranks: about 60 s on the shared 2-core CPU
def test_two_ranks_with_fsdp_write_whole_adapters_and_a_merged_generator_that_samples_as_they_did(tmp_path):
    from tests.helpers import torchrun

    dmd = {**DMD, "train": {**DMD["train"], "sharding": "fsdp"}, "dmd": {**DMD["dmd"], "checkpointing": True}}
    done = torchrun(FSDP_SCRIPT, tmp_path, REFERENCE.model_dump_json(exclude_unset=True), json.dumps(dmd))
    assert done.returncode == 0, done.stderr[-3000:]
    artifact = Artifact.open(tmp_path / "runs/d/02-dmd")
    assert artifact.manifest["dmd_layout"] == {"layout": "shared-base", "sharding": "fsdp", "world_size": 2}
    peft = read_peft_adapters(artifact.path / ADAPTERS_DIR)
    assert peft.rank == 4 and all(a.shape[0] == 4 and b.shape[1] == 4 for a, b in peft.pairs.values())
    reference = ReferenceArtifact(Artifact.open(tmp_path / "runs/d/01-reference"))
    heldout = reference_conditionings(reference.rows.select([2]))
    with torch_threads(1):
        error = sample_error(artifact.load_model(), heldout, euler_sigmas(4))
    assert error == pytest.approx(artifact.metrics["heldout_error"], rel=1e-4)
