"""Calibration inputs for QDQ quantization, drawn from a reference artifact in the student's input format.

In order of preference, per batch:
1. the model's own `calibration_inputs(row)` (a dict of forward inputs), if it offers one;
2. per input, values derived from the reference rows by input name (`DERIVED`), when their shape matches the
   export's static shape; a reference at another size has its latents resized (bilinear) to the export's first
   (a face crop of 256x256 calibrated on a 96x96 reference sees the same faces, upscaled);
3. otherwise random values with the example input's mean and standard deviation.
The sampling itself is `compress.reference.calibration`'s; the report records which source each input came from.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from compress.models.students import decoder_inputs
from compress.models.students.vae_io import reference_latent
from compress.reference.calibration import shaped_calibration, spread
from compress.utils.arrays import decode_array, decode_tensor, encode_array


def _video_latent_frames(row: dict) -> torch.Tensor:
    """The row's denoised latent frames [clips * F, C, h, w]."""
    return decode_tensor(row, "latents").float().transpose(1, 2).flatten(0, 1)


def _audio(row: dict, model) -> torch.Tensor:
    """The student's audio input per frame, as it computes it (`audio_windows`: its window and chunk)."""
    frames = decode_array(row, "frames").shape[0]
    return model.audio_windows(decode_array(row, "audio").copy(), row["fps"], frames).float()


def _ref_latent(row: dict, model=None) -> torch.Tensor:
    return reference_latent(row).float()


def _masked(row: dict, model) -> torch.Tensor:
    """The student's masked input per latent frame, as it builds it (`masked`: from the frame, or in `reference`
    mode from the reference latent)."""
    return model.masked(_video_latent_frames(row), _ref_latent(row))


def _decoder(index: int) -> Callable[[dict, object], torch.Tensor]:
    return lambda row, model: decoder_inputs(row)[index].float()


#: the row's latent arrays, resized when the export's latent size differs from the reference's
LATENT_ARRAYS = ("latents", "ref_latents", "motion_latents")
LATENT_INPUTS = ("ref_latent", "masked_latent", "latents", "previous")


def _resized(row: dict, size: tuple[int, int]) -> dict:
    """The row with its latent arrays [..., h, w] resized to `size` (bilinear)."""
    resized = dict(row)
    for name in (name for name in LATENT_ARRAYS if name in row):
        latents = decode_tensor(row, name).float()
        flat = latents.reshape(1, -1, *latents.shape[-2:])
        out = F.interpolate(flat, size=size, mode="bilinear", align_corners=False)
        resized.update(encode_array(out.reshape(*latents.shape[:-2], *size).numpy(), name))
    return resized


def _latent_size(example: dict) -> tuple[int, int] | None:
    names = [name for name in LATENT_INPUTS if isinstance(example.get(name), torch.Tensor)]
    return tuple(example[names[0]].shape[-2:]) if names else None


#: input name -> stack of candidate values [N, ...] from a reference row for a model (N: frames or latent frames)
DERIVED: dict[str, Callable[[dict, object], torch.Tensor]] = {
    "ref_latent": _ref_latent,
    "masked_latent": _masked,
    "audio": _audio,
    "latents": _decoder(0),
    "previous": _decoder(1),
}


def export_calibration(model, example: dict, reference, count: int, seed: int = 0
                       ) -> tuple[list[dict], dict[str, str]]:
    """`count` batches shaped like `example`, and each input's source: from a `ReferenceArtifact`'s rows where
    an input can be derived from them, else (and with `reference` None) random with the example's statistics."""
    if reference is None:
        return shaped_calibration(example, {}, count, seed), {
            name: "random with the example input's mean and std (no reference)" for name in example}
    rows, note = _at_export_size(list(reference.rows), _latent_size(example))
    if hasattr(model, "calibration_inputs"):
        return [model.calibration_inputs(row) for row in spread(rows, count)], {
            name: "model.calibration_inputs" for name in example}
    pools, sources = {}, {}
    for name, value in example.items():
        pool = _derived_pool(name, rows, model, value)
        if pool is not None:
            resized = note if name in LATENT_INPUTS else ""
            pools[name], sources[name] = pool, f"reference dataset ({name} derived from its rows{resized})"
        elif isinstance(value, torch.Tensor):
            sources[name] = "random with the example input's mean and std (no reference-derived value fits)"
    return shaped_calibration(example, pools, count, seed), sources


def export_inputs(model, example: dict, reference, count: int, seed: int = 0) -> dict:
    """An `ExportRequest`'s inputs: the calibration batches and their sources, and the input the export is checked
    on. With a reference, that is one more batch drawn from it than the calibration takes: realistic, yet not
    among the calibration batches (a trained model's activations on its random example input fall outside the calibrated
    ranges). Without one, the model's example input."""
    if reference is None:
        batches, sources = export_calibration(model, example, None, count, seed)
        return {"calibration": batches, "calibration_source": sources}
    batches, sources = export_calibration(model, example, reference, count + 1, seed)
    return {"calibration": batches[:-1], "calibration_source": sources, "example": batches[-1],
            "example_source": "one batch more drawn from the reference, not among the calibration's (with few "
                              "clips, its reference latent may be one of theirs)"}


def _at_export_size(rows: list[dict], size: tuple[int, int] | None) -> tuple[list[dict], str]:
    """The rows with latents at the export's latent size, and a note for the sources when they were resized."""
    stored = tuple(decode_array(rows[0], "ref_latents").shape[-2:]) if rows and "ref_latents" in rows[0] else None
    if size is None or stored is None or stored == size:
        return rows, ""
    return [_resized(row, size) for row in rows], (f"; latents resized {stored[0]}x{stored[1]} -> "
                                                   f"{size[0]}x{size[1]}")


def _derived_pool(name: str, rows: list[dict], model, value) -> torch.Tensor | None:
    if name not in DERIVED or not isinstance(value, torch.Tensor) or value.shape[0] != 1:
        return None
    pool = torch.cat([DERIVED[name](row, model) for row in rows])
    return pool if tuple(pool.shape[1:]) == tuple(value.shape[1:]) else None
