import sys

import numpy as np
import pytest

import compress.data.speech as speech_module
from compress.data import SENTENCES, VOICES, espeak_available, mouth_schedule, mouth_target, split_sentences, synthesize
from compress.data.speech import ESPEAK, SAMPLE_RATE, TONES, _espeak_speech
from tests.helpers import needs_espeak

SOURCES = [pytest.param(ESPEAK, marks=needs_espeak), TONES]


def _check_timeline(speech):
    starts = [s for _, s, _ in speech.phonemes]
    assert starts == sorted(starts)
    assert all(e >= s for _, s, e in speech.phonemes)
    assert speech.phonemes[-1][2] == pytest.approx(speech.duration, abs=0.02)
    assert speech.audio.dtype == np.float32 and np.isfinite(speech.audio).all()
    assert 0.05 < np.abs(speech.audio).max() <= 1.0


@needs_espeak
def test_espeak_speech_has_plausible_duration_and_ordered_phonemes():
    speech = synthesize("Please bring the map back to the boat.", "en-us", 150)
    assert speech.source == ESPEAK and speech.sample_rate == SAMPLE_RATE
    assert 1.2 < speech.duration < 4.0
    names = [p for p, _, _ in speech.phonemes]
    assert {"p", "b", "m"} <= set(names) and len(names) > 15
    assert len(speech.words) == 8
    _check_timeline(speech)


@needs_espeak
def test_espeak_voices_and_rate_differ():
    base = synthesize(SENTENCES[0], VOICES[0], 150)
    _espeak_speech.cache_clear()  # a fresh synthesis gives the same samples
    assert synthesize(SENTENCES[0], VOICES[0], 150).audio.tobytes() == base.audio.tobytes()
    for voice in VOICES[1:]:
        other = synthesize(SENTENCES[0], voice, 150).audio
        assert len(other) != len(base.audio) or not np.array_equal(other, base.audio)
    assert synthesize(SENTENCES[0], VOICES[0], 120).duration > base.duration * 1.1
    with pytest.raises(ValueError):
        synthesize("hi", "no-such-voice", source=ESPEAK)


def test_tone_fallback_is_labelled_and_voiced_where_phonemes_say():
    speech = synthesize(SENTENCES[1], "en+f3", 150, source=TONES)
    assert speech.source == TONES
    _check_timeline(speech)
    assert 1.5 < speech.duration < 5.0
    sr = speech.sample_rate

    def rms(label_set):
        parts = [speech.audio[round(s * sr):round(e * sr)] for p, s, e in speech.phonemes if p in label_set]
        return np.sqrt(np.mean(np.concatenate(parts) ** 2))

    assert rms({"a", "@", "i"}) > 0.05 and rms({"_", "m"}) == 0.0


@pytest.mark.parametrize("source", SOURCES)
def test_schedule_closed_at_bilabials_and_silence_open_at_vowels(source):
    fps, frames = 16, 64
    centres = (np.arange(frames) + 0.5) / fps
    for sentence, voice in zip(SENTENCES, VOICES * 4):
        speech = synthesize(sentence, voice, 140, source).fit(0.25, frames / fps)
        schedule = mouth_schedule(speech, fps, frames)
        assert schedule.shape == (frames,) and schedule.dtype == np.float32
        assert 0 <= schedule.min() and schedule.max() <= 1
        for p, s, e in speech.phonemes:
            if p in ("p", "b", "m") and e - s >= 0.05:
                assert schedule[(centres >= s) & (centres < e)].max(initial=0) < 0.2, (sentence, p, s)
            if p.startswith("_") and e - s >= 0.2:
                assert schedule[(centres >= s + 0.06) & (centres < e - 0.06)].max(initial=0) < 0.05
            if mouth_target(p) == 1.0 and e - s >= 0.1:
                assert schedule[(centres >= s + 0.03) & (centres < e - 0.03)].min(initial=1) > 0.6


@pytest.mark.parametrize("source", SOURCES)
def test_a_pause_shifts_the_rest_of_the_sentence(source):
    speech = synthesize(SENTENCES[2], VOICES[0], 150, source)
    paused = speech.paused(3, 0.5)
    at = next(s for _, s, _ in speech.phonemes if s >= speech.words[3])
    cut, pause = round(at * SAMPLE_RATE), round(0.5 * SAMPLE_RATE)
    assert np.array_equal(paused.audio, np.concatenate([speech.audio[:cut], np.zeros(pause), speech.audio[cut:]]))
    assert ("_", at, at + 0.5) in paused.phonemes
    later = [(p, s + 0.5, e + 0.5) for p, s, e in speech.phonemes if s >= at]
    assert paused.phonemes[: -len(later) - 1] == speech.phonemes[: -len(later)]
    assert paused.phonemes[-len(later):] == tuple(later)
    assert paused.words[:3] == speech.words[:3] and paused.words[3] == max(speech.words[3], at) + 0.5
    _check_timeline(paused)
    assert speech.paused(0, 0.5) is speech and speech.paused(3, 0.0) is speech


def test_phoneme_map():
    assert mouth_target("aI") == 1.0 and mouth_target("@") == 0.6 and mouth_target("i:") == 0.3
    assert mouth_target("m") == mouth_target("_:") == 0.0
    assert mouth_target("k") == 0.2 and mouth_target(";") is None


def test_splits_are_disjoint():
    train, held = split_sentences("train"), split_sentences("heldout")
    assert len(train) == 12 and len(held) == 4
    assert not set(train) & set(held) and set(train) | set(held) == set(SENTENCES)


def test_auto_falls_back_to_tones_without_espeak(monkeypatch):
    monkeypatch.setattr(speech_module, "_WORKER", [sys.executable, "-c", "import sys; sys.exit(3)"])
    speech_module.espeak_available.cache_clear()
    try:
        assert not espeak_available()
        assert synthesize("Hello there.").source == TONES
        with pytest.raises(RuntimeError):
            synthesize("Hello there.", source=ESPEAK)
    finally:
        speech_module.espeak_available.cache_clear()
