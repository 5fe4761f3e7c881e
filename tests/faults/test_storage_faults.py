"""Storage faults (issue 24, part A): nothing on disk lost, nothing outside the roots opened, damaged artifacts
detected before reuse, pickled or broken weights refused. Each case runs `compress` on a bad input or a fault."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from compress import Recipe
from compress.artifacts import Artifact
from compress.runner import OUTPUT_MARK
from tests.engine_fixtures import TinyMLP
from tests.faults.table import Case, check

WEIGHTS = "diffusion_pytorch_model.safetensors"


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # messages on one line: fragments are not split by wrapping


def recipe(tmp: Path, model: str = "test-mlp", output: str = "runs/t") -> list[str]:
    (tmp / "r.yaml").write_text(f"model: {model}\noutput: {output}\nstages:\n  - kind: test-scale\n    name: a\n")
    return ["run", "r.yaml", "-q"]


def model_dir(tmp: Path, name: str = "models/m") -> Path:
    """A TinyMLP folder (config.json + safetensors) inside the working root."""
    path = tmp / name
    TinyMLP().save_pretrained(path, safe_serialization=True)
    return path


def outside(tmp: Path) -> Path:
    """A folder beside the working root, outside every root."""
    path = tmp.parent / f"{tmp.name}-outside"
    path.mkdir(exist_ok=True)
    return path


def finished_run(tmp: Path) -> Path:
    """runs/t after a finished run of `recipe`; its first stage's artifact."""
    recipe(tmp)
    Recipe.from_yaml(tmp / "r.yaml").run(tmp, quiet=True)
    return tmp / "runs/t/01-a"


def keeps(path: str, text: str = "mine", unmarked: str | None = None):
    """After the run: the user's file `path` is intact (and, when refused, nothing was written into `unmarked`)."""
    def after(tmp: Path) -> None:
        assert (tmp / path).read_text() == text, f"{path} was changed or deleted"
        if unmarked is not None:
            assert not {OUTPUT_MARK, ".lock"} & {p.name for p in (tmp / unmarked).iterdir()}
    return after


def user_file(tmp: Path, path: str, text: str = "mine") -> None:
    (tmp / path).parent.mkdir(parents=True, exist_ok=True)
    (tmp / path).write_text(text)


# ---- 1. nothing the toolkit did not write is deleted ---------------------------------------------------------------

def _output_dot(tmp):
    user_file(tmp, ".notes.old-2024/keep.txt")
    return recipe(tmp, output=".")


def _foreign_output(tmp):
    user_file(tmp, "runs/t/.notes.old-2024/keep.txt")
    return recipe(tmp)


def _own_output_with_user_folder(tmp):
    finished_run(tmp)
    user_file(tmp, "runs/t/.notes.old-2024/keep.txt")
    (tmp / "runs/t/.01-a.old-0a1b2c").mkdir()  # the runner's own leftover: removed
    return recipe(tmp)


def _no_own_leftovers(tmp: Path) -> None:
    assert not (tmp / "runs/t/.01-a.old-0a1b2c").exists()


# ---- 2. nothing outside the roots is opened ------------------------------------------------------------------------

def _weight_map(entry: str):
    def setup(tmp):
        path = model_dir(tmp)
        weights = path / WEIGHTS
        weights.rename(outside(tmp) / "x.safetensors")
        index = {"metadata": {}, "weight_map": dict.fromkeys(load_file(outside(tmp) / "x.safetensors"), entry)}
        (path / f"{WEIGHTS}.index.json").write_text(json.dumps(index))
        return recipe(tmp, model="models/m")
    return setup


def _symlinked_weights(tmp):
    path = model_dir(tmp)
    target = outside(tmp) / WEIGHTS
    (path / WEIGHTS).rename(target)
    (path / WEIGHTS).symlink_to(target)
    return recipe(tmp, model="models/m")


def _symlinked_model_folder(tmp):
    target = model_dir(tmp)
    moved = outside(tmp) / "m"
    target.rename(moved)
    (tmp / "models/m").symlink_to(moved)
    return recipe(tmp, model="models/m")


def _external_dir_edited(tmp):
    model_dir(tmp)
    recipe(tmp, model="models/m")
    Recipe.from_yaml(tmp / "r.yaml").run(tmp, quiet=True)
    manifest_path = tmp / "runs/t/00-source/manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["external_model_dir"] = str(outside(tmp))
    manifest_path.write_text(json.dumps(manifest))
    return ["run", "r.yaml", "-q"]


def _inspect_weight_map(tmp):
    _weight_map("../../../../etc/passwd")(tmp)
    return ["inspect", "models/m"]


# ---- 3. damaged artifacts are detected before reuse ----------------------------------------------------------------

def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _damaged(damage):
    def setup(tmp):
        damage(finished_run(tmp))
        return ["run", "r.yaml"]
    return setup


def _same_size_edit(artifact: Path) -> None:
    config = artifact / "config.json"
    text = config.read_text()
    config.write_text(text.replace('"depth": 2', '"depth": 3'))
    assert len(config.read_text()) == len(text) and config.read_text() != text


def _inspect_damaged(damage):
    def setup(tmp):
        damage(finished_run(tmp))
        return ["inspect", "runs/t/01-a"]
    return setup


def _source_artifact_damaged(tmp):
    _truncate(finished_run(tmp) / WEIGHTS)
    return recipe(tmp, model="runs/t/01-a", output="runs/u")


