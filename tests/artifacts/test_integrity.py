"""The checks behind reuse: leftover names, recorded sizes and hashes, manifest pointers and symlinks vs the roots."""

import json

import pytest

from compress.artifacts import Artifact, ArtifactWriter, DamagedArtifactError, remove_partials
from compress.errors import CheckpointError, UserInputError
from compress.utils.paths import resolve_within
from compress.utils.weights import weight_files


def artifact(tmp_path, files: dict, **manifest) -> Artifact:
    out = ArtifactWriter(tmp_path / "runs" / "01-a")
    for name, text in files.items():
        (out.path / name).write_text(text)
    return out.commit({"name": "a", "kind": "test", **manifest})


def test_only_the_writers_own_leftovers_are_removed(tmp_path):
    own = [".01-a.partial-123-0a1b2c", ".00-source.partial-9-abcdef", ".02-b.c.old-0a1b2c", ".100-z.old-ffffff"]
    others = [".notes.old-2024", ".a.partial-1-0a1b2c", ".01-a.old-0a1b2", ".01-a.partial-x-0a1b2c", "01-a.old-0a1b2c"]
    for name in own + others:
        (tmp_path / name).mkdir()
    logged = []
    remove_partials(tmp_path, log=logged.append)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(others)
    assert len(logged) == len(own)


def test_an_intact_artifact_verifies_and_each_damage_is_named(tmp_path):
    a = artifact(tmp_path, {"x.txt": "12345", "y.txt": "abc"})
    assert Artifact.open(a.path).verify().hash == a.hash
    (a.path / "x.txt").write_text("54321")  # same size, other content
    with pytest.raises(DamagedArtifactError, match="x.txt was changed"):
        Artifact.open(a.path).verify()
    (a.path / "x.txt").write_text("1234")
    with pytest.raises(DamagedArtifactError, match="x.txt has 4 bytes, expected 5"):
        Artifact.open(a.path).verify()
    (a.path / "x.txt").unlink()
    with pytest.raises(DamagedArtifactError, match=r"x.txt is missing \(expected 5 bytes\)"):
        Artifact.open(a.path).verify()


def test_a_manifest_naming_files_outside_the_artifact_is_damaged(tmp_path):
    a = artifact(tmp_path, {"x.txt": "1"})
    (tmp_path / "secret").write_text("s")
    manifest = {**a.manifest, "files": {"../../secret": {"bytes": 1, "sha256": "0"}}}
    (a.path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DamagedArtifactError, match=r"\.\./\.\./secret lies outside the artifact"):
        Artifact.open(a.path).verify()


@pytest.mark.parametrize("text, message", [
    ('{"name": "a"', "unreadable manifest"),
    ('[1, 2]', "fields missing or of the wrong type: name, kind, hash, files"),
    ('{"name": "a", "kind": "k", "hash": "h", "files": []}', "wrong type: files"),
])
def test_a_broken_manifest_is_named(tmp_path, text, message):
    a = artifact(tmp_path, {"x.txt": "1"})
    (a.path / "manifest.json").write_text(text)
    with pytest.raises(DamagedArtifactError, match=message) as err:
        Artifact.open(a.path)
    assert str(a.path / "manifest.json") in str(err.value)


def test_manifest_pointers_must_stay_in_the_roots(tmp_path):
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    (root / "models").mkdir(parents=True)
    elsewhere.mkdir()
    a = artifact(root, {}, external_model_dir=str(root / "models"))
    assert a.check_pointers([root]) is a
    (root / "models" / "w.safetensors").symlink_to(elsewhere / "w.safetensors")
    with pytest.raises(UserInputError, match=r"external_model_dir: .*w.safetensors \(which leads to"):
        a.check_pointers([root])
    b = artifact(root, {}, external_model_dir=str(elsewhere))
    with pytest.raises(UserInputError, match="manifest.json: external_model_dir: .* is outside the working root"):
        b.check_pointers([root])


def test_recipe_paths_resolve_symlinks_and_check_a_folders_entries(tmp_path):
    (tmp_path / "root" / "vae").mkdir(parents=True)
    (tmp_path / "out.txt").write_text("x")
    root = tmp_path / "root"
    assert resolve_within(root, [], "vae") == root / "vae"
    (root / "link").symlink_to(tmp_path / "out.txt")
    with pytest.raises(UserInputError, match=r"path 'link': .*link \(which leads to .*out.txt\) is outside"):
        resolve_within(root, [], "link")
    (root / "vae" / "sub").mkdir()
    (root / "vae" / "sub" / "w.safetensors").symlink_to(tmp_path / "out.txt")
    with pytest.raises(UserInputError, match=r"path 'vae': .*sub/w.safetensors \(which leads to"):
        resolve_within(root, [], "vae")
    assert resolve_within(root, [".."], "vae") == root / "vae"  # a declared root admits it


@pytest.mark.parametrize("entry", ["../x.safetensors", "/etc/passwd", "sub/x.safetensors", "..", ""])
def test_index_entries_must_be_plain_file_names(tmp_path, entry):
    (tmp_path / "m.safetensors.index.json").write_text(json.dumps({"weight_map": {"w": entry}}))
    with pytest.raises(CheckpointError, match=f"weight_map entry '{entry}' is not a plain file name"):
        weight_files(tmp_path)
