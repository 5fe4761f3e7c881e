"""Held-out evaluation by default: a student's manifest says which clips it trained on, the evaluate stage and
`compress eval` refuse its training clips (exit 2, naming the artifact, the stage and the clips) unless allowed,
and every record's `inputs` says "held-out", "seen" or "partly seen". A student judged through a tiny decoder
(`--decoder`): the decoder's training clips count as seen, and a decoder of video latents is refused; the evaluate
stage runs each S2V DiT again through a decoder of video latents."""

import json

import pytest

from compress import Recipe
from compress.errors import UserInputError
from compress.evaluate.records import read_records
from compress.reference import ReferenceArtifact
from compress.reference.seen import SEEN_FIELD, content_keys
from compress.stages.distill import DistillStage
from compress.stages.evaluate import EvaluateStage
from compress.stages.reference import ReferenceStage
from tests.helpers import run_cli

SUITE = """name: heldout
lipsync: {tiers: [B, C]}
cost: {latency_repeats: 1, warmup: 0, flops: false, fit: null}
"""
TINY = dict(frames=8, size="64*64", num_inference_steps=2)
STAGES = [ReferenceStage(name="train", inputs="builtin:quickstart", max_clips=2, **TINY),
          ReferenceStage(name="heldout", inputs="builtin:heldout", max_clips=1, **TINY),
          DistillStage(name="lipsync", input="source", student="lipsync-30m", reference="train", holdout=1,
                       student_config={"channels": 32, "mid_blocks": 1, "audio_channels": 32, "audio_dim": 32},
                       train={"steps": 2, "batch_size": 2, "lr": 1e-3, "checkpoint_every": 2})]

pytestmark = pytest.mark.slow  # a recipe run: two tiny references and a small student (about a minute)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("heldout")
    (root / "heldout.yaml").write_text(SUITE)
    Recipe(model="tiny", output="runs/h", stages=STAGES).run(root=root, quiet=True)
    return root


def _evaluate(root, reference: str, **options):
    stage = EvaluateStage(name="eval", reference=reference, artifacts=["lipsync"], suite="heldout.yaml", **options)
    result = Recipe(model="tiny", output="runs/h", stages=[*STAGES, stage]).run(root=root, quiet=True)
    return json.loads((result["eval"].path / "results/lipsync.json").read_text())


def test_the_student_manifest_records_its_training_and_holdout_clips(root):
    student = json.loads(next((root / "runs/h").glob("*-lipsync/manifest.json")).read_text())
    train = ReferenceArtifact(next((root / "runs/h").glob("*-train")))
    seen = student[SEEN_FIELD]
    assert seen["reference"] == "train" and seen["reference_hash"] == train.artifact.hash
    assert [(c["id"], c["role"]) for c in seen["clips"]] == [("train-000", "train"), ("train-001", "holdout")]
    assert [c["key"] for c in seen["clips"]] == list(content_keys(train).values())


def test_a_held_out_reference_is_evaluated_and_labelled(root, monkeypatch):
    monkeypatch.chdir(root)
    record = _evaluate(root, "heldout")
    assert record["inputs"] == {"status": "held-out", "evaluated": ["heldout-000"], "seen": [], "seen_by": {}}
    [board] = read_records(root / "runs/h/leaderboard")
    assert board["inputs"]["status"] == "held-out"


def test_the_stage_refuses_training_clips_unless_allowed(root, monkeypatch):
    monkeypatch.chdir(root)
    with pytest.raises(UserInputError) as refused:
        _evaluate(root, "train")
    message = str(refused.value)
    assert "artifact 'lipsync'" in message and "stage 'lipsync' saw train-000" in message
    assert "allow_seen_inputs: true" in message and "train-001" not in message  # the student's holdout is unseen
    record = _evaluate(root, "train", allow_seen_inputs=True)
    assert record["inputs"] == {"status": "partly seen", "evaluated": ["train-000", "train-001"],
                                "seen": ["train-000"], "seen_by": {"lipsync": ["train-000"]}}


