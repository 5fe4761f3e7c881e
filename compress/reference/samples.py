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


def clip_conditioning(row: dict, clip: int) -> dict:
    """The conditioning DiT kwargs of clip `clip` of a reference row, as the teacher saw them: text embeddings,
    the clip's audio features, the reference latent and the clip's motion latents (clip 0 drops them)."""
    frames = 4 * row["latents_shape"][2]  # audio steps per clip: 4 per latent frame ([clips, 16, F, h, w])
    audio = decode_tensor(row, "audio_features")[None, :, :, clip * frames : (clip + 1) * frames].float()
    return dict(
        encoder_hidden_states=decode_tensor(row, "text_embeds")[None].float(),
        audio_features=audio,
        ref_latents=decode_tensor(row, "ref_latents")[None].float(),
        motion_latents=decode_tensor(row, "motion_latents")[clip : clip + 1].float(),
        drop_motion_frames=clip == 0,
    )


def unconditional(inputs: dict, row: dict | None) -> dict:
    """DiT kwargs as the pipeline's guidance runs them unconditionally: the negative prompt's text embeddings (a
    reference row's; zeros without one) and silent audio features, the rest as `inputs`."""
    text = inputs["encoder_hidden_states"]
    negative = torch.zeros_like(text) if row is None else decode_tensor(row, "negative_text_embeds")[None]
    return {**inputs, "encoder_hidden_states": negative.to(text),
            "audio_features": torch.zeros_like(inputs["audio_features"])}


def noised_dit_inputs(row: dict, clip: int, sigma: float, generator: torch.Generator) -> tuple[dict, torch.Tensor]:
    """DiT forward kwargs for clip `clip` of a reference row at noise level `sigma` in (0, 1], and the
    flow-matching target velocity (noise - clean latents)."""
    clean = decode_tensor(row, "latents")[clip : clip + 1].float()
    noise = torch.randn(clean.shape, generator=generator)
    inputs = dict(hidden_states=(1 - sigma) * clean + sigma * noise,
                  timestep=torch.tensor([sigma * NUM_TRAIN_TIMESTEPS]), **clip_conditioning(row, clip))
    return inputs, noise - clean
