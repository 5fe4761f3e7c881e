"""What a directory of safetensors holds, read from the file headers alone (no tensor is loaded)."""

from __future__ import annotations

import json
import math
import struct
from collections import Counter
from pathlib import Path

from compress.errors import CheckpointError

_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "I64": 8, "I32": 4, "I16": 2,
          "I8": 1, "U8": 1, "BOOL": 1}
#: safetensors dtype codes -> torch dtype names
DTYPE_NAMES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "F8_E4M3": "float8_e4m3fn",
          "F8_E5M2": "float8_e5m2", "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8",
          "BOOL": "bool"}


def read_header(path: Path) -> dict:
    """The tensor table of one safetensors file; a truncated or corrupt file raises naming the file."""
    try:
        with open(path, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            if length > path.stat().st_size - 8:
                raise ValueError(f"header of {length} bytes is longer than the file")
            header = json.loads(f.read(length))
    except (struct.error, ValueError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path}: not a readable safetensors file ({err})") from None
    header.pop("__metadata__", None)
    return header


def summarize(files: list[Path]) -> dict:
    """Parameter (element) count and bytes by dtype over all tensors of the given files."""
    elements, bytes_by_dtype = 0, Counter()
    for path in files:
        for info in read_header(path).values():
            count = math.prod(info["shape"])
            elements += count
            bytes_by_dtype[DTYPE_NAMES.get(info["dtype"], info["dtype"])] += count * _BYTES.get(info["dtype"], 0)
    return {"parameters": elements, "bytes_by_dtype": dict(bytes_by_dtype), "bytes": sum(bytes_by_dtype.values())}


def weight_files(directory: Path) -> list[Path]:
    """The safetensors files of a checkpoint directory: those its index JSON names, else all of them."""
    directory = Path(directory)
    indexes = sorted(directory.glob("*.safetensors.index.json"))
    if len(indexes) > 1:
        raise CheckpointError(f"{directory}: several index files ({', '.join(p.name for p in indexes)})")
    if not indexes:
        return sorted(directory.glob("*.safetensors"))
    try:
        names = sorted(set(json.loads(indexes[0].read_text())["weight_map"].values()))
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise CheckpointError(f"{indexes[0]}: not a valid safetensors index ({err!r})") from None
    for name in names:
        if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
            raise CheckpointError(f"{indexes[0]}: weight_map entry {name!r} is not a plain file name in {directory}")
    files = [directory / name for name in names]
    for path in files:
        if not path.is_file():
            raise CheckpointError(f"{path}: listed in {indexes[0].name} but missing")
    return files
