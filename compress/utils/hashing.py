"""Content hashes of files, directories and JSON-able configs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

_CHUNK = 8 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_json(data) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def hash_files(root: Path, exclude: tuple[str, ...] = ()) -> dict[str, dict]:
    """{relative path: {bytes, sha256}} for every file below root, in a stable order."""
    files = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel not in exclude:
            files[rel] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    return files


def fingerprint_dir(root: Path) -> str:
    """A cheap identity for a large external directory: JSON files by content, others by size and mtime."""
    parts = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        stat = path.stat()
        content = sha256_file(path) if path.suffix == ".json" else f"{stat.st_size}:{stat.st_mtime_ns}"
        parts.append(f"{path.relative_to(root).as_posix()}={content}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()
