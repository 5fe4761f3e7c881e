"""The reference dataset: a Hugging Face `datasets` table, one row per input, whose arrays are raw bytes + shape +
dtype columns (`compress.utils.arrays`), so any shape and dtype round-trips exactly without nested array features.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
from datasets import Dataset, Features, List, Value, concatenate_datasets, load_from_disk
from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

from compress.utils.arrays import encode_array

DATASET_DIR = "dataset"


def array_features(*names: str) -> dict:
    """The `datasets` features of encoded arrays (large_binary: a column may hold more than 2 GB)."""
    features = {}
    for name in names:
        features.update({name: Value("large_binary"), f"{name}_shape": List(Value("int64")),
                         f"{name}_dtype": Value("string")})
    return features


@contextlib.contextmanager
def quiet_datasets():
    """Without `datasets`' own progress bars (the runner shows progress)."""
    was_disabled = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            enable_progress_bars()


def save_rows(rows: list[dict], features: dict, path: Path) -> None:
    with quiet_datasets():
        Dataset.from_list(rows, features=Features(features)).save_to_disk(str(path))


def load_rows(path: Path) -> Dataset:
    """A dataset saved by `save_rows` or `merge_rows`."""
    with quiet_datasets():
        return load_from_disk(str(path))


REFERENCE_ARRAYS = ("frames", "latents", "ref_latents", "motion_latents", "audio", "audio_features", "text_embeds",
                    "negative_text_embeds")


def reference_features(blocks: list[int]) -> dict:
    scalars = {"index": Value("int64"), "id": Value("string"), "prompt": Value("string"),
               "negative_prompt": Value("string"), "seed": Value("int64"), "num_clips": Value("int64"),
               "fps": Value("int64")}
    return {**scalars, **array_features(*REFERENCE_ARRAYS, *(f"block_{b}" for b in blocks))}


def reference_row(clip, seed: int, fps: int, audio: np.ndarray, result) -> dict:
    """The row of one input (`compress.reference.inputs.InputClip`) and its `S2VOutput`."""
    arrays = {"frames": result.frames, "latents": result.latents, "ref_latents": result.ref_latents,
              "motion_latents": result.motion_latents, "audio": audio, "audio_features": result.audio_features,
              "text_embeds": result.text_embeds, "negative_text_embeds": result.negative_text_embeds,
              **{f"block_{b}": t for b, t in result.block_outputs.items()}}
    row = {"index": clip.index, "id": clip.id, "prompt": clip.prompt, "negative_prompt": clip.negative_prompt,
           "seed": seed, "num_clips": len(result.seeds), "fps": fps}
    for name, value in arrays.items():
        row.update(encode_array(value.numpy() if hasattr(value, "numpy") else np.asarray(value), name))
    return row


def merge_rows(row_dirs: list[Path], dest: Path) -> Dataset:
    """Concatenate saved one-row datasets (in the given order) into one dataset saved at `dest`."""
    with quiet_datasets():
        dataset = concatenate_datasets([load_from_disk(str(p)) for p in row_dirs])
        dataset.save_to_disk(str(dest))
    return load_rows(dest)
