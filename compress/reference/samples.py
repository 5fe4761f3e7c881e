"""DiT inputs drawn from a reference dataset: the teacher's own latents, noised to a flow-matching level.

Used for calibration (quantize, prune: `compress.reference.calibration`) and training (LoRA recovery): the model
sees exactly the conditioning it sees while generating, not random tensors.
"""

from __future__ import annotations

import torch

from compress.pipelines.components import NUM_TRAIN_TIMESTEPS
from compress.utils.arrays import decode_tensor


def latent_clips(rows) -> list[tuple[dict, int]]:
    """(row, clip index) of every generated clip of the rows, in order."""
    return [(row, clip) for row in rows for clip in range(row["num_clips"])]


def noised_dit_inputs(row: dict, clip: int, sigma: float, generator: torch.Generator) -> tuple[dict, torch.Tensor]:
    """DiT forward kwargs for clip `clip` of a reference row at noise level `sigma` in (0, 1], and the
    flow-matching target velocity (noise - clean latents)."""
    clean = decode_tensor(row, "latents")[clip : clip + 1].float()
    noise = torch.randn(clean.shape, generator=generator)
    frames = 4 * clean.shape[2]  # audio steps per clip: 4 per latent frame
    audio = decode_tensor(row, "audio_features")[None, :, :, clip * frames : (clip + 1) * frames].float()
    inputs = dict(
        hidden_states=(1 - sigma) * clean + sigma * noise,
        timestep=torch.tensor([sigma * NUM_TRAIN_TIMESTEPS]),
        encoder_hidden_states=decode_tensor(row, "text_embeds")[None].float(),
        audio_features=audio,
        ref_latents=decode_tensor(row, "ref_latents")[None].float(),
        motion_latents=decode_tensor(row, "motion_latents")[clip : clip + 1].float(),
        drop_motion_frames=clip == 0,
    )
    return inputs, noise - clean
