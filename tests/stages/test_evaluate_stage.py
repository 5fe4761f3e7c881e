"""The evaluate stage on the tiny teacher: reference + int8 + evaluate, as the quickstart runs them (smaller)."""

import json

import pytest

from compress import Recipe
from compress.errors import RecipeError
from compress.evaluate.records import read_records
from compress.stages.evaluate import EvaluateStage
from compress.stages.quantize import QuantizeStage
from compress.stages.reference import ReferenceStage

FAST_SUITE = """name: fast
max_inputs: 1
lipsync: {max_lag: 4}
cost: {latency_repeats: 1, warmup: 0, flops: false, fit: {targets: [rtx4090], size: "480*832", frames: 80}}
gates:
  - {metric: fidelity.latent_rel_error, max: 0.05}
"""


def stages():
    return [ReferenceStage(name="reference", max_clips=1, size="64*64", frames=8, num_inference_steps=2),
            QuantizeStage(name="int8", input="source", scheme="int8_weight_only", reference="reference",
                          calibration_batches=1),
            EvaluateStage(name="eval", reference="reference", suite="suites/fast.yaml")]


@pytest.mark.slow
def test_evaluate_stage_scores_every_model_and_fills_the_leaderboard(workdir):
    (workdir / "suites").mkdir()
    (workdir / "suites" / "fast.yaml").write_text(FAST_SUITE)
    result = Recipe(model="tiny", output="runs/e", stages=stages()).run(quiet=True)
    evaluated = result["eval"]
    assert evaluated.model_dir is None and evaluated.metrics["evaluated"] == 2  # source and int8, by default
    source, int8 = (json.loads((evaluated.path / "results" / f"{n}.json").read_text()) for n in ("source", "int8"))
    # the teacher regenerated with the reference's seeds and components reproduces its own outputs exactly
    assert source["metrics"]["fidelity"]["latent_rel_error"] == 0.0
    assert source["metrics"]["fidelity"]["frame_psnr"] == 100.0
    assert 0 < int8["metrics"]["fidelity"]["latent_rel_error"] < 0.05
    assert int8["metrics"]["fidelity"]["latent_rel_error"] == pytest.approx(
        result["int8"].metrics["final_latent_rel_error"], rel=1e-4)  # the quantize stage's own check agrees
    cost = int8["metrics"]["cost"]
    assert cost["bytes_by_dtype"]["int8"] > 0 and cost["latency_ms_per_frame"] > 0 and "gmacs_per_frame" not in cost
    assert cost["dit_forwards_per_clip"] == 2 * 2  # the reference's 2 steps, twice each with guidance (4.5)
    assert cost["fit"]["status"] == "ok" and "rtx4090" in cost["fit"]["targets"]
    for tier, record in [(t, int8) for t in "ABC"]:
        assert record["tiers"][tier]["status"].startswith(("ok", "not computed: "))
    assert int8["tiers"]["C"]["status"] == "not computed: no SyncNet weights given"
    assert int8["gates"][0] == {"name": "fidelity.latent_rel_error", "bound": "<= 0.05", "passed": True,
                                "value": int8["metrics"]["fidelity"]["latent_rel_error"]}
    board = read_records(workdir / "runs/e/leaderboard")
    assert sorted(r["artifact"]["name"] for r in board) == ["int8", "source"]
    page = (evaluated.path / "leaderboard.html").read_text()
    assert all(f'data-artifact="{r["id"]}"' in page for r in board)
    assert "| int8 | quantize | fast |" in (evaluated.path / "leaderboard.md").read_text()
    # the evaluated artifacts are untouched, and a second run resumes without adding records
    assert result["int8"].hash == json.loads((result["int8"].path / "manifest.json").read_text())["hash"]
    again = Recipe(model="tiny", output="runs/e", stages=stages()).run(quiet=True)
    assert [r.status for r in again.results] == ["skipped"] * 4
    assert len(read_records(workdir / "runs/e/leaderboard", history=True)) == 2


def test_artifacts_must_name_earlier_stages():
    bad = EvaluateStage(name="eval", reference="reference", artifacts=["int8", "nope"])
    with pytest.raises(RecipeError, match=r"stages\[2\] \(eval\)\.artifacts\[1\]: expected 'source' or the name of an "
                                          r"earlier model-producing or 'export' stage \(source, int8\); found 'nope'"):
        Recipe(model="tiny", output="runs/x", stages=[*stages()[:2], bad])
