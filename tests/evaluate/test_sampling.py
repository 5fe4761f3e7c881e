"""Evaluation samples each S2V DiT as it is meant to run: a model that carries its own sampling (a few-step DMD
model's manifest `sampling`) with it, others as the reference, `--sampler/--steps/--guidance` or the stage's
`sampling:` replacing either; the record says which, and its cost counts DiT forwards and wall time per clip."""

import json

import pytest

from compress import Recipe
from compress.artifacts import Artifact
from compress.errors import RecipeError, UserInputError
from compress.evaluate.generate import EvalContext, recipe_seed
from compress.evaluate.report import evaluate_artifact, sampling_used
from compress.evaluate.suite import Suite
from compress.models.s2v import WanS2VTransformer3DModel
from compress.pipelines.sampling import SamplingConfig, SamplingOverride
from compress.reference import ReferenceArtifact
from compress.stages.evaluate import EvaluateStage
from compress.stages.reference import ReferenceStage
from tests.helpers import run_cli

FEW_STEP = {"sampler": "euler", "num_inference_steps": 4, "guidance_scale": 0.0, "shift": 3.0}
SUITE = """name: sampling
lipsync: {tiers: [B]}
cost: {latency_repeats: 1, warmup: 0, flops: false, onnx: false, fit: null}
"""


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A one-input reference of the tiny teacher: 3 UniPC steps with guidance 4.5, 6 DiT forwards per clip."""
    root = tmp_path_factory.mktemp("eval-sampling")
    (root / "sampling.yaml").write_text(SUITE)
    stage = ReferenceStage(name="reference", max_clips=1, size="64*64", frames=8, num_inference_steps=3)
    Recipe(model="tiny", output="runs/s", stages=[stage]).run(root=root, quiet=True)
    return root


@pytest.fixture
def forwards(monkeypatch):
    """Counts every DiT forward."""
    calls, forward = [], WanS2VTransformer3DModel.forward

    def counted(self, *args, **kwargs):
        calls.append(1)
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(WanS2VTransformer3DModel, "forward", counted)
    return calls


def evaluate(root, manifest_sampling=None, override=None) -> dict:
    """The teacher (`source`) evaluated against the reference; `manifest_sampling` as if its artifact carried it."""
    source = Artifact.open(root / "runs/s/00-source")
    if manifest_sampling is not None:
        source = Artifact(source.path, {**source.manifest, "sampling": manifest_sampling})
    ref = Artifact.open(root / "runs/s/01-reference")
    ctx = EvalContext(root=root)
    ctx.seed = recipe_seed(ref, ctx.resolve_path)
    reference = ReferenceArtifact(ref, ctx)
    return evaluate_artifact(source, reference, Suite(name="t", lipsync={"tiers": ["B"]},
                                                      cost={"latency_repeats": 1, "warmup": 0, "flops": False,
                                                            "onnx": False, "fit": None}), ctx, sampling=override)


def test_a_model_that_carries_its_sampling_is_generated_with_it(root, forwards):
    teacher = evaluate(root)
    assert teacher["sampling"] == {"sampler": "unipc", "num_inference_steps": 3, "guidance_scale": 4.5,
                                   "shift": 3.0, "source": "reference"}
    assert teacher["metrics"]["cost"]["dit_forwards_per_clip"] == 6
    assert teacher["metrics"]["fidelity"]["latent_rel_error"] == 0.0  # the reference's own sampling reproduced
    # the fidelity pass and one timed generation (one clip each), and one timed forward on its example inputs
    assert len(forwards) == 2 * 6 + 1

    forwards.clear()
    few = evaluate(root, FEW_STEP)
    assert few["sampling"] == {**FEW_STEP, "source": "artifact"}
    cost = few["metrics"]["cost"]
    assert cost["dit_forwards_per_clip"] == 4 and len(forwards) == 2 * 4 + 1  # counted, not only computed
    assert cost["wall_s_per_clip"] > 0 and cost["wall_clips"] == 1 and cost["wall_source"].startswith("measured")
    assert 0 < cost["dit_s_per_clip"] < cost["wall_s_per_clip"]  # the DiT's share; the VAE and encoders take the rest
    assert few["metrics"]["fidelity"]["latent_rel_error"] > 0.01  # another sampler: other latents

    forwards.clear()
    override = SamplingOverride(num_inference_steps=2)  # replaces the artifact's own steps, keeps the rest
    assert evaluate(root, FEW_STEP, override)["sampling"] == {**FEW_STEP, "num_inference_steps": 2,
                                                             "source": "artifact, overridden: num_inference_steps"}
    assert len(forwards) == 2 * 2 + 1


def test_a_descendant_samples_as_its_nearest_ancestor_that_carries_sampling(root):
    """A quantized or pruned few-step model keeps its parent's sampling; the teacher's lineage carries none."""
    source, run = Artifact.open(root / "runs/s/00-source"), root / "runs/s"
    (run / "05-dmd").mkdir(exist_ok=True)
    (run / "05-dmd" / "manifest.json").write_text(json.dumps({**source.manifest, "name": "dmd", "sampling": FEW_STEP}))
    int8 = Artifact(run / "06-int8", {**source.manifest, "name": "int8", "input": {"path": str(run / "05-dmd")}})
    ctx = EvalContext(root=root)
    reference = ReferenceArtifact(Artifact.open(run / "01-reference"), ctx)
    assert sampling_used(int8, reference, ctx.resolve_path) == (SamplingConfig(**FEW_STEP), "ancestor 'dmd'")
    assert sampling_used(source, reference, ctx.resolve_path) == (reference.config.sampling, "reference")


def test_bad_sampling_in_a_manifest_names_the_artifact(root):
    with pytest.raises(UserInputError, match=r"artifact 'source' \(.*00-source\): invalid manifest sampling:\n"
                                             r"  - sampling\.sampler: expected 'unipc' or 'euler'; found 'ddim'\n"
                                             r"  - sampling\.num_inference_steps: expected greater than or equal "
                                             r"to 1; found 0"):
        evaluate(root, {**FEW_STEP, "sampler": "ddim", "num_inference_steps": 0})
    with pytest.raises(UserInputError, match="manifest 'sampling' must be a mapping of sampler, "
                                             "num_inference_steps, guidance_scale, shift; found 'euler'"):
        evaluate(root, "euler")


def test_compress_eval_overrides_the_sampling_of_a_plain_model(root, monkeypatch, capsys):
    monkeypatch.chdir(root)
    reference = "runs/s/01-reference"
    args = ("eval", "runs/s/00-source", "--suite", "sampling.yaml", "--reference", reference, "--leaderboard", "board")
    code, out, err = run_cli(monkeypatch, capsys, *args, "--sampler", "euler", "--steps", "4", "--guidance", "0",
                             "--json")
    assert code == 0, err
    record = json.loads(out)
    assert record["sampling"] == {**FEW_STEP, "source": "reference, overridden: sampler, num_inference_steps, "
                                                        "guidance_scale"}
    assert record["metrics"]["cost"]["dit_forwards_per_clip"] == 4
    for bad, expected in ((("--sampler", "ddim"), "expected one of unipc, euler; found 'ddim'"),
                          (("--steps", "0"), "Invalid value for '--steps': Input should be greater than or equal to 1"),
                          (("--guidance", "-1"), "expected a finite number from 0")):
        code, _, err = run_cli(monkeypatch, capsys, *args, *bad)
        assert code == 2 and expected in err.replace("\n", " "), err


def test_the_stage_samples_with_its_sampling_and_validates_it(root, monkeypatch):
    monkeypatch.chdir(root)
    stages = [ReferenceStage(name="reference", max_clips=1, size="64*64", frames=8, num_inference_steps=3),
              EvaluateStage(name="eval", reference="reference", suite="sampling.yaml", allow_seen_inputs=True,
                            sampling={"sampler": "euler", "num_inference_steps": 1, "guidance_scale": 0})]
    result = Recipe(model="tiny", output="runs/s", stages=stages).run(root=root, quiet=True)
    headline = result["eval"].metrics["artifacts"]["source"]
    assert headline["dit_forwards_per_clip"] == 1 and headline["wall_s_per_clip"] > 0
    record = json.loads((result["eval"].path / "results" / "source.json").read_text())
    assert record["sampling"]["sampler"] == "euler" and record["sampling"]["source"].startswith("reference, overr")
    with pytest.raises(RecipeError, match=r"sampling\.num_inference_steps: expected greater than or equal to 1"):
        Recipe.model_validate({"model": "tiny", "output": "o", "stages": [
            {"kind": "reference"}, {"kind": "evaluate", "reference": "reference",
                                    "sampling": {"num_inference_steps": 0}}]})
