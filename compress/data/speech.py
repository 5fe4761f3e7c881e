"""Offline speech with phoneme timings, and the mouth-opening schedule derived from them.

Primary source: libespeak-ng through ctypes (Debian package ``espeak-ng``). Its synchronous
mode hands back 22.05 kHz audio plus PHONEME / WORD events with sample positions; we resample
to 16 kHz. Each utterance is synthesised in a fresh worker process, because the library is
stateful across utterances (same text twice in one process gives different samples) and
cannot be re-initialised; that makes the output deterministic.

Fallback (no libespeak-ng): ``source="synthetic-tones"``, voiced harmonic tone bursts, one per
word, whose known on/off schedule plays the role of phonemes. Every ``Speech`` says which
source produced it.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import resample_poly

SAMPLE_RATE = 16_000
_EV_WORD, _EV_PHONEME = 1, 7  # espeak_EVENT types
ESPEAK = "espeak-ng"
TONES = "synthetic-tones"
VOICES = ("en", "en-us", "en+f3", "en+m3", "en-us+f2")

SENTENCES = (
    "Hello, my name is Anna and I like apples.",
    "Please bring the map back to the boat.",
    "The cat sat on a warm, bright mat.",
    "We have to move quickly before the storm.",
    "My brother plays music every Monday.",
    "Open the window and look at the park.",
    "A big brown dog barked at the mailman.",
    "Can you tell me the way to the harbour?",
    "Bob bought a bag of plums at the market.",
    "The water was calm and the sky was blue.",
    "I am happy to be part of this project.",
    "Father parked the car by the old barn.",
    "Maybe we can meet for lunch tomorrow.",
    "Put the book back on the top shelf.",
    "The spring garden is full of bright flowers.",
    "Papa made a pot of hot apple soup.",
)
HELDOUT_EVERY = 4  # every 4th sentence (index 3, 7, 11, 15) is held out


def split_sentences(split: str = "train") -> tuple[str, ...]:
    """Sentences of a split: "train" (12) or "heldout" (4); "all" gives every sentence."""
    if split == "all":
        return SENTENCES
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train', 'heldout' or 'all', got {split!r}")
    held = split == "heldout"
    return tuple(s for i, s in enumerate(SENTENCES) if ((i + 1) % HELDOUT_EVERY == 0) == held)


@dataclass(frozen=True)
class Speech:
    audio: np.ndarray  # float32 mono at `sample_rate`
    phonemes: tuple[tuple[str, float, float], ...]  # (phoneme, start_s, end_s), increasing in time
    source: str  # ESPEAK or TONES
    voice: str
    text: str
    rate: int = 150
    sample_rate: int = SAMPLE_RATE
    words: tuple[float, ...] = ()  # word start times in seconds

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate

    def paused(self, word: int, pause_s: float) -> "Speech":
        """`pause_s` of silence inserted at the first phoneme boundary from word `word` (an index into `words`,
        from 1); unchanged where there is no such boundary."""
        if not 0 < word < len(self.words) or pause_s <= 0:
            return self
        starts = [s for _, s, _ in self.phonemes if s >= self.words[word]]
        if not starts:
            return self
        at, samples = starts[0], round(pause_s * self.sample_rate)
        pause, cut = samples / self.sample_rate, round(at * self.sample_rate)
        audio = np.concatenate([self.audio[:cut], np.zeros(samples, np.float32), self.audio[cut:]])
        before = tuple(ph for ph in self.phonemes if ph[1] < at)
        after = tuple((ph, s + pause, e + pause) for ph, s, e in self.phonemes if s >= at)
        words = tuple(max(w, at) + pause if i >= word else w for i, w in enumerate(self.words))
        return replace(self, audio=audio, phonemes=(*before, ("_", at, at + pause), *after), words=words)

    def fit(self, lead_s: float, total_s: float) -> "Speech":
        """Prepend `lead_s` of silence, then pad with silence or cut to exactly `total_s`."""
        sr = self.sample_rate
        lead, total = round(lead_s * sr), round(total_s * sr)
        audio = np.concatenate([np.zeros(lead, np.float32), self.audio])[:total]
        audio = np.pad(audio, (0, total - len(audio)))
        end = total / sr
        phonemes = [("_", 0.0, lead / sr)] if lead else []
        for p, s, e in self.phonemes:
            s, e = s + lead / sr, min(e + lead / sr, end)
            if s < end:
                phonemes.append((p, s, e))
        words = tuple(w + lead / sr for w in self.words if w + lead / sr < end)
        return replace(self, audio=audio, phonemes=tuple(phonemes), words=words)


# --- espeak-ng: one short-lived worker process per utterance (see _espeak_worker.py) ----------

_WORKER = [sys.executable, "-I", "-S", str(Path(__file__).with_name("_espeak_worker.py"))]


@lru_cache(maxsize=1)
def espeak_available() -> bool:
    """True if libespeak-ng and its data load here (checked once, in a worker process)."""
    return subprocess.run([*_WORKER, "--check"], capture_output=True).returncode == 0


@lru_cache(maxsize=256)
def _espeak_speech(text: str, voice: str, rate: int) -> Speech:
    proc = subprocess.run([*_WORKER, voice, str(int(rate))], input=text.encode(), capture_output=True)
    if proc.returncode:
        message = proc.stderr.decode(errors="replace").strip()
        raise (ValueError if proc.returncode == 2 else RuntimeError)(message)
    header, pcm_bytes = proc.stdout.split(b"\n", 1)
    meta = json.loads(header)
    native = meta["sample_rate"]
    pcm = np.frombuffer(pcm_bytes, dtype=np.int16)
    g = math.gcd(SAMPLE_RATE, native)
    audio = resample_poly(pcm.astype(np.float64) / 32768.0, SAMPLE_RATE // g, native // g)
    audio = np.clip(audio, -1.0, 1.0).astype(np.float32)
    audio.flags.writeable = False  # cached: shared between callers
    end = len(pcm) / native
    starts = [(name, s / native) for kind, s, name in meta["events"] if kind == _EV_PHONEME]
    phonemes = tuple((p, s, starts[i + 1][1] if i + 1 < len(starts) else end) for i, (p, s) in enumerate(starts))
    words = tuple(s / native for kind, s, _ in meta["events"] if kind == _EV_WORD)
    return Speech(audio, phonemes, ESPEAK, voice, text, int(rate), words=words)


# --- synthetic tone fallback --------------------------------------------------------------

def _tone_speech(text: str, voice: str, rate: int) -> Speech:
    """One harmonic tone burst per word; its label is the word's first vowel class."""
    sr, scale = SAMPLE_RATE, 150.0 / rate
    f0 = 210.0 if "+f" in voice else 110.0 if "+m" in voice else 140.0
    segments = [("_", 0.15, False)]  # (label, seconds, starts a word)
    for word in "".join(c if c.isalpha() else " " for c in text.lower()).split():
        closure = word[0] in "pbm"
        if closure:
            segments.append(("m", 0.07 * scale, True))  # bilabial closure: silent, mouth shut
        vowel = next((c for c in word if c in "aeiou"), "e")
        label = "a" if vowel == "a" else "@" if vowel in "eo" else "i"
        segments += [(label, (0.09 + 0.022 * len(word)) * scale, not closure), ("_", 0.05 * scale, False)]
    segments.append(("_", 0.15, False))
    gain = {"a": 1.0, "@": 0.7, "i": 0.45}
    phonemes, words, pieces, t = [], [], [], 0.0
    for label, dur, starts_word in segments:
        n = round(dur * sr)
        piece = np.zeros(n)
        if label in gain:
            tt = np.arange(n) / sr
            f = f0 * (1.0 - 0.1 * tt / dur)  # slight pitch fall per syllable
            phase = 2 * np.pi * np.cumsum(f) / sr
            harmonics = sum(np.sin(k * phase) / k for k in range(1, 9))
            ramp = np.clip(np.minimum(tt, dur - tt) / 0.02, 0, 1)  # 20 ms raised-cosine edges
            piece = 0.25 * gain[label] * harmonics * np.sin(0.5 * np.pi * ramp) ** 2
        if starts_word:
            words.append(t)
        phonemes.append((label, t, t + n / sr))
        pieces.append(piece)
        t += n / sr
    audio = np.concatenate(pieces).astype(np.float32)
    return Speech(audio, tuple(phonemes), TONES, voice, text, rate, words=tuple(words))


