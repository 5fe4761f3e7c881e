"""The three lip-sync tiers of one artifact, each labelled and reported on its own (never one folded score).

A: mouth landmarks, relative to the teacher (timing lag, articulation gain, mouth fidelity).
B: a sync expert the toolkit trained on the reference (`sync_expert` stage), student compared to teacher.
C: published SyncNet with weights the user gives; without them "not computed: no SyncNet weights given".
A tier that cannot run says why in its `status`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from compress.errors import CompressError
from compress.evaluate.suite import LipSync

LABELS = {"A": "tier A: landmarks, reference-relative", "B": "tier B: sync expert trained by the toolkit",
          "C": "tier C: published SyncNet (user weights)"}


def not_computed(tier: str, reason: str) -> dict:
    return {"tier": tier, "label": LABELS[tier], "status": f"not computed: {reason}"}


def lipsync_tiers(pairs: list[tuple[dict, dict]], options: LipSync) -> dict:
    """{"A": {...}, "B": {...}, "C": {...}} for (student, teacher) outputs per clip; each has `tier` and `status`.

    A tier's result holds `per_clip` (per-clip results, tier A's mouth-opening series among them) and `gates`."""
    runners = {"A": _tier_a, "B": _tier_b, "C": _tier_c}
    return {tier: runners[tier](pairs, options) if tier in options.tiers else not_computed(tier, "not in this suite")
            for tier in LABELS}


def _tier_a(pairs, options: LipSync) -> dict:
    try:
        from compress.evaluate.tier_a import check_gates, pool_tier_a, tier_a_clip
        from compress.face.landmarks import LandmarkDetector, LandmarksUnavailable
    except ImportError as err:
        return not_computed("A", f"tier A is not available in this installation ({err})")
    try:
        with LandmarkDetector() as detector:
            clips = [tier_a_clip(s["frames"], t["frames"], detector, student_latents=s.get("latents"),
                                 teacher_latents=t["latents"], max_lag=options.max_lag) for s, t in pairs]
    except LandmarksUnavailable as err:
        return not_computed("A", str(err))
    pooled = pool_tier_a(clips)
    reasons = sorted({c["status"].removeprefix("not computed: ") for c in clips if c["status"] != "ok"})
    if pooled["status"] != "ok" and reasons:  # say why, plainly: e.g. no face in the teacher's frames
        pooled["status"] += f": {'; '.join(reasons)}"
    return {**pooled, "label": LABELS["A"], "per_clip": clips, "gates": check_gates(pooled, options.tier_a_gates)}


def _tier_b(pairs, options: LipSync) -> dict:
    if options.sync_expert is None:
        return not_computed("B", "no sync expert given (train one with a sync_expert stage)")
    from compress.evaluate.sync import tier_b_clip
    from compress.models.sync_expert import load_sync_expert

    expert = load_sync_expert(Path(options.sync_expert))
    try:
        clips = _sync_pairs(pairs, mouth=True)
    except (_NoSyncInput, CompressError) as err:  # e.g. no face found, landmark environment missing
        return not_computed("B", str(err))
    return _pooled("B", [(tier_b_clip(expert, s), tier_b_clip(expert, t)) for s, t in clips])


def _tier_c(pairs, options: LipSync) -> dict:
    if options.syncnet_weights is None:
        return not_computed("C", "no SyncNet weights given")
    from compress.evaluate.sync import load_syncnet, tier_c_clip

    net = load_syncnet(Path(options.syncnet_weights)).eval()
    try:
        clips = _sync_pairs(pairs, mouth=False)
    except _NoSyncInput as err:
        return not_computed("C", str(err))
    try:  # face crops: the whole frame (talking-head outputs are face-centred)
        return _pooled("C", [(tier_c_clip(s, net), tier_c_clip(t, net)) for s, t in clips])
    except ValueError as err:  # e.g. a clip too short for SyncNet's 5-frame windows
        return not_computed("C", str(err))


class _NoSyncInput(Exception):
    """The outputs lack what lip-sync scoring needs (audio, fps): said in the tier's status."""


def _sync_pairs(pairs, mouth: bool) -> list[tuple]:
    """(student, teacher) `SyncClip`s per clip, on the input's audio. Mouth boxes (`mouth`): from the input
    set's relative mouth_box where given (as the sync_expert stage trains), else from face landmarks of each
    clip's own frames; otherwise the whole frame."""
    from compress.face.crops import full_frame_boxes, mouth_boxer
    from compress.face.sync_clip import SyncClip

    missing = sorted({key for _, t in pairs for key in ("audio", "fps") if t.get(key) is None})
    if missing:
        raise _NoSyncInput(f"the reference outputs give no {' and '.join(missing)} to score lip sync against")
    out = []
    with mouth_boxer() as boxes:
        for student, teacher in pairs:
            clips = []
            for frames in (student["frames"], teacher["frames"]):
                shape = frames.shape[1:3]
                crop = boxes(frames, teacher.get("mouth_box")) if mouth else full_frame_boxes(len(frames), *shape)
                clips.append(SyncClip(frames, np.asarray(teacher["audio"], np.float32), teacher["fps"], crop,
                                      teacher.get("sample_rate", 16_000)))
            out.append(tuple(clips))
    return out


POOLED = ("lse_d", "lse_c", "av_offset", "av_offset_s")
COMPARED = ("lse_d_ratio", "lse_c_ratio", "av_offset_delta")


def _pooled(tier: str, reports: list[tuple[dict, dict]]) -> dict:
    """Means over clips of the student's scores, the teacher's (`teacher_*`) and their comparison; per-clip
    results in `per_clip`. Status "ok", or the first clip status that is not "computed" (e.g. an unreliable
    expert), so no number passes as trustworthy when it is not."""
    from compress.evaluate.sync import compare_to_teacher

    per_clip = [{"student": s, "teacher": t, "compared": compare_to_teacher(s, t)} for s, t in reports]
    statuses = [r["status"] for c in per_clip for r in (c["student"], c["teacher"])]
    status = next((s for s in statuses if s != "computed"), "ok")
    mean = lambda values: float(np.mean(values)) if values else None  # noqa: E731
    pooled = {key: mean([c["student"][key] for c in per_clip if key in c["student"]]) for key in POOLED}
    pooled.update({f"teacher_{key}": mean([c["teacher"][key] for c in per_clip if key in c["teacher"]])
                   for key in POOLED})
    pooled.update({key: mean([c["compared"][key] for c in per_clip if key in c["compared"]]) for key in COMPARED})
    if tier == "B":
        pooled.update({k: per_clip[0]["student"].get(k) for k in ("expert_offset_accuracy",
                                                                   "expert_reversed_audio_accuracy")})
    return {"tier": tier, "label": LABELS[tier], "status": status, "clips": len(per_clip), **pooled,
            "per_clip": per_clip, "gates": []}