def _repaired(tmp: Path) -> None:
    artifact = Artifact.open(tmp / "runs/t/01-a").verify()
    assert artifact.load_model() is not None


# ---- 5. weights: safetensors only, readable, finite ----------------------------------------------------------------

def _pickled_only(tmp):
    path = model_dir(tmp)
    torch.save(load_file(path / WEIGHTS), path / "diffusion_pytorch_model.bin")
    (path / WEIGHTS).unlink()
    return recipe(tmp, model="models/m")


def _no_weights(tmp):
    (model_dir(tmp) / WEIGHTS).unlink()
    return recipe(tmp, model="models/m")


def _long_header(tmp):
    weights = model_dir(tmp) / WEIGHTS
    data = weights.read_bytes()
    weights.write_bytes((len(data) * 10).to_bytes(8, "little") + data[8:])
    return recipe(tmp, model="models/m")


def _nan_weights(tmp):
    weights = model_dir(tmp) / WEIGHTS
    tensors = load_file(weights)
    tensors["layers.1.weight"][0, 0] = float("nan")
    save_file(tensors, weights)
    return recipe(tmp, model="models/m")


CASES = [
    Case("output-is-the-working-root", _output_dot, 2, "is the working root", keeps(".notes.old-2024/keep.txt", unmarked=".")),
    Case("output-holds-user-files", _foreign_output, 2, "did not write (.notes.old-2024)",
         keeps("runs/t/.notes.old-2024/keep.txt", unmarked="runs/t")),
    Case("cleanup-spares-lookalike-folders", _own_output_with_user_folder, 0, "",
         lambda tmp: (keeps("runs/t/.notes.old-2024/keep.txt")(tmp), _no_own_leftovers(tmp))),
    Case("weight-map-escapes", _weight_map("../../outside/x.safetensors"), 2,
         "weight_map entry '../../outside/x.safetensors' is not a plain file name"),
    Case("weight-map-etc-passwd", _weight_map("../../../../etc/passwd"), 2, "index.json: weight_map entry"),
    Case("inspect-weight-map-etc-passwd", _inspect_weight_map, 2, "index.json: weight_map entry"),
    Case("weights-symlinked-outside", _symlinked_weights, 2,
         f"models/m/{WEIGHTS} (which leads to"),
    Case("model-folder-symlinked-outside", _symlinked_model_folder, 2, "model: expected a path inside"),
    Case("manifest-external-dir-edited", _external_dir_edited, 2,
         "00-source/manifest.json: external_model_dir"),
    Case("weights-truncated-rerun", _damaged(lambda a: _truncate(a / WEIGHTS)), 0,
         f"01-a: {WEIGHTS} has", _repaired),
    Case("weights-deleted-rerun", _damaged(lambda a: (a / WEIGHTS).unlink()), 0, f"{WEIGHTS} is missing", _repaired),
    Case("config-edited-rerun", _damaged(_same_size_edit), 0, "config.json was changed", _repaired),
    Case("manifest-truncated-rerun", _damaged(lambda a: _truncate(a / "manifest.json")), 0,
         "01-a/manifest.json: unreadable manifest", _repaired),
    Case("inspect-weights-truncated", _inspect_damaged(lambda a: _truncate(a / WEIGHTS)), 2,
         f"damaged artifact runs/t/01-a: {WEIGHTS} has"),
    Case("inspect-weights-deleted", _inspect_damaged(lambda a: (a / WEIGHTS).unlink()), 2, "is missing (expected"),
    Case("inspect-manifest-truncated", _inspect_damaged(lambda a: _truncate(a / "manifest.json")), 2,
         "manifest.json: unreadable manifest"),
    Case("source-artifact-damaged", _source_artifact_damaged, 2, f"runs/t/01-a: {WEIGHTS} has"),
    Case("pickled-weights-only", _pickled_only, 2, "found only pickled weights (diffusion_pytorch_model.bin)"),
    Case("student-folder-without-weights", _no_weights, 2, f"models/m: no {WEIGHTS}"),
    Case("safetensors-header-too-long", _long_header, 2, "longer than the file"),
    Case("nan-weights", _nan_weights, 2, "tensor 'layers.1.weight' holds nan or inf"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_storage_fault(case, tmp_path, monkeypatch, capsys):
    check(case, tmp_path, monkeypatch, capsys)


def test_a_truncated_artifact_names_both_sizes(tmp_path, monkeypatch, capsys):
    """The damage message gives the size found and the size the manifest records."""
    weights = finished_run(tmp_path) / WEIGHTS
    full = weights.stat().st_size
    _truncate(weights)
    check(Case("sizes", lambda tmp: ["inspect", "runs/t/01-a"], 2, f"has {full // 2} bytes, expected {full}"),
          tmp_path, monkeypatch, capsys)


def test_component_folders_with_pickled_weights_only_are_refused(tmp_path):
    """The S2V components (VAE, text and audio encoders) load safetensors only: a pickled file is named, never read."""
    from compress.errors import CheckpointError
    from compress.pipelines.components import S2VComponents

    for name in ("vae", "text_encoder", "audio_encoder"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text("{}")
    (tmp_path / "vae" / "diffusion_pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(CheckpointError, match=r"vae: no .* found only pickled weights \(diffusion_pytorch_model.bin\)"):
        S2VComponents.from_dirs(tmp_path / "dit", *(tmp_path / n for n in ("vae", "text_encoder", "audio_encoder")))
