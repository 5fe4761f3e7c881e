"""Tier B: a sync expert trained on clean synthetic clips catches the injected faults and passes the clean ones.

One expert is trained for the module (~0.26M parameters, 80 steps: ~30 s on a 2-core CPU) on 7 clean clips of
the built-in synthetic set, 2 of them held out for its own validation. Faults are checked on two clips it
trained on (tier B's use: teacher references of the same inputs) and one held-out clip. The expert's quality
bounds hold on the set's espeak-ng speech (needs_espeak); trained on the tone fallback it validates as
unreliable and misreads lags.
"""

import numpy as np
import pytest
import soundfile as sf
import torch

from compress.data import DEFAULT_FAULTS, build_synthetic_set, load_synthetic_set
from compress.evaluate.sync import compare_to_teacher, tier_b_clip, train_sync_expert
from compress.evaluate.sync.expert import embed_clip
from compress.errors import CheckpointError
from compress.face.crops import boxes_from_mouth_box
from compress.face.sync_clip import SyncClip
from compress.models.sync_expert import SyncExpert, load_sync_expert
from tests.helpers import needs_espeak, torch_threads

NUM_CLIPS, TRAIN_CLIPS = 7, 5
CHECKED = (0, 3, 5)  # two trained-on clips, one held out


def load_clip(entry: dict, item: dict | None = None) -> SyncClip:
    item = item or entry
    frames = np.load(item["frames"])
    audio, rate = sf.read(item["audio"], dtype="float32")
    boxes = boxes_from_mouth_box(entry["mouth_box"], frames.shape[1], frames.shape[2], len(frames))
    return SyncClip(frames, audio, entry["fps"], boxes, rate)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One CPU thread: the trained weights (and so the scores) do not depend on the machine's thread count."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def trained(tmp_path_factory, one_thread):
    path = build_synthetic_set(tmp_path_factory.mktemp("sync"), num_clips=NUM_CLIPS, size=64, faults=DEFAULT_FAULTS,
                               mp4=False)
    meta = load_synthetic_set(path)
    expert, report = train_sync_expert([load_clip(e) for e in meta["clips"]], steps=80, seed=0, width=16)
    return meta, expert, report


@pytest.fixture(scope="module")
def faults(trained):
    """{clip index: {"clean": report, tag: report vs the clean one}} for the checked clips."""
    meta, expert, _ = trained
    results = {}
    for i in CHECKED:
        entry = meta["clips"][i]
        clean = tier_b_clip(expert, load_clip(entry))
        variants = {v["tag"]: tier_b_clip(expert, load_clip(entry, v)) for v in entry["variants"]}
        results[i] = {"clean": clean, **{tag: compare_to_teacher(r, clean) for tag, r in variants.items()}}
    return results


@needs_espeak
def test_the_expert_validates_itself_on_held_out_clips(trained):
    _, expert, report = trained
    assert (report["train_clips"], report["val_clips"]) == (TRAIN_CLIPS, NUM_CLIPS - TRAIN_CLIPS)
    assert report["validation_offset_accuracy"] >= 0.8 and report["validation_reversed_audio_accuracy"] >= 0.8
    assert expert.config.validation_offset_accuracy == report["validation_offset_accuracy"]
    assert expert.config.validation_reversed_audio_accuracy == report["validation_reversed_audio_accuracy"]


@needs_espeak
def test_clean_clips_are_in_sync_and_confident(faults):
    for result in faults.values():
        clean = result["clean"]
        assert clean["status"] == "computed" and clean["tier"] == "B"
        assert clean["av_offset"] == 0 and clean["lse_c"] > 0.2


@needs_espeak
def test_a_faultless_copy_scores_like_the_teacher(trained, faults):
    meta, expert, _ = trained
    for i, result in faults.items():
        copy = load_clip(meta["clips"][i])
        noise = np.random.default_rng(i).normal(0, 2, copy.frames.shape)
        copy.frames = np.clip(copy.frames + noise, 0, 255).astype(np.uint8)
        ratios = compare_to_teacher(tier_b_clip(expert, copy), result["clean"])
        assert ratios["av_offset"] == 0
        assert ratios["lse_d_ratio"] == pytest.approx(1, abs=0.1)
        assert ratios["lse_c_ratio"] == pytest.approx(1, abs=0.15)


@needs_espeak
@pytest.mark.parametrize("tag,lag", [("shift_+1", 1), ("shift_+3", 3), ("shift_-2", -2)])
def test_a_lag_is_the_av_offset_while_lse_c_and_d_stay(faults, tag, lag):
    for result in faults.values():
        ratios = result[tag]
        assert ratios["av_offset"] == lag and ratios["av_offset_delta"] == lag
        assert ratios["lse_d_ratio"] == pytest.approx(1, abs=0.05) and ratios["lse_c_ratio"] > 0.9


@needs_espeak
@pytest.mark.parametrize("tag", ["frozen_0.5", "frozen_0.0"])
def test_a_frozen_mouth_loses_confidence(faults, tag):
    for result in faults.values():
        assert result[tag]["lse_c_ratio"] < 0.3 and result[tag]["lse_d_ratio"] > 1.15


@needs_espeak
def test_wrong_audio_loses_confidence(faults):
    for result in faults.values():
        assert result["wrong_audio"]["lse_c_ratio"] < 0.65 and result["wrong_audio"]["lse_d_ratio"] > 1.1


@needs_espeak
@pytest.mark.parametrize("tag", ["scale_amplitude_0.5", "blur_mouth_1.5", "blur_frame_1.0"])
def test_in_sync_degradations_are_not_read_as_a_lag(faults, tag):
    for result in faults.values():
        assert result[tag]["av_offset"] == 0


def test_save_and_reload_give_the_same_embeddings(trained, tmp_path):
    meta, expert, _ = trained
    expert.save_pretrained(tmp_path / "expert")
    again = load_sync_expert(tmp_path)
    assert again.config.validation_offset_accuracy == expert.config.validation_offset_accuracy
    clip = load_clip(meta["clips"][0])
    for a, b in zip(embed_clip(expert, clip), embed_clip(again, clip)):
        assert torch.equal(a, b)


def test_training_is_deterministic_per_seed(trained):
    meta, _, _ = trained
    clips = [load_clip(e) for e in meta["clips"][:2]]

    def weights(seed):
        expert, _ = train_sync_expert(clips, steps=2, seed=seed, val_clips=[], width=8, windows_per_clip=8)
        return torch.cat([p.flatten() for p in expert.parameters()])

    assert torch.equal(weights(1), weights(1)) and not torch.equal(weights(1), weights(2))


def test_a_poorly_validated_expert_is_reported_unreliable(trained):
    meta, _, _ = trained
    expert = SyncExpert(width=8, validation_offset_accuracy=0.2)
    report = tier_b_clip(expert, load_clip(meta["clips"][0]))
    assert report["status"].startswith("unreliable: the sync expert found known lags in 20% of held-out checks")
    assert report["expert_offset_accuracy"] == 0.2 and "lse_c" in report
    assert compare_to_teacher(report, report)["status"] == report["status"]  # ratios carry the warning


def test_an_expert_with_only_pickled_weights_is_refused_naming_the_file(tmp_path):
    SyncExpert(width=8).save_pretrained(tmp_path)
    (tmp_path / "diffusion_pytorch_model.safetensors").unlink()
    torch.save({}, tmp_path / "diffusion_pytorch_model.bin")
    with pytest.raises(CheckpointError, match=r"only pickled weights \(diffusion_pytorch_model.bin\)"):
        load_sync_expert(tmp_path)
