"""`compress.sources.resolve`: a preset, a model directory or an artifact, with one error text naming all three."""

import pytest

from compress import Recipe
from compress.errors import UserInputError
from compress.sources import resolve


def test_presets_directories_and_artifacts(workdir):
    result = Recipe(model="test-mlp", output="runs/r", stages=[{"kind": "test-scale", "name": "a"}]).run(quiet=True)
    preset = resolve("test-mlp")
    assert (preset.kind, preset.path, preset.model_dir()) == ("preset", None, None)
    artifact = resolve("runs/r/01-a")
    assert artifact.kind == "artifact" and artifact.artifact().hash == result["a"].hash
    assert artifact.model_dir().resolve() == result["a"].path and artifact.layout()[0].__name__ == "TinyMLP"
    directory = resolve(result["a"].path)
    assert directory.kind == "artifact"
    (workdir / "test-mlp").mkdir()  # an existing path wins over a preset of the same name
    with pytest.raises(UserInputError, match="holds neither manifest.json .* nor config.json"):
        resolve("test-mlp")
    (workdir / "test-mlp" / "config.json").write_text((result["a"].path / "config.json").read_text())
    assert resolve("test-mlp").kind == "directory"


def test_an_unknown_name_lists_what_was_tried(workdir):
    with pytest.raises(UserInputError, match=r"'nope' is not an artifact, a model directory or a preset: no such "
                                             r"path, and the presets are .*tiny"):
        resolve("nope")


def test_an_artifact_without_weights_says_so(workdir):
    Recipe(model="test-mlp", output="runs/r", stages=[{"kind": "test-note", "text": "x"}]).run(quiet=True)
    with pytest.raises(UserInputError, match="artifact runs/r/01-test-note holds no model weights"):
        resolve("runs/r/01-test-note").model_dir()
