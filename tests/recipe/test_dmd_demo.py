"""recipes/dmd-demo.yaml runs as it is, shortened by `--set` overrides (fewer and shorter clips, fewer sampler and
training steps): DMD of the demo teacher to 4 Euler steps, a reference decoder of its video latents, and the held-out
evaluation of the teacher and the 4-step model, each decoded by the VAE and again through the decoder."""

import json

import pytest

from tests.helpers import run_recipe_shortened

SHORT = {"stages.reference.max_clips": 2, "stages.heldout.max_clips": 1, "stages.dmd.train.steps": 1,
         "stages.dmd.train.checkpoint_every": 1, "stages.dmd.dmd.fake_updates_per_step": 1, "stages.dmd.dmd.rank": 4,
         "stages.vae-decoder.recolour": 1, "stages.vae-decoder.train.steps": 2,
         "stages.vae-decoder.train.batch_size": 2, "stages.vae-decoder.train.checkpoint_every": 1}


@pytest.mark.slow
def test_dmd_demo_recipe_runs_shortened(workdir, monkeypatch, capsys):
    run = run_recipe_shortened(workdir, monkeypatch, capsys, "dmd-demo", SHORT)

    decoder_config = json.loads(next(run.glob("*-vae-decoder")).joinpath("config.json").read_text())
    assert decoder_config["reference"] and decoder_config["output_shuffle"]
    evaluate = next(run.glob("*-evaluate"))
    forwards = {"source": 4, "dmd": 4, "source+vae-decoder": 4, "dmd+vae-decoder": 4}  # UniPC 2 with CFG; Euler 4
    for name, count in forwards.items():
        record = json.loads((evaluate / "results" / f"{name}.json").read_text())
        assert record["inputs"]["status"] == "held-out", name
        assert record["metrics"]["tier_a"]["status"] == "ok", (name, record["metrics"]["tier_a"])
        assert record["metrics"]["cost"]["dit_forwards_per_clip"] == count, name
        assert record["metrics"]["cost"]["wall_s_per_clip"] > 0, name
    decoder = json.loads((evaluate / "results" / "vae-decoder.json").read_text())
    assert decoder["metrics"]["tier_a"]["status"] == "ok"
