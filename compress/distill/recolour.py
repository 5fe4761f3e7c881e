"""Recoloured copies of a reference clip, for training decoders of video latents on more than the training faces'
colours: the teacher's decoded clip recoloured (per-channel gain, saturation, brightness) and mirrored at random,
encoded again by the teacher's VAE, with the VAE's decoding of those latents as the target; its reference image is
recoloured alike (for decoders against the reference image). On the demo teacher a
decoder trained without them reached 31-33 dB on its training faces and 20-24 dB on the held-out ones, which are
other crops and colourings of the same renders.

    copy = recoloured_clip(vae, row, clip=0, generator=torch.Generator().manual_seed(1))  # a RecolouredClip
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from compress.models.students.vae_io import decode_video, encode_video, pixels_to_frames, reference_pixels
from compress.utils.arrays import decode_tensor

GAIN = (0.85, 1.15)  # per channel, on [0, 2] intensities
SATURATION = (0.7, 1.3)  # the blend of each pixel with its grey
BRIGHTNESS = 0.1  # added, on [-1, 1] pixels


def recolour(pixels: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, bool]:
    """[1, 3, T, H, W] in [-1, 1] -> every frame recoloured alike, mirrored with probability 1/2; and whether it
    was mirrored."""
    def uniform(low, high, count=1):
        return low + (high - low) * torch.rand(count, generator=generator)

    gain, saturation = uniform(*GAIN, 3).view(1, 3, 1, 1, 1), uniform(*SATURATION)
    brightness, mirrored = uniform(-BRIGHTNESS, BRIGHTNESS), bool(torch.rand((), generator=generator) < 0.5)
    grey = pixels.mean(dim=1, keepdim=True)
    out = (grey + saturation * (pixels - grey) + 1) * gain - 1 + brightness
    return (out.flip(-1) if mirrored else out).clamp(-1, 1), mirrored


class RecolouredClip(NamedTuple):
    """One recoloured copy of a clip: its latent frames and the latent before each, both [F, C, h, w]; its frames
    uint8 [4F, H, W, 3] as the VAE decodes those latents; its reference image [1, 3, H, W] (recoloured alike,
    through the VAE and back, as `reference_pixels` sees a reference); whether it was mirrored."""

    latents: torch.Tensor
    previous: torch.Tensor
    frames: torch.Tensor
    reference: torch.Tensor
    mirrored: bool


@torch.no_grad()
def recoloured_clip(vae, row: dict, clip: int, generator: torch.Generator) -> RecolouredClip:
    """One recoloured copy of clip `clip` of a reference row, decoded behind what the teacher decoded it behind (the
    reference latent, or the clip's motion latents), with its reference image recoloured the same way."""
    latents = decode_tensor(row, "latents")[clip : clip + 1].float()
    ref = decode_tensor(row, "ref_latents")[None].float()
    context = ref if clip == 0 else decode_tensor(row, "motion_latents")[clip][None].float()
    pixels = torch.cat([reference_pixels(vae, ref)[:, :, None], decode_video(vae, torch.cat([context, latents], 2))], 2)
    pixels, mirrored = recolour(pixels, generator)  # every frame alike: the reference image first
    encoded = encode_video(vae, pixels[:, :, 1:]).cpu()
    count = latents.shape[2]
    frames = pixels_to_frames(decode_video(vae, encoded)[0, :, -4 * count:].transpose(0, 1))
    return RecolouredClip(encoded[0, :, -count:].transpose(0, 1), encoded[0, :, -count - 1 : -1].transpose(0, 1),
                          torch.from_numpy(frames), reference_pixels(vae, encode_video(vae, pixels[:, :, :1])),
                          mirrored)