def test_compress_eval_refuses_with_exit_2_and_labels_an_opt_in(root, monkeypatch, capsys):
    monkeypatch.chdir(root)
    student, train = (str(next((root / "runs/h").glob(f"*-{name}"))) for name in ("lipsync", "train"))
    args = ["eval", student, "--suite", "heldout.yaml", "--reference", train, "--leaderboard", "cli-board"]
    code, _, err = run_cli(monkeypatch, capsys, *args)
    err = " ".join(err.split())  # rich wraps long lines
    assert code == 2 and f"artifact 'lipsync' ({student})" in err and "stage 'lipsync' saw train-000" in err
    assert "--allow-seen" in err and not (root / "cli-board").exists()
    code, _, err = run_cli(monkeypatch, capsys, *args, "--allow-seen")
    assert code == 0 and "WARNING" in err
    [record] = read_records(root / "cli-board")
    assert record["inputs"]["status"] == "partly seen" and record["inputs"]["seen"] == ["train-000"]


SMALL_DECODER = dict(input="source", student_config={"channels": [32, 16, 16, 8], "latent_blocks": 1},
                     train={"steps": 1, "batch_size": 2, "checkpoint_every": 1})
DECODERS = [DistillStage(name="frame-decoder", student="tiny-frame-decoder", reference="heldout", holdout=0,
                         **SMALL_DECODER),
            DistillStage(name="video-decoder", student="tiny-vae-decoder", reference="train", **SMALL_DECODER)]


def test_compress_eval_through_a_decoder_counts_its_clips_and_refuses_a_video_decoder(root, monkeypatch, capsys):
    monkeypatch.chdir(root)
    Recipe(model="tiny", output="runs/h", stages=[*STAGES, *DECODERS]).run(root=root, quiet=True)
    student, heldout, frame, video = (str(next((root / "runs/h").glob(f"*-{name}")))
                                      for name in ("lipsync", "heldout", "frame-decoder", "video-decoder"))
    args = ["eval", student, "--suite", "heldout.yaml", "--reference", heldout, "--leaderboard", "chain-board"]
    code, _, err = run_cli(monkeypatch, capsys, *args, "--decoder", frame)
    err = " ".join(err.split())
    assert code == 2 and "artifact 'lipsync'" in err and "decoded by 'frame-decoder'" in err
    assert "stage 'frame-decoder' saw heldout-000" in err and not (root / "chain-board").exists()
    code, _, err = run_cli(monkeypatch, capsys, *args, "--decoder", video)
    assert code == 2 and "but the decoder (TinyVAEDecoder, latents: video) decodes the teacher's video latents" in \
        " ".join(err.split())


def test_the_stage_evaluates_each_dit_again_through_a_video_decoder(root, monkeypatch):
    monkeypatch.chdir(root)
    stage = EvaluateStage(name="eval-decoded", reference="heldout", artifacts=["source", "lipsync"],
                          decoder="video-decoder", suite="heldout.yaml")
    result = Recipe(model="tiny", output="runs/h", stages=[*STAGES, *DECODERS, stage]).run(root=root, quiet=True)
    results = result["eval-decoded"].path / "results"
    assert sorted(p.stem for p in results.glob("*.json")) == ["lipsync", "source", "source+video-decoder"]
    plain, decoded = (json.loads((results / f"{name}.json").read_text())
                      for name in ("source", "source+video-decoder"))
    assert decoded["artifact"]["decoder"]["name"] == "video-decoder" and decoded["inputs"]["status"] == "held-out"
    assert decoded["sampling"] == plain["sampling"]  # sampled alike, decoded apart
    assert plain["metrics"]["fidelity"]["frame_psnr"] > decoded["metrics"]["fidelity"]["frame_psnr"]
    assert decoded["metrics"]["cost"]["wall_s_per_clip"] > 0
    refused = EvaluateStage(name="eval-refused", reference="heldout", artifacts=["source"], decoder="frame-decoder",
                            suite="heldout.yaml")
    with pytest.raises(UserInputError, match=r"'frame-decoder' decodes per-frame image latents .*, but none of the "
                                             r"evaluated artifacts \(source\) emits them \(a LipSyncStudent does\)"):
        Recipe(model="tiny", output="runs/h", stages=[*STAGES, *DECODERS, refused]).run(root=root, quiet=True)
