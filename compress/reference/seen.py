"""Which reference inputs shaped a model's weights.

A model stage that reads a reference records its clips in its manifest (`SEEN_FIELD`, made by `inputs_seen`): each
clip's id, a content key (the same image and audio under another id or path have the same key) and its role: "train"
(the weights were fitted to it), "calibration" (scales, importance or kept layers measured on it), or `UNSEEN_ROLES`:
"holdout" / "measured" (read only to measure an error). An evaluation walks the evaluated artifact's ancestors'
manifests (`lineage_inputs`) and says which of the reference's clips some ancestor saw in a shaping role.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from pathlib import Path

from compress.artifacts import Artifact
from compress.errors import UserInputError
from compress.utils.hashing import sha256_file, sha256_json

SEEN_FIELD = "inputs_seen"
HELD_OUT, SEEN, PARTLY_SEEN = "held-out", "seen", "partly seen"
UNSEEN_ROLES = ("holdout", "measured")


def content_keys(reference) -> dict[str, str]:
    """{clip id: content key} of a `ReferenceArtifact`'s clips: a hash of the image's and the audio's sha256."""
    return {clip.id: sha256_json([_file_hash(clip.image), _file_hash(clip.audio)]) for clip in reference.clips}


def _file_hash(path: Path) -> str:
    """sha256 of a file, read once per content (an evaluation checks its reference for every artifact)."""
    stat = path.stat()
    return _hash_of(path, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=4096)
def _hash_of(path: Path, _size: int, _mtime_ns: int) -> str:
    return sha256_file(path)


def inputs_seen(reference, role: str, holdout: tuple[int, ...] = ()) -> dict:
    """The manifest record of a stage that read every clip of `reference` in `role`, except the rows `holdout`
    (indices), read only to measure."""
    keys = content_keys(reference)
    clips = [{"id": clip.id, "key": keys[clip.id], "role": "holdout" if i in holdout else role}
             for i, clip in enumerate(reference.clips)]
    return {"reference": reference.artifact.name, "reference_hash": reference.artifact.hash, "clips": clips}


def lineage_inputs(artifact: Artifact, reference) -> dict:
    """Which clips of `reference` the artifact or an ancestor saw: {"status": "held-out" | "seen" | "partly seen",
    "evaluated": [ids], "seen": [ids], "seen_by": {stage name: [ids]}}."""
    keys = content_keys(reference)
    seen_by = {}
    for ancestor in reversed(ancestors(artifact, reference.ctx.resolve_path)):
        trained = {clip["key"] for clip in _record(ancestor)["clips"] if clip["role"] not in UNSEEN_ROLES}
        if ids := [clip_id for clip_id, key in keys.items() if key in trained]:
            seen_by[ancestor.name] = ids
    return _inputs(list(keys), seen_by)


def merged_inputs(results: list[dict]) -> dict:
    """`lineage_inputs` answers of several artifacts on one reference (e.g. a student and its decoder) as one; two
    ancestors of the same stage name (from two runs) pool their clips."""
    seen_by: dict[str, list[str]] = {}
    for result in results:
        for stage, ids in result["seen_by"].items():
            seen_by.setdefault(stage, []).extend(i for i in ids if i not in seen_by[stage])
    return _inputs(results[0]["evaluated"], seen_by)


def _inputs(evaluated: list[str], seen_by: dict[str, list[str]]) -> dict:
    seen = [clip_id for clip_id in evaluated if any(clip_id in ids for ids in seen_by.values())]
    status = HELD_OUT if not seen else SEEN if len(seen) == len(evaluated) else PARTLY_SEEN
    return {"status": status, "evaluated": list(evaluated), "seen": seen, "seen_by": seen_by}


def _record(artifact: Artifact) -> dict:
    """The artifact's `SEEN_FIELD`; refused where its stage read a reference before stages recorded one."""
    if SEEN_FIELD in artifact.manifest:
        return artifact.manifest[SEEN_FIELD]
    if (artifact.manifest.get("stage_config") or {}).get("reference"):
        raise UserInputError(f"{artifact.path}: stage '{artifact.name}' read a reference but its manifest does not "
                             f"say which inputs (made by an older version): run it again, e.g. `compress run "
                             f"RECIPE --from-stage {artifact.name}`")
    return {"clips": []}


def ancestors(artifact: Artifact, resolve: Callable[[str], Path]) -> list[Artifact]:
    """The artifact and every artifact it descends from, back to the source (the manifests' `input`); `resolve`
    refuses a path outside the roots (e.g. `ReferenceContext.resolve_path`), which is then never opened."""
    chain = [artifact]
    while parent := chain[-1].manifest.get("input"):
        chain.append(_open_parent(chain[-1], parent, resolve))
    return chain


def _open_parent(child: Artifact, parent: dict, resolve: Callable[[str], Path]) -> Artifact:
    """The input artifact where the manifest says, or beside `child` (a run directory moved as a whole)."""
    for candidate in (parent["path"], str(child.path.parent / Path(parent["path"]).name)):
        with contextlib.suppress(UserInputError):  # missing, or outside the roots: not opened
            if (found := child.open_related(candidate, resolve)).hash == parent["hash"]:
                return found
    raise UserInputError(f"{child.path}: its input artifact '{parent['name']}' ({parent['path']}, hash "
                         f"{parent['hash'][:12]}) is missing, changed or outside the roots, so which inputs its "
                         f"lineage trained on is unknown")