def synthesize(text: str, voice: str = "en-us", rate: int = 150, source: str = "auto") -> Speech:
    """Speech for `text`. source: "auto" (espeak-ng if available), "espeak-ng" or "synthetic-tones"."""
    if source not in ("auto", ESPEAK, TONES):
        raise ValueError(f"unknown speech source {source!r}")
    if source == TONES or (source == "auto" and not espeak_available()):
        return _tone_speech(text, voice, rate)
    if not espeak_available():
        raise RuntimeError("libespeak-ng is not available: apt-get install espeak-ng")
    return _espeak_speech(text, voice, rate)


# --- phonemes -> mouth opening ------------------------------------------------------------

_OPEN = {"a", "a#", "A:", "A@", "aI", "aU", "aI@", "aU@", "0", "V", "a:"}
_MID = {"@", "@2", "@5", "@L", "3", "3:", "E", "e", "e@", "eI", "O", "O:", "O@", "OI", "o@", "oU", "o"}
_CLOSE = {"i", "i:", "I", "I#", "I2", "i@", "i@3", "u", "u:", "U", "U@", "y", "w", "r", "r-", "j", "l", "L"}
_BILABIAL = {"p", "b", "m"}
_LABIODENTAL = {"f", "v"}


def mouth_target(phoneme: str) -> float | None:
    """Mouth-open target in [0, 1] for an espeak phoneme name; None for zero-width markers."""
    if phoneme.startswith("_") or phoneme in ("", "||"):
        return 0.0  # pause / silence
    if phoneme in _OPEN:
        return 1.0
    if phoneme in _MID:
        return 0.6
    if phoneme in _CLOSE:
        return 0.3
    if phoneme in _BILABIAL:
        return 0.0
    if phoneme in _LABIODENTAL:
        return 0.1
    if not any(c.isalnum() or c == "@" for c in phoneme):
        return None  # stress / syllable markers such as ";": hold the previous target
    base = phoneme.rstrip(":;#-/23")
    if base != phoneme and base:
        return mouth_target(base)
    return 0.2  # other consonants


