"""recipes/fast-teacher.yaml runs as it is, shortened by `--set` overrides (fewer and shorter clips, fewer sampler
and training steps): the depth prune, its mouth-weighted LoRA recovery on the reference's clips, DMD of the
recovered model to 4 Euler steps, and the held-out evaluation of each, every model sampled as it is meant to run."""

import json

import pytest

from tests.helpers import run_recipe_shortened

SHORT = {"stages.reference.max_clips": 2, "stages.heldout.max_clips": 1, "stages.recovered.train.steps": 2,
         "stages.recovered.train.batch_size": 1, "stages.recovered.train.checkpoint_every": 1,
         "stages.recovered.lora.validation_batches": 2, "stages.dmd.train.steps": 1,
         "stages.dmd.train.checkpoint_every": 1, "stages.dmd.dmd.fake_updates_per_step": 1, "stages.dmd.dmd.rank": 4}


@pytest.mark.slow
def test_fast_teacher_recipe_runs_shortened(workdir, monkeypatch, capsys):
    run = run_recipe_shortened(workdir, monkeypatch, capsys, "fast-teacher", SHORT)

    (recovered,) = run.glob("*-recovered")
    manifest = json.loads((recovered / "manifest.json").read_text())
    assert manifest["stage_config"]["method"] == "lora" and manifest["metrics"]["train_steps"] == 2
    assert 0 < manifest["metrics"]["heldout_error"] < 1
    assert (recovered / "adapters" / "adapter_model.safetensors").is_file()
    (evaluate,) = run.glob("*-evaluate")
    forwards = {"source": 4, "depth": 4, "recovered": 4, "dmd": 4}  # 2 UniPC steps with CFG; 4 Euler steps without
    for name, count in forwards.items():
        record = json.loads((evaluate / "results" / f"{name}.json").read_text())
        assert record["inputs"]["status"] == "held-out", name
        assert record["metrics"]["tier_a"]["status"] == "ok", (name, record["metrics"]["tier_a"])
        assert record["metrics"]["cost"]["dit_forwards_per_clip"] == count, name
    assert record["sampling"]["sampler"] == "euler" and record["sampling"]["source"] == "artifact"
