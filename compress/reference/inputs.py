"""Input sets for generation: a YAML file (the synthetic set's `inputs.yaml`, or a plain list) or a CSV file.

Each entry needs `image` and `audio` (paths relative to the file); optional: `id`, `prompt`,
`negative_prompt`, `seed` and (YAML) `mouth_box`: the mouth geometry as fractions of the image
(`compress.data.faces.MouthBox` fields: cx, cy, half_width, jaw, optional smile; the synthetic set writes it).
Entries keep the order of the file.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import MISSING, dataclass, fields
from numbers import Real
from pathlib import Path
from typing import Callable

from compress.errors import UserInputError
from compress.utils.hashing import sha256_file
from compress.utils.yamlio import load_plain, read_text


MAX_INPUT_SET_BYTES = 64 << 20  # thousands of clips with prompts fit; a larger file is a mistake

@dataclass(frozen=True)
class InputClip:
    index: int
    id: str
    image: Path
    audio: Path
    prompt: str
    negative_prompt: str
    seed: int | None
    mouth_box: dict[str, float] | None = None


def read_input_set(path: Path, resolve: Callable[[str], Path] = Path) -> list[InputClip]:
    """Entries of an input file; `resolve` checks each absolute file path (e.g. `ctx.resolve_path`: against the
    recipe's roots)."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"inputs: no such file '{path}'")
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(io.StringIO(read_text(path, f"inputs: '{path}'", MAX_INPUT_SET_BYTES), newline="")))
    else:
        data = load_plain(path, f"inputs: '{path}'", MAX_INPUT_SET_BYTES)
        rows = data.get("clips") if isinstance(data, dict) else data
    if not isinstance(rows, list) or not rows:
        raise UserInputError(f"inputs: '{path}' lists no clips (expected a list, or a mapping with 'clips:')")
    clips = []
    for index, row in enumerate(rows):
        where = f"inputs: '{path}' entry {index}"
        if not isinstance(row, dict) or not row.get("image") or not row.get("audio"):
            raise UserInputError(f"{where}: needs 'image' and 'audio'")
        files = {}
        for key in ("image", "audio"):
            file = resolve(str((path.parent / str(row[key])).resolve()))
            if not file.is_file():
                raise UserInputError(f"{where}: {key} file '{file}' does not exist")
            files[key] = file
        seed = row.get("seed")
        clips.append(InputClip(index, str(row.get("id") or f"{index:05d}"), files["image"], files["audio"],
                               str(row.get("prompt") or ""), str(row.get("negative_prompt") or ""),
                               None if seed in (None, "") else int(seed), _mouth_box(row.get("mouth_box"), where)))
    return clips


def _mouth_box(value, where: str) -> dict[str, float] | None:
    if value is None:
        return None
    from compress.data.faces import MouthBox  # compress.data imports torch; recipe parsing imports this module

    known = [f.name for f in fields(MouthBox)]
    required = [f.name for f in fields(MouthBox) if f.default is MISSING]
    if (not isinstance(value, dict) or any(k not in value for k in required)
            or any(k not in known or not isinstance(v, Real) for k, v in value.items())):
        raise UserInputError(f"{where}: mouth_box must map {', '.join(required)} (and optionally "
                             f"{', '.join(k for k in known if k not in required)}) to fractions of the image; "
                             f"got {value!r}")
    return {k: float(v) for k, v in value.items()}


def input_set_fingerprint(path: Path, clips: list[InputClip]) -> dict:
    """Content hashes of the input file and every file it lists."""
    files = sorted({p for c in clips for p in (c.image, c.audio)})
    return {"file": sha256_file(Path(path)),
            "files": {os.path.relpath(f, Path(path).parent): sha256_file(f) for f in files}}
