"""`compress eval` and `compress leaderboard` on a tiny run: records, results in ARTIFACT/eval/, clear errors."""

import json

import pytest

from compress import Recipe
from compress.artifacts import Artifact
from compress.stages.quantize import QuantizeStage
from compress.stages.reference import ReferenceStage
from tests.helpers import run_cli

SUITE = """name: clitest
max_inputs: 1
lipsync: {tiers: [B, C]}
cost: {latency_repeats: 1, warmup: 0, flops: false, fit: {targets: [h100]}}
metrics: [fidelity.frame_psnr, fidelity.latent_rel_error, cost.bytes]
gates:
  - {metric: fidelity.frame_psnr, min: 1000}
"""


pytestmark = pytest.mark.slow  # every test uses `root`, a recipe run


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """One tiny run (reference + int8) shared by the tests of this module."""
    root = tmp_path_factory.mktemp("eval-cli")
    (root / "clitest.yaml").write_text(SUITE)
    stages = [ReferenceStage(name="reference", max_clips=1, size="64*64", frames=8, num_inference_steps=2),
              QuantizeStage(name="int8", input="source", scheme="int8_weight_only", reference="reference",
                            calibration_batches=1)]
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        Recipe(model="tiny", output="runs/c", stages=stages).run(quiet=True)
    return root


@pytest.fixture
def run(root, monkeypatch):
    monkeypatch.chdir(root)
    return {a.name: a for a in map(Artifact.open, sorted((root / "runs/c").glob("0*")))}


def test_eval_then_leaderboard(run, root, monkeypatch, capsys):
    workdir = root
    int8 = run["int8"]
    code, out, err = run_cli(monkeypatch, capsys, "eval", str(int8.path), "--suite", "clitest.yaml",
                             "--leaderboard", "board")
    assert code == 0, err
    assert "int8" in out and "FAIL: fidelity.frame_psnr" in out  # the reference is found beside the artifact
    [path] = (workdir / "board").glob("clitest--int8-*.json")
    record = json.loads(path.read_text())
    assert record["reference"]["name"] == "reference" and 0 < record["metrics"]["fidelity"]["latent_rel_error"] < 0.05
    assert record["tiers"]["A"]["status"] == "not computed: not in this suite"
    assert json.loads((int8.path / "eval" / "clitest.json").read_text())["id"] == record["id"]
    assert json.loads((int8.path / "manifest.json").read_text())["hash"] == int8.hash  # identity unchanged

    code, out, err = run_cli(monkeypatch, capsys, "leaderboard", "board", "--sort", "fidelity.frame_psnr",
                             "--markdown", "lb.md", "--html", "lb.html")
    assert code == 0, err
    assert "int8" in out and "wrote lb.html" in out
    assert "| int8 | quantize | clitest |" in (workdir / "lb.md").read_text()
    assert f'data-artifact="{record["id"]}"' in (workdir / "lb.html").read_text()


def test_eval_errors_exit_2_with_the_reason(run, monkeypatch, capsys):
    def error(*args):
        code, _, err = run_cli(monkeypatch, capsys, *args)
        assert code == 2, err
        return err.replace("\n", "")  # rich wraps long lines

    reference = str(run["reference"].path)
    assert "holds no model weights" in error("eval", reference, "--suite", "clitest.yaml", "--reference", reference)
    assert "no reference artifact to compare with; give --reference PATH" in error(
        "eval", str(run["source"].path), "--suite", "clitest.yaml")
    assert "no suite named 'nope'" in error("eval", str(run["int8"].path), "--suite", "nope")
    assert "leaderboard directory not found: missing-dir" in error("leaderboard", "missing-dir")
