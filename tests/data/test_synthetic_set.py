import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from PIL import Image

from compress.data import DEFAULT_FAULTS, build_synthetic_set, load_synthetic_set, split_sentences
from tests.helpers import needs_ffmpeg


def _tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_build_is_deterministic_fast_and_valid(tmp_path):
    t0 = time.perf_counter()
    path = build_synthetic_set(tmp_path / "a", num_clips=8, size=64, seed=3, mp4=False)
    elapsed = time.perf_counter() - t0
    build_synthetic_set(tmp_path / "b", num_clips=8, size=64, seed=3, mp4=False)
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")
    assert elapsed < 20

    meta = yaml.safe_load(path.read_text())
    assert meta["kind"] == "synthetic-talking-faces" and len(meta["clips"]) == 8
    T = meta["num_frames"]
    assert T % 4 == 0 and 40 <= T <= 72
    for clip in meta["clips"]:
        for key in ("id", "image", "audio", "prompt", "seed", "num_frames", "speech_source", "voice",
                    "sentence", "identity"):
            assert key in clip
        assert clip["sentence"] in split_sentences("train")
        d = path.parent
        frames, schedule = np.load(d / clip["frames"]), np.load(d / clip["schedule"])
        assert frames.shape == (T, 64, 64, 3) and frames.dtype == np.uint8 and schedule.shape == (T,)
        audio, sr = sf.read(d / clip["audio"])
        assert sr == 16_000 and audio.ndim == 1 and len(audio) == T * 1000
        face = np.asarray(Image.open(d / clip["image"]))
        assert face.shape == (64, 64, 3) and np.array_equal(frames[schedule.argmin()], face)
    assert len({c["identity"] for c in meta["clips"]}) >= 3
    assert build_synthetic_set(tmp_path / "c", num_clips=2, seed=4, mp4=False).read_bytes() != path.read_bytes()


def test_heldout_split_with_faults(tmp_path):
    path = build_synthetic_set(tmp_path, num_clips=2, size=64, frames=48, split="heldout",
                               faults=DEFAULT_FAULTS, mp4=False)
    meta = load_synthetic_set(tmp_path)
    assert meta["num_frames"] == 48 and meta["split"] == "heldout"
    for clip in meta["clips"]:
        assert clip["sentence"] in split_sentences("heldout")
        tags = [v["tag"] for v in clip["variants"]]
        assert tags == [f.tag for f in DEFAULT_FAULTS]
        for variant in clip["variants"]:
            assert np.load(variant["frames"]).shape == (48, 64, 64, 3)
        wrong = clip["variants"][-1]
        assert wrong["audio"] != clip["audio"] and wrong["audio_sentence"] != clip["sentence"]
    assert path.name == "inputs.yaml"


def test_frames_must_be_a_multiple_of_4(tmp_path):
    with pytest.raises(ValueError):
        build_synthetic_set(tmp_path, num_clips=1, frames=50)


def test_tone_source_is_labelled(tmp_path):
    meta = yaml.safe_load(build_synthetic_set(tmp_path, num_clips=2, source="synthetic-tones", mp4=False).read_text())
    assert meta["speech_source"] == "synthetic-tones"
    assert {c["speech_source"] for c in meta["clips"]} == {"synthetic-tones"}


@needs_ffmpeg
def test_mp4_written_when_ffmpeg_present(tmp_path):
    meta = load_synthetic_set(build_synthetic_set(tmp_path, num_clips=1, frames=16))
    assert Path(meta["clips"][0]["video"]).stat().st_size > 0


