"""The built-in synthetic talking-face set: espeak-ng speech + a warped astronaut face.

Frame count: a multiple of 4. The Wan VAE is causal with temporal stride 4 (4k + 1 pixel
frames -> k + 1 latents: the first frame gets its own latent). Upstream S2V clips (80 frames
= 20 latents) are multiples of 4 because each clip continues a 4k + 1 motion history
(73 frames = 19 latents): history + clip = 4(k + 18) + 1 frames, so every 4 new pixel frames
make exactly one new latent frame. We follow that convention; a standalone encode of a clip
simply sees one extra leading latent.

Layout written by ``build_synthetic_set(out_dir, ...)``::

    inputs.yaml                      set metadata + one entry per clip (paths relative to it)
    clips/<id>/face.png              reference image: the neutral face of that identity
    clips/<id>/audio.wav             16 kHz mono PCM16, exactly num_frames / fps seconds
    clips/<id>/frames.npy            uint8 [T, H, W, 3] (frames.mp4 too if ffmpeg is present)
    clips/<id>/schedule.npy          float32 [T] true mouth opening per frame
    clips/<id>/variants/<tag>/...    faulty variants (frames.npy, audio.wav if changed)
"""

from __future__ import annotations

import math
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
import yaml
from PIL import Image

from .faces import IDENTITIES, get_identity
from .faults import Fault, apply_fault
from .speech import SAMPLE_RATE, VOICES, mouth_schedule, split_sentences, synthesize
from .talking import render_talking_clip

PROMPT = "a person talking"
RATES = (130, 140, 150, 160)  # espeak words per minute
LEAD_S, TAIL_S = 0.25, 0.2  # silence before and (at least) after the sentence

_HELDOUT = dict(split="heldout", identities=("astronaut-tinted", "astronaut-mirrored-cool"),
                voices=("en+m3", "en-us+f2"))
#: the built-in sets a reference stage names as `inputs: builtin:NAME` (`build_synthetic_set` arguments): the training
#: set and the held-out ones have no sentence, identity or voice in common. The demo teacher trained on every identity
#: and voice, so all keep to faces and voices it draws; only its held-out sentences are new to it.
#: heldout-paused: the held-out clips with each sentence paused for 0.25 to 0.75 s at a word in its middle half (the
#: end of a long one is then cut). Where every clip reads silence, a sentence, silence, the mouths of any two clips
#: rise and fall together, so a wrong-audio control (`compress.evaluate.wrong_audio`) cannot tell the audio's
#: timing from the shared layout; a pause at another place in each clip can.
BUILTIN_SETS = {
    "quickstart": dict(split="train", identities=("astronaut", "astronaut-mirrored", "astronaut-zoomed"),
                       voices=("en", "en-us", "en+f3")),
    "heldout": _HELDOUT,
    "heldout-paused": {**_HELDOUT, "pause_s": (0.25, 0.75)},
}


