"""Tier A of a lip-sync student on a reference's clips, with each clip's own audio or another clip's (the control).

The wrong-audio control proves a student's mouth comes from the audio: each clip is generated again with the audio
of the next clip (clip i hears clip i + 1's, the last the first's) and its mouth series is compared with the
teacher's on the true audio. A student that follows the audio strays from the teacher's mouth (tier A zero-lag
correlation near 0); one that copies mouth shape leaking through its masked input (e.g. `masked_input: target`,
whose driving frames are the teacher's) still follows it, and fails the gate `wrong_audio.tier_a.zero_lag_corr`.
The clips must differ in layout: where all read silence, a sentence, silence, any two mouths correlate, the
teacher's own included (hence `builtin:heldout-paused`, whose sentences pause at different places).

Models with `eval_generate(row, components)` (the students) only: an S2V DiT regenerates from the reference's
stored inputs, whose audio this module does not swap.
"""

from __future__ import annotations

from compress.errors import UserInputError
from compress.evaluate.tier_a import pool_tier_a, tier_a_clip

AUDIO_FIELDS = ("audio", "audio_dtype", "audio_shape")
SUMMARY_FIELDS = ("status", "lag", "zero_lag_corr", "peak_corr", "clip_lags", "max_clip_abs_lag", "gain",
                  "frame_psnr")


def with_audio_of(row: dict, other: dict) -> dict:
    """`row` with `other`'s audio (same length: a reference's clips share fps and frame count)."""
    if other["audio_shape"] != row["audio_shape"] or other["fps"] != row["fps"]:
        raise UserInputError(f"wrong-audio control: clips '{row['id']}' and '{other['id']}' differ in audio length "
                             f"or fps ({row['audio_shape']} at {row['fps']} fps vs {other['audio_shape']} at "
                             f"{other['fps']} fps)")
    return {**row, **{key: other[key] for key in AUDIO_FIELDS}}


def student_tier_a(model, reference, detector, audio_shift: int = 0, max_lag: int = 15,
                   components=None) -> dict:
    """Pooled tier A (`pool_tier_a`) of `model`'s frames on every clip of `reference` against the teacher's, each
    clip heard with the audio of clip (i + audio_shift) mod n."""
    if audio_shift % len(reference) == 0 and audio_shift:
        raise UserInputError(f"wrong-audio control: needs at least 2 clips; reference '{reference.artifact.name}' "
                             f"has {len(reference)}")
    components = components if components is not None else reference.components()
    rows = [reference.rows[i] for i in range(len(reference))]
    clips = []
    for index, row in enumerate(rows):
        heard = with_audio_of(row, rows[(index + audio_shift) % len(rows)]) if audio_shift else row
        frames = model.eval_generate(heard, components)["frames"]
        clips.append(tier_a_clip(frames, reference.teacher(index)["frames"], detector, max_lag=max_lag))
    return pool_tier_a(clips)


def summary(pooled: dict) -> dict:
    """The flat numbers of a pooled tier A result: status, lag, correlations, per-clip lags, gain, frame PSNR."""
    values = {"status": pooled["status"], **pooled.get("timing", {}), **pooled.get("articulation", {}),
              **pooled.get("fidelity", {})}
    return {key: values.get(key) for key in SUMMARY_FIELDS}


def wrong_audio_control(model, reference, max_lag: int = 15, components=None) -> dict:
    """{"tier_a": summary} of the student on swapped audio (metric `wrong_audio.tier_a.zero_lag_corr`), or a
    `not computed: why` status."""
    if not callable(getattr(model, "eval_generate", None)):
        return {"tier_a": {"status": f"not computed: {type(model).__name__} does not take another clip's audio "
                                     f"(lip-sync students only)"}}
    if len(reference) < 2:
        return {"tier_a": {"status": "not computed: the control needs at least 2 clips"}}
    from compress.face.landmarks import LandmarkDetector, LandmarksUnavailable

    try:
        with LandmarkDetector() as detector:
            pooled = student_tier_a(model, reference, detector, audio_shift=1, max_lag=max_lag,
                                    components=components)
    except LandmarksUnavailable as err:
        return {"tier_a": {"status": f"not computed: {err}"}}
    return {"tier_a": summary(pooled)}


def curve_point(model, reference, detector, components=None, max_lag: int = 15) -> dict:
    """A learning-curve point: {"tier_a": summary on the true audio, "wrong_audio": summary on swapped audio}."""
    return {"tier_a": summary(student_tier_a(model, reference, detector, 0, max_lag, components)),
            "wrong_audio": summary(student_tier_a(model, reference, detector, 1, max_lag, components))}