@pytest.mark.parametrize("seed", [0, 7])
def test_builtin_sets_share_no_sentence_face_voice_or_seed(tmp_path, seed):
    from compress.data.synthetic import BUILTIN_SETS

    built = {name: yaml.safe_load(build_synthetic_set(tmp_path / name, num_clips=4, size=32, frames=8, seed=seed,
                                                      mp4=False, **kwargs).read_text())["clips"]
             for name, kwargs in BUILTIN_SETS.items()}
    images = {name: {(tmp_path / name / c["image"]).read_bytes() for c in clips} for name, clips in built.items()}
    for held in set(BUILTIN_SETS) - {"quickstart"}:
        for key in ("sentence", "identity", "voice", "seed", "id"):
            train, other = ({clip[key] for clip in built[name]} for name in ("quickstart", held))
            assert train and other and not train & other, (held, key)
        assert not images["quickstart"] & images[held]


def test_the_paused_held_out_set_is_the_held_out_set_with_a_closed_mouth_pause(tmp_path):
    """Same sentences, faces, voices and seeds as builtin:heldout (the pause is drawn after them), each sentence
    paused for 0.25 to 0.75 s in its middle: the audio and the true mouth are silent / shut there."""
    from compress.data.synthetic import BUILTIN_SETS, LEAD_S

    fps, frames = 16, 64
    sets = {name: load_synthetic_set(build_synthetic_set(tmp_path / name, num_clips=4, size=32, frames=frames,
                                                         mp4=False, **BUILTIN_SETS[name]))["clips"]
            for name in ("heldout", "heldout-paused")}
    for plain, paused in zip(*sets.values()):
        assert {k: plain[k] for k in ("sentence", "identity", "voice", "seed", "rate")} == {
            k: paused[k] for k in ("sentence", "identity", "voice", "seed", "rate")}
        assert plain["pause_s"] == 0 and 0.25 <= paused["pause_s"] <= 0.75
        audio, sr = sf.read(paused["audio"])
        loud = np.flatnonzero(np.abs(audio) > 1e-3) / sr
        gaps = np.diff(loud)
        assert gaps.max() >= paused["pause_s"] - 0.01  # the longest silence inside the speech is the pause
        start = loud[np.argmax(gaps)]
        assert LEAD_S + 0.2 < start and loud[np.argmax(gaps) + 1] < frames / fps
        centres = (np.arange(frames) + 0.5) / fps
        inside = (centres >= start + 0.06) & (centres < start + paused["pause_s"] - 0.06)  # >= 2 frames
        assert inside.sum() >= 2 and np.load(paused["schedule"])[inside].max() < 0.05


def test_the_pause_breaks_the_layout_the_clips_share(tmp_path):
    """What heldout-paused is for: the true mouths (per latent frame) of neighbouring clips correlate far less."""
    from compress.data.synthetic import BUILTIN_SETS
    from tests.helpers import load_script

    floor = load_script("teacher_controls").next_clip_schedule_corr
    plain, paused = (floor(build_synthetic_set(tmp_path / name, num_clips=8, size=32, frames=48, mp4=False,
                                               **BUILTIN_SETS[name])) for name in ("heldout", "heldout-paused"))
    assert plain > 0.5 and paused < 0.35, (plain, paused)


def test_a_pause_range_must_be_a_range(tmp_path):
    with pytest.raises(ValueError, match=r"pause_s must be a range \(low, high\) with 0 <= low <= high, got "
                                         r"\(0.5, 0.2\)"):
        build_synthetic_set(tmp_path, num_clips=1, frames=8, pause_s=(0.5, 0.2))


def test_unknown_voice_or_identity_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown voices"):
        build_synthetic_set(tmp_path, num_clips=1, frames=8, voices=("klingon",))
    with pytest.raises(KeyError, match="unknown identity"):
        build_synthetic_set(tmp_path, num_clips=1, frames=8, identities=("nobody",))


def test_the_recipe_names_of_built_in_sets_are_the_sets_that_exist():
    """`compress.reference.config` lists them without importing compress.data (recipe parsing stays light)."""
    from compress.data.synthetic import BUILTIN_SETS
    from compress.reference.config import BUILTINS

    assert sorted(BUILTINS) == sorted(f"builtin:{name}" for name in BUILTIN_SETS)