def build_synthetic_set(out_dir: str | Path, num_clips: int = 8, size: int = 64, fps: int = 16,
                        frames: int | None = None, seed: int = 0, split: str = "train",
                        source: str = "auto", faults: tuple[Fault, ...] = (), mp4: bool | None = None,
                        identities: tuple[str, ...] | None = None, voices: tuple[str, ...] | None = None,
                        pause_s: tuple[float, float] = (0.0, 0.0)) -> Path:
    """Write `num_clips` clips of `split` sentences under `out_dir`; returns the inputs.yaml path.

    frames: clip length, a multiple of 4; None picks the smallest multiple of 4 that fits the
    longest sentence (all clips of a set share it). source: speech source ("auto" prefers
    espeak-ng). faults: variants to render per clip (e.g. ``faults.DEFAULT_FAULTS``).
    mp4: also write frames.mp4 (None: only if ffmpeg is on PATH). identities, voices: the names clips draw from
    (default: all of `IDENTITIES`, `VOICES`). pause_s: the range of a silence each sentence gets at a word in its
    middle half, drawn per clip (the sentence is cut at the clip's end). Same arguments, same bytes.
    """
    if num_clips < 1:
        raise ValueError(f"num_clips must be at least 1, got {num_clips}")
    if not 0 <= pause_s[0] <= pause_s[1]:
        raise ValueError(f"pause_s must be a range (low, high) with 0 <= low <= high, got {pause_s}")
    if frames is not None and (frames <= 0 or frames % 4):
        raise ValueError(f"frames must be a positive multiple of 4, got {frames}")
    out = Path(out_dir)
    texts = split_sentences(split)
    faces = IDENTITIES if identities is None else tuple(get_identity(name) for name in identities)
    voices = VOICES if voices is None else voices
    if unknown := set(voices) - set(VOICES):
        raise ValueError(f"unknown voices {sorted(unknown)}; known: {', '.join(VOICES)}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(texts))
    plans = []
    for i in range(num_clips):
        plans.append({
            "sentence": texts[order[i % len(texts)]],
            "other": texts[order[(i + 1) % len(texts)]],
            "voice": voices[rng.integers(len(voices))],
            "rate": int(RATES[rng.integers(len(RATES))]),
            "identity": faces[rng.integers(len(faces))],
            "seed": int(rng.integers(2**31 - 1)),
        })
    for plan in plans:  # drawn after the plans: a paused set keeps the sentences, faces and seeds of an unpaused one
        plan["pause_s"], plan["pause_at"] = (float(rng.uniform(*pause_s)), float(rng.uniform(0.25, 0.75))) \
            if pause_s[1] > 0 else (0.0, 0.0)
    with ThreadPoolExecutor(8) as pool:  # espeak runs in worker processes; results are cached
        speech = list(pool.map(lambda p: synthesize(p["sentence"], p["voice"], p["rate"], source), plans))
        speech = [_paused(s, p) for s, p in zip(speech, plans)]
        if faults:
            list(pool.map(lambda p: synthesize(p["other"], p["voice"], p["rate"], source), plans))
    if frames is None:
        longest = max(s.duration for s in speech) + LEAD_S + TAIL_S
        frames = 4 * math.ceil(longest * fps / 4)
    total_s = frames / fps
    use_mp4 = shutil.which("ffmpeg") is not None if mp4 is None else mp4

    entries = []
    for i, (plan, sp) in enumerate(zip(plans, speech)):
        clip_id = f"{split}-{i:03d}"
        d = out / "clips" / clip_id
        d.mkdir(parents=True, exist_ok=True)
        sp = sp.fit(LEAD_S, total_s)
        identity = plan["identity"]
        face, box = identity.image(size), identity.mouth_box
        schedule = mouth_schedule(sp, fps, frames)
        clip = render_talking_clip(face, schedule, box)
        Image.fromarray(face).save(d / "face.png")
        sf.write(d / "audio.wav", sp.audio, SAMPLE_RATE, subtype="PCM_16")
        np.save(d / "frames.npy", clip)
        np.save(d / "schedule.npy", schedule)
        entry = {
            "id": clip_id,
            "image": f"clips/{clip_id}/face.png",
            "audio": f"clips/{clip_id}/audio.wav",
            "frames": f"clips/{clip_id}/frames.npy",
            "schedule": f"clips/{clip_id}/schedule.npy",
            "prompt": PROMPT,
            "seed": plan["seed"],
            "num_frames": frames,
            "fps": fps,
            "speech_source": sp.source,
            "voice": sp.voice,
            "rate": sp.rate,
            "sentence": sp.text,
            "pause_s": round(plan["pause_s"], 3),
            "identity": identity.name,
            "mouth_box": {k: round(float(v), 6) for k, v in vars(box).items()},
        }
        if use_mp4:
            _write_mp4(d / "frames.mp4", clip, fps, d / "audio.wav")
            entry["video"] = f"clips/{clip_id}/frames.mp4"
        if faults:
            other = synthesize(plan["other"], plan["voice"], plan["rate"], source).fit(LEAD_S, total_s)
            entry["variants"] = [_write_variant(d, clip_id, f, face, schedule, sp.audio, box, other, clip)
                                 for f in faults]
        entries.append(entry)

    sources = sorted({e["speech_source"] for e in entries})
    meta = {"kind": "synthetic-talking-faces", "version": 1, "split": split, "seed": seed,
            "size": size, "fps": fps, "num_frames": frames, "sample_rate": SAMPLE_RATE,
            "speech_source": sources[0] if len(sources) == 1 else sources, "clips": entries}
    path = out / "inputs.yaml"
    path.write_text(yaml.safe_dump(meta, sort_keys=False, allow_unicode=True))
    return path


def _paused(speech, plan: dict):
    """`speech` paused as `plan` draws it; the plan's pause becomes the one inserted (none without a word boundary)."""
    word = min(max(round(plan["pause_at"] * len(speech.words)), 1), len(speech.words) - 1)
    paused = speech.paused(word, plan["pause_s"])
    plan["pause_s"] = (len(paused.audio) - len(speech.audio)) / speech.sample_rate
    return paused


def load_synthetic_set(path: str | Path) -> dict:
    """Read inputs.yaml (or its folder); file fields of clips and variants become absolute paths."""
    path = Path(path)
    path = path / "inputs.yaml" if path.is_dir() else path
    meta = yaml.safe_load(path.read_text())
    keys = ("image", "audio", "frames", "schedule", "video")
    for item in meta["clips"] + [v for c in meta["clips"] for v in c.get("variants", [])]:
        for k in keys:
            if k in item:
                item[k] = str(path.parent / item[k])
    return meta


def _write_variant(d, clip_id, fault, face, schedule, audio, box, other, clip) -> dict:
    frames, faulty_audio = apply_fault(fault, face, schedule, audio, box, other.audio, clip)
    vd = d / "variants" / fault.tag
    vd.mkdir(parents=True, exist_ok=True)
    rel = f"clips/{clip_id}/variants/{fault.tag}"
    record = {**fault.to_dict(), "frames": f"clips/{clip_id}/frames.npy", "audio": f"clips/{clip_id}/audio.wav"}
    if frames is not clip:  # unchanged frames (wrong_audio) point at the clean clip
        np.save(vd / "frames.npy", frames)
        record["frames"] = f"{rel}/frames.npy"
    if faulty_audio is not audio:
        sf.write(vd / "audio.wav", faulty_audio, SAMPLE_RATE, subtype="PCM_16")
        record.update(audio=f"{rel}/audio.wav", audio_sentence=other.text)
    return record


def _write_mp4(path: Path, clip: np.ndarray, fps: int, audio: Path) -> None:
    t, h, w, _ = clip.shape
    cmd = ["ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
           "-r", str(fps), "-i", "-", "-i", str(audio), "-c:v", "libx264", "-threads", "1",
           "-pix_fmt", "yuv420p", "-crf", "18", "-c:a", "aac", "-shortest", "-map_metadata", "-1",
           "-fflags", "+bitexact", "-flags", "+bitexact", str(path)]
    subprocess.run(cmd, input=np.ascontiguousarray(clip).tobytes(), check=True)
