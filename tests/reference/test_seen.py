"""Which reference clips an artifact's lineage saw: content keys, the stage's record, the walk over ancestors."""

import json
import shutil
from types import SimpleNamespace

import pytest

from compress.artifacts import Artifact
from compress.errors import UserInputError
from compress.reference.artifact import ReferenceContext
from compress.reference.inputs import InputClip
from compress.reference.seen import SEEN_FIELD, content_keys, inputs_seen, lineage_inputs


def _clip(root, index, image: bytes, audio: bytes) -> InputClip:
    (root / f"{index}.png").write_bytes(image)
    (root / f"{index}.wav").write_bytes(audio)
    return InputClip(index, f"clip-{index}", root / f"{index}.png", root / f"{index}.wav", "", "", None)


def _reference(root, name, contents):
    """A stand-in for a `ReferenceArtifact`: clips whose files hold `contents` [(image, audio)]."""
    folder = root / name
    folder.mkdir()
    clips = [_clip(folder, i, *content) for i, content in enumerate(contents)]
    return SimpleNamespace(clips=clips, artifact=SimpleNamespace(name=name, hash=f"{name}-hash"),
                           ctx=ReferenceContext(root=root))


def _artifact(path, name, parent=None, seen=None, stage_config=None) -> Artifact:
    manifest = {"name": name, "kind": "distill" if seen else "source", "hash": f"{name}-hash",
                "input": parent and {"name": parent.name, "path": str(parent.path), "hash": parent.hash},
                "stage_config": stage_config or {}, "files": {}}
    manifest.update({SEEN_FIELD: seen} if seen else {})
    path.mkdir(parents=True)
    (path / "manifest.json").write_text(json.dumps(manifest))
    return Artifact.open(path)


@pytest.fixture
def lineage(tmp_path):
    """source -> student (trained on clips a, b; c held out) -> child; evaluated references: training, mixed, new."""
    train = _reference(tmp_path, "train", [(b"a", b"A"), (b"b", b"B"), (b"c", b"C")])
    source = _artifact(tmp_path / "run/00-source", "source")
    student = _artifact(tmp_path / "run/01-student", "student", source, inputs_seen(train, "train", holdout=(2,)))
    child = _artifact(tmp_path / "run/02-child", "child", student)
    return SimpleNamespace(train=train, source=source, student=student, child=child, root=tmp_path)


def test_content_key_follows_the_files_not_the_id(tmp_path):
    one = _reference(tmp_path, "one", [(b"img", b"wav"), (b"img", b"other")])
    two = _reference(tmp_path, "two", [(b"img", b"wav")])
    keys, again = content_keys(one), content_keys(two)
    assert keys["clip-0"] == again["clip-0"] and keys["clip-1"] != keys["clip-0"]


def test_a_stage_records_its_clips_and_roles(lineage):
    record = lineage.student.manifest[SEEN_FIELD]
    assert record["reference"] == "train" and record["reference_hash"] == "train-hash"
    assert [(c["id"], c["role"]) for c in record["clips"]] == [("clip-0", "train"), ("clip-1", "train"),
                                                                ("clip-2", "holdout")]
    assert [c["key"] for c in record["clips"]] == list(content_keys(lineage.train).values())


def test_lineage_status_held_out_seen_and_partly_seen(lineage):
    new = _reference(lineage.root, "new", [(b"x", b"X"), (b"y", b"Y")])
    # same content as training clips a and c under other ids and paths: a was trained on, c only held out
    mixed = _reference(lineage.root, "mixed", [(b"a", b"A"), (b"c", b"C"), (b"a", b"Z")])
    assert lineage_inputs(lineage.child, new) == {"status": "held-out", "evaluated": ["clip-0", "clip-1"],
                                                  "seen": [], "seen_by": {}}
    assert lineage_inputs(lineage.child, mixed) == {"status": "partly seen",
                                                    "evaluated": ["clip-0", "clip-1", "clip-2"],
                                                    "seen": ["clip-0"], "seen_by": {"student": ["clip-0"]}}
    assert lineage_inputs(lineage.student, lineage.train)["status"] == "partly seen"
    only_trained = _reference(lineage.root, "only", [(b"b", b"B")])
    assert lineage_inputs(lineage.child, only_trained) == {"status": "seen", "evaluated": ["clip-0"],
                                                           "seen": ["clip-0"], "seen_by": {"student": ["clip-0"]}}
    assert lineage_inputs(lineage.source, only_trained)["status"] == "held-out"  # not a descendant


def test_a_moved_run_is_walked_and_a_missing_ancestor_refused(lineage):
    only_trained = _reference(lineage.root, "only", [(b"b", b"B")])
    shutil.move(lineage.root / "run", lineage.root / "moved")
    moved = Artifact.open(lineage.root / "moved/02-child")
    assert lineage_inputs(moved, only_trained)["seen_by"] == {"student": ["clip-0"]}
    shutil.rmtree(lineage.root / "moved/01-student")
    with pytest.raises(UserInputError, match="input artifact 'student' .* is missing, changed or outside the roots"):
        lineage_inputs(moved, only_trained)


def test_an_ancestor_outside_the_roots_is_never_opened(lineage):
    inside = _reference(lineage.root / "run", "only", [(b"b", b"B")])  # the roots: the run folder alone
    moved_out = _artifact(lineage.root / "run/05-far", "far", lineage.source)
    shutil.move(lineage.root / "run/00-source", lineage.root / "00-source")
    manifest = json.loads((moved_out.path / "manifest.json").read_text())
    manifest["input"]["path"] = str(lineage.root / "00-source")
    (moved_out.path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserInputError, match="input artifact 'source' .* outside the roots"):
        lineage_inputs(Artifact.open(moved_out.path), inside)


def test_measured_clips_are_unseen_and_an_unrecorded_reference_is_refused(lineage):
    only_trained = _reference(lineage.root, "only", [(b"b", b"B")])
    measured = _artifact(lineage.root / "run/03-int8", "int8", lineage.source,
                         inputs_seen(only_trained, "measured"), {"reference": "only"})
    assert lineage_inputs(measured, only_trained)["status"] == "held-out"
    older = _artifact(lineage.root / "run/04-old", "old", lineage.source, stage_config={"reference": "train"})
    with pytest.raises(UserInputError, match="stage 'old' read a reference but its manifest does not say which "
                                             "inputs .* --from-stage old"):
        lineage_inputs(older, only_trained)


def test_merged_inputs_pool_the_clips_of_same_named_stages_from_two_runs():
    from compress.reference.seen import merged_inputs

    evaluated = ["a", "b", "c"]
    student = {"evaluated": evaluated, "seen_by": {"reference": ["a"], "lipsync": ["c"]}}
    decoder = {"evaluated": evaluated, "seen_by": {"reference": ["b"]}}  # another run's stage of that name
    merged = merged_inputs([student, decoder])
    assert merged["seen_by"] == {"reference": ["a", "b"], "lipsync": ["c"]} and merged["seen"] == ["a", "b", "c"]
    assert merged["status"] == "seen"
