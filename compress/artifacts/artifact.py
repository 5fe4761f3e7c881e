"""An artifact is a directory: weights, config, `manifest.json` (lineage, hashes, metrics) and a model card.

A directory is complete if and only if it has `manifest.json`: writers build in a hidden sibling
directory and rename it into place as the last step.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

from compress.artifacts.card import render_card
from compress.errors import CheckpointError, UserInputError
from compress.utils.hashing import hash_files, sha256_file, sha256_json
from compress.utils.paths import check_folder, is_inside
from compress.utils.weights import summarize, weight_files

MANIFEST = "manifest.json"
FORMAT = "compress-artifact/1"
PARTIAL_MARK = ".partial-"
#: what a writer leaves beside `NN-name` when killed: `.NN-name.partial-<pid>-<hex>` and `.NN-name.old-<hex>`
LEFTOVER = re.compile(r"\.\d{2,}-.+\.(partial-\d+|old)-[0-9a-f]{6}")
#: recorded files up to this size are checked by hash before reuse, larger ones by size
HASH_LIMIT = 16 << 20
_REQUIRED = {"name": str, "kind": str, "hash": str, "files": dict}


class DamagedArtifactError(CheckpointError):
    """A finished-looking artifact whose manifest or files do not match what was written."""


class Artifact:
    """A finished artifact directory, read-only."""

    def __init__(self, path: Path, manifest: dict):
        self.path = Path(path)
        self.manifest = manifest

    @classmethod
    def open(cls, path: str | Path) -> "Artifact":
        path = Path(path)
        manifest_path = path / MANIFEST
        if not manifest_path.is_file():
            raise UserInputError(f"{path} is not a finished artifact (no {MANIFEST})")
        return cls(path, _read_manifest(manifest_path))

    def open_related(self, path: str | Path, resolve: Callable[[str], Path]) -> "Artifact":
        """An artifact this one's manifest points at (e.g. its input): opened where it lies in this one's run folder,
        else only where `resolve` (a roots check, raising UserInputError outside them) allows."""
        path = Path(path)
        return Artifact.open(path if is_inside(path, [self.path.parent]) else resolve(str(path)))

    @staticmethod
    def is_artifact(path: str | Path) -> bool:
        return (Path(path) / MANIFEST).is_file()

    name = property(lambda self: self.manifest["name"])
    kind = property(lambda self: self.manifest["kind"])
    hash = property(lambda self: self.manifest["hash"])
    metrics = property(lambda self: self.manifest.get("metrics", {}))

    @property
    def model_dir(self) -> Path | None:
        """Where the weights are: the artifact itself, or the external directory a source artifact points at."""
        external = self.manifest.get("external_model_dir")
        if external:
            return Path(external)
        return self.path if self.manifest.get("model") else None

    @property
    def lineage(self) -> list[dict]:
        """Ancestors from the source to this artifact."""
        own = {"name": self.name, "kind": self.kind, "hash": self.hash}
        return [*self.manifest.get("lineage", []), own]

    def verify(self) -> "Artifact":
        """Raise DamagedArtifactError unless every recorded file is inside the artifact with its recorded size (and,
        for files up to HASH_LIMIT bytes, its recorded sha256)."""
        root = self.path.resolve()
        for name, recorded in self.manifest["files"].items():
            path = self.path / name
            damaged = f"damaged artifact {self.path}: {name}"
            if not (isinstance(recorded, dict) and isinstance(recorded.get("bytes"), int)
                    and isinstance(recorded.get("sha256"), str)):
                raise DamagedArtifactError(f"{damaged}: its manifest entry lacks bytes and sha256 ({recorded!r})")
            if not is_inside(path, [root]):
                raise DamagedArtifactError(f"{damaged} lies outside the artifact")
            try:
                size = path.stat().st_size
            except OSError:
                raise DamagedArtifactError(f"{damaged} is missing (expected {recorded['bytes']} bytes)") from None
            if size != recorded["bytes"]:
                raise DamagedArtifactError(f"{damaged} has {size} bytes, expected {recorded['bytes']}")
            if size <= HASH_LIMIT and sha256_file(path) != recorded["sha256"]:
                raise DamagedArtifactError(f"{damaged} was changed (its sha256 differs from the manifest's)")
        return self

    def check_pointers(self, roots: list[Path]) -> "Artifact":
        """Refuse a manifest whose `external_model_dir` (where its weights are loaded from) or any entry of that
        directory leads outside `roots`, symlinks resolved."""
        external = self.manifest.get("external_model_dir")
        if external:
            check_folder(Path(external), roots, f"{self.path / MANIFEST}: external_model_dir")
        return self

    @property
    def model_class(self) -> type | None:
        """The class of the model its weights hold, read from their config (None without weights)."""
        from compress.models.auto import checkpoint_layout

        return checkpoint_layout(self.model_dir)[0] if self.model_dir is not None else None

    def load_model(self, device=None, torch_dtype=None):
        from compress.models.auto import load_model

        if self.model_dir is None:
            raise UserInputError(f"artifact {self.path} ({self.kind}) holds no model weights")
        self.verify()
        return load_model(self.model_dir, device=device, torch_dtype=torch_dtype)


class ArtifactWriter:
    """Builds an artifact in `.NAME.partial-*` beside its final place; `commit` makes it appear atomically."""

    def __init__(self, final_path: Path, path: Path | None = None):
        """A new partial directory, or (with `path`) one that another process of the same run created."""
        self.final_path = Path(final_path)
        partial = self.final_path.parent / f".{self.final_path.name}{PARTIAL_MARK}{os.getpid()}-{secrets.token_hex(3)}"
        self.path = Path(path or partial)
        self.path.mkdir(parents=True, exist_ok=path is not None)
        #: extra top-level manifest fields a stage wants recorded ("description"; "figures": PNG paths for the card)
        self.extra: dict = {}

    def save_model(self, model, max_shard_size: str = "2GB") -> None:
        model.save_pretrained(self.path, safe_serialization=True, max_shard_size=max_shard_size)

    def write_json(self, name: str, data) -> Path:
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
        return target

    def commit(self, manifest: dict) -> Artifact:
        files = hash_files(self.path)
        manifest = {"format": FORMAT, **manifest, "files": files, "hash": sha256_json(files)}
        weights = weight_files(self.path)
        if weights:
            manifest["model"] = {**manifest.get("model", {}), **summarize(weights)}
        (self.path / "README.md").write_text(render_card(manifest))
        (self.path / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
        _fsync_tree(self.path)
        self._replace_final()
        return Artifact(self.final_path, manifest)

    def _replace_final(self) -> None:
        old = None
        if self.final_path.exists():
            old = self.final_path.parent / f".{self.final_path.name}.old-{secrets.token_hex(3)}"
            # demote first: a crash from here on leaves no complete-looking stale copy under the final name
            (self.final_path / MANIFEST).unlink(missing_ok=True)
            self.final_path.rename(old)
        self.path.rename(self.final_path)
        _fsync_dir(self.final_path.parent)
        if old is not None:
            shutil.rmtree(old)

    def abort(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _read_manifest(path: Path) -> dict:
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise DamagedArtifactError(f"{path}: unreadable manifest ({err}); the artifact is damaged") from None
    wrong = [key for key, kind in _REQUIRED.items()
             if not isinstance(manifest, dict) or not isinstance(manifest.get(key), kind)]
    if wrong:
        raise DamagedArtifactError(f"{path}: damaged manifest, fields missing or of the wrong type: {', '.join(wrong)}")
    return manifest


def remove_partials(directory: Path, log=print) -> None:
    """Delete unfinished artifacts left by killed runs (call only while holding the output lock): only directories
    named as a writer names them (`LEFTOVER`)."""
    for path in sorted(Path(directory).glob(".*")):
        if path.is_dir() and not path.is_symlink() and LEFTOVER.fullmatch(path.name):
            log(f"removing unfinished artifact {path.name} left by an interrupted run")
            shutil.rmtree(path, ignore_errors=True)


def _fsync_tree(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
    for directory in [root, *(p for p in root.rglob("*") if p.is_dir())]:
        _fsync_dir(directory)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
