"""Arrays as plain columns: raw bytes (C order) + shape + dtype name, so any shape and dtype round-trips exactly.

An array `name` is three entries of a row: `name` (bytes), `name_shape` (list of ints) and `name_dtype` (a numpy
dtype name). The reference dataset (`compress.reference.dataset`) stores its arrays this way.
"""

from __future__ import annotations

import numpy as np


def encode_array(array: np.ndarray, name: str) -> dict:
    array = np.asarray(array, order="C")  # (ascontiguousarray would turn 0-d into 1-d)
    return {name: array.tobytes(), f"{name}_shape": list(array.shape), f"{name}_dtype": array.dtype.name}


def decode_array(row: dict, name: str) -> np.ndarray:
    """The array `name` of a row, a read-only view of its bytes (copy it to modify it)."""
    return np.frombuffer(row[name], dtype=np.dtype(row[f"{name}_dtype"])).reshape(row[f"{name}_shape"])


def decode_tensor(row: dict, name: str):
    """The array `name` of a row as a writable torch tensor of its stored dtype."""
    import torch  # this module stays numpy-only for light importers (recipe parsing)

    return torch.from_numpy(decode_array(row, name).copy())
