"""DiT inputs drawn from a reference dataset: the teacher's own latents, noised to a flow-matching level.

Used for calibration (quantize, prune) and training (distill): the model sees exactly the conditioning
it sees while generating, not random tensors.
"""

from __future__ import annotations

import torch

from compress.pipelines.dataset import decode_array, load_reference_dataset

NUM_TRAIN_TIMESTEPS = 1000


def _tensor(row: dict, name: str) -> torch.Tensor:
    return torch.from_numpy(decode_array(row, name).copy())


def noised_dit_inputs(row: dict, clip: int, sigma: float, generator: torch.Generator) -> tuple[dict, torch.Tensor]:
    """DiT forward kwargs for clip `clip` of a reference row at noise level `sigma` in (0, 1], and the
    flow-matching target velocity (noise - clean latents)."""
    clean = _tensor(row, "latents")[clip : clip + 1].float()
    noise = torch.randn(clean.shape, generator=generator)
    frames = 4 * clean.shape[2]  # audio steps per clip: 4 per latent frame
    audio = _tensor(row, "audio_features")[None, :, :, clip * frames : (clip + 1) * frames].float()
    inputs = dict(
        hidden_states=(1 - sigma) * clean + sigma * noise,
        timestep=torch.tensor([sigma * NUM_TRAIN_TIMESTEPS]),
        encoder_hidden_states=_tensor(row, "text_embeds")[None].float(),
        audio_features=audio,
        ref_latents=_tensor(row, "ref_latents")[None].float(),
        motion_latents=_tensor(row, "motion_latents")[clip : clip + 1].float(),
        drop_motion_frames=clip == 0,
    )
    return inputs, noise - clean


def random_calibration_inputs(model, count: int, seed: int = 0, device=None) -> list[dict]:
    """`count` random forward inputs (seeds seed, seed + 1, ...) at evenly spaced timesteps in (0, 1000)."""
    inputs = []
    for i in range(count):
        x = model.example_inputs(seed=seed + i, device=device)
        x["timestep"] = torch.full_like(x["timestep"], NUM_TRAIN_TIMESTEPS * (i + 0.5) / count)
        inputs.append(x)
    return inputs


def calibration_inputs(reference, count: int, seed: int = 0, device=None) -> list[dict]:
    """`count` DiT inputs cycling over the reference rows and clips, at noise levels spread over (0, 1)."""
    rows = list(load_reference_dataset(reference))
    clips = [(row, clip) for row in rows for clip in range(row["num_clips"])]
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for i in range(count):
        row, clip = clips[i % len(clips)]
        sigma = (i + 0.5) / count
        inputs, _ = noised_dit_inputs(row, clip, sigma, generator)
        batches.append({k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()})
    return batches