def mouth_schedule(speech: Speech, fps: float = 16, num_frames: int | None = None,
                   smooth_s: float = 0.025) -> np.ndarray:
    """Mouth opening per video frame, float32 in [0, 1].

    Targets are piecewise constant per phoneme on a 1 ms grid, Gaussian-smoothed (sigma
    `smooth_s`, co-articulation), then sampled at frame centres (i + 0.5) / fps. Bilabial
    closures are kept shut: the schedule is multiplied by 1 - (smoothed closure indicator).
    """
    if num_frames is None:
        num_frames = math.ceil(speech.duration * fps)
    grid_hz = 1000
    n = max(round(num_frames / fps * grid_hz), 1) + 1
    target, closure, prev = np.zeros(n), np.zeros(n), 0.0
    for p, s, e in speech.phonemes:
        value = mouth_target(p)
        value = prev if value is None else value
        i, j = min(round(s * grid_hz), n), min(round(e * grid_hz), n)
        target[i:j] = value
        if p in _BILABIAL:
            closure[i:j] = 1.0
        prev = value
    sigma = smooth_s * grid_hz
    curve = gaussian_filter1d(target, sigma, mode="nearest")
    curve *= 1.0 - np.clip(gaussian_filter1d(closure, 0.5 * sigma, mode="nearest") * 1.5, 0, 1)
    t = (np.arange(num_frames) + 0.5) / fps * grid_hz
    return np.clip(np.interp(t, np.arange(n), curve), 0.0, 1.0).astype(np.float32)
