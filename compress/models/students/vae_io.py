"""The teacher's Wan VAE on normalised latents: videos (causal, 4 frames per latent after the first) and per-frame
image latents (one RGB frame <-> one latent frame)."""

from __future__ import annotations

import numpy as np
import torch

from compress.utils.arrays import decode_tensor


def latent_stats(vae) -> tuple[torch.Tensor, torch.Tensor]:
    """The VAE's per-channel latent mean and std, shaped [1, C, 1, 1, 1]."""
    mean = torch.tensor(vae.config.latents_mean, device=vae.device).view(1, -1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std, device=vae.device).view(1, -1, 1, 1, 1)
    return mean, std


@torch.no_grad()
def encode_video(vae, pixels: torch.Tensor) -> torch.Tensor:
    """[1, 3, T, H, W] in [-1, 1] -> normalised latents [1, C, 1 + (T - 1) // 4, H / 8, W / 8] (posterior mean),
    float32 on the VAE's device."""
    mean, std = latent_stats(vae)
    mu = vae.encode(pixels.to(vae.device, vae.dtype)).latent_dist.mode().float()
    return (mu - mean) * (1.0 / std)  # times 1 / std (and below: over it), as the teacher's pipeline always has


@torch.no_grad()
def decode_video(vae, latents: torch.Tensor) -> torch.Tensor:
    """Normalised latents [1, C, f, h, w] -> pixels [1, 3, 1 + 4 (f - 1), 8h, 8w] in [-1, 1], float32 on the CPU."""
    mean, std = latent_stats(vae)
    z = latents.to(vae.device, torch.float32) / (1.0 / std) + mean
    return vae.decode(z.to(vae.dtype)).sample.float().clamp(-1, 1).cpu()


def frames_to_pixels(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 [T, H, W, 3] -> float [T, 3, H, W] in [-1, 1]."""
    frames = torch.as_tensor(np.array(frames, dtype=np.uint8))  # a writable copy
    return frames.permute(0, 3, 1, 2).float() / 127.5 - 1.0


def pixels_to_frames(pixels: torch.Tensor) -> np.ndarray:
    """float [T, 3, H, W] in [-1, 1] -> uint8 [T, H, W, 3]."""
    return ((pixels.detach().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def encode_frames(vae, frames: np.ndarray | torch.Tensor, chunk: int = 16) -> torch.Tensor:
    """uint8 frames [T, H, W, 3] -> normalised image latents [T, C, H / 8, W / 8] (posterior mean), float32 CPU."""
    mean, std = latent_stats(vae)
    pixels = frames_to_pixels(frames)
    out = []
    for part in pixels.split(chunk):
        mu = vae.encode(part[:, :, None].to(vae.device, vae.dtype)).latent_dist.mode().float()
        out.append(((mu - mean) / std)[:, :, 0].cpu())
    return torch.cat(out)


def decode_latents(vae, latents: torch.Tensor) -> torch.Tensor:
    """Normalised image latents [B, C, h, w] -> pixels [B, 3, 8h, 8w] (unclamped; differentiable)."""
    mean, std = latent_stats(vae)
    z = latents[:, :, None].to(vae.device, torch.float32) * std + mean
    return vae.decode(z.to(vae.dtype)).sample[:, :, 0].float()


def reference_pixels(vae, ref_latent: torch.Tensor) -> torch.Tensor:
    """A normalised reference latent [1, C, h, w] (or [1, C, 1, h, w]) -> the VAE's decoding of it, [1, 3, 8h, 8w] in
    [-1, 1], float32 on the CPU: the reference image as a decoder of video latents sees it."""
    return decode_video(vae, ref_latent if ref_latent.ndim == 5 else ref_latent[:, :, None])[:, :, 0]


def reference_latent(row: dict) -> torch.Tensor:
    """A reference dataset row's reference-image latent, [1, C, h, w] (normalised, as the teacher conditions on it)."""
    return decode_tensor(row, "ref_latents")[:, 0][None]
