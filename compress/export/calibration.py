"""Calibration inputs for QDQ quantization, drawn from a reference dataset the way the student sees them.

In order of preference, per batch:
1. the model's own `calibration_inputs(row)` (a dict of forward inputs), if it offers one;
2. per input, a tensor derived from the reference row by input name (`DERIVED`), when its shape matches the
   export's static shape;
3. otherwise random values with the example input's mean and standard deviation.
The report records which source each input came from.
"""

from __future__ import annotations

from typing import Callable

import torch

from compress.pipelines.dataset import decode_array, load_reference_dataset


def _tensor(row: dict, name: str) -> torch.Tensor:
    return torch.from_numpy(decode_array(row, name).copy()).float()


def _video_latent_frames(row: dict) -> torch.Tensor:
    """The row's denoised latent frames [clips * F, C, h, w]."""
    return _tensor(row, "latents").transpose(1, 2).flatten(0, 1)


def _masked(row: dict) -> torch.Tensor:
    from compress.models.students import mask_lower_half

    return mask_lower_half(_video_latent_frames(row))


def _mel(row: dict, window: int) -> torch.Tensor:
    from compress.models.students import mel_windows

    frames = decode_array(row, "frames").shape[0]
    return mel_windows(decode_array(row, "audio").copy(), row["fps"], frames, window).float()


def _decoder(index: int) -> Callable[[dict, int], torch.Tensor]:
    def derive(row: dict, window: int) -> torch.Tensor:
        from compress.models.students import decoder_inputs

        return decoder_inputs(row)[index].float()

    return derive


#: input name -> stack of candidate values [N, ...] from a reference row (N: frames or latent frames)
DERIVED: dict[str, Callable[[dict, int], torch.Tensor]] = {
    "ref_latent": lambda row, window: _tensor(row, "ref_latents")[:, 0][None],
    "masked_latent": lambda row, window: _masked(row),
    "audio": lambda row, window: _mel(row, window),
    "latents": _decoder(0),
    "previous": _decoder(1),
}


def calibration_from_reference(model, example: dict, reference, count: int, seed: int = 0
                               ) -> tuple[list[dict], dict[str, str]]:
    """`count` batches shaped like `example` from the reference artifact's rows, and each input's source."""
    rows = list(load_reference_dataset(reference))
    if hasattr(model, "calibration_inputs"):
        batches = [model.calibration_inputs(rows[i % len(rows)]) for i in range(count)]
        return batches, {name: "model.calibration_inputs" for name in example}
    window = getattr(getattr(model, "config", None), "audio_window", 16)
    pools, sources = {}, {}
    for name, value in example.items():
        pool = _derived_pool(name, rows, window, value)
        if pool is not None:
            pools[name], sources[name] = pool, f"reference dataset ({name} derived from its rows)"
        elif isinstance(value, torch.Tensor):
            sources[name] = "random with the example input's mean and std (no reference-derived value fits)"
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for i in range(count):
        batch = {}
        for name, value in example.items():
            if name in pools:
                pool = pools[name]
                batch[name] = pool[(i * max(1, len(pool) // count)) % len(pool)][None].to(value.dtype)
            else:
                batch[name] = _like(value, generator)
        batches.append(batch)
    return batches, sources


def random_calibration(example: dict, count: int, seed: int = 0) -> list[dict]:
    """`count` batches of random values with each example input's mean and std (no reference data)."""
    generator = torch.Generator().manual_seed(seed)
    return [{name: _like(value, generator) for name, value in example.items()} for _ in range(count)]


def _derived_pool(name: str, rows: list[dict], window: int, value) -> torch.Tensor | None:
    if name not in DERIVED or not isinstance(value, torch.Tensor) or value.shape[0] != 1:
        return None
    pool = torch.cat([DERIVED[name](row, window) for row in rows])
    return pool if tuple(pool.shape[1:]) == tuple(value.shape[1:]) else None


def _like(value, generator: torch.Generator):
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        return value
    noise = torch.randn(value.shape, generator=generator)
    return (noise * value.float().std() + value.float().mean()).to(value.dtype)
