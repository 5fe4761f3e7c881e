"""A single-step lip-sync student in the Wan VAE latent space (MuseTalk-like).

Per video frame: a log-mel window around the frame, the reference image's latent and a masked latent whose
lower half (the mouth) is zeroed -> the frame's image latent (the teacher frame encoded as one image by the
Wan VAE). `masked_input` says where the masked latent comes from:

- "target": the frame's own latent, lower half zeroed (MuseTalk / Wav2Lip: a driving video gives the head
  pose and upper face, the audio gives the mouth). At inference the driving frames are the clip's frames.
- "reference": the reference latent, lower half zeroed (image-to-video: nothing but the image and audio).

`audio_chunk` frames share one log-mel window, centred on their chunk (1: each frame its own; 4: one per Wan VAE
latent frame, for a teacher that draws one mouth per latent frame, as the demo teacher does).

A conditional U-Net (FiLM from an audio encoder) predicts a residual over the masked latent. Static shapes,
plain convolutions: ONNX-exportable with torch.onnx.export(dynamo=True).
"""

from __future__ import annotations

from typing import Literal

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from compress.utils.arrays import decode_array

from .audio import MEL_BINS, SILENCE, mel_windows
from .layers import ResBlock, Upsample, mask_lower_half, norm
from .vae_io import decode_latents, encode_frames, pixels_to_frames, reference_latent


class AudioEncoder(nn.Module):
    """Log-mel window [B, bins, window] -> conditioning vector [B, dim] (strided 1-D convs + MLP)."""

    def __init__(self, bins: int, window: int, channels: int, dim: int):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv1d(bins, channels, 3, padding=1), nn.SiLU(),
            nn.Conv1d(channels, channels, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv1d(channels, channels, 3, stride=2, padding=1), nn.SiLU())
        steps = (window + 3) // 4
        self.mlp = nn.Sequential(nn.Linear(channels * steps, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = (mel - SILENCE / 2) / (-SILENCE / 2)  # log-mel in [floor, ~0] -> about [-1, 1]
        return self.mlp(self.convs(x).flatten(1))


class LipSyncStudent(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(self, latent_channels: int = 16, channels: int = 64, channel_mult: tuple[int, ...] = (1, 2, 4),
                 blocks_per_level: int = 1, mid_blocks: int = 2, audio_channels: int = 256, audio_dim: int = 256,
                 audio_window: int = 16, masked_input: Literal["target", "reference"] = "target",
                 audio_chunk: int = 1):
        super().__init__()
        if audio_chunk < 1:
            raise ValueError(f"audio_chunk: video frames per audio window, at least 1; got {audio_chunk}")
        widths = [channels * m for m in channel_mult]
        self.audio = AudioEncoder(MEL_BINS, audio_window, audio_channels, audio_dim)
        self.conv_in = nn.Conv2d(2 * latent_channels, widths[0], 3, padding=1)
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        cin = widths[0]
        for level, width in enumerate(widths):
            self.down.append(nn.ModuleList(ResBlock(cin if i == 0 else width, width, audio_dim)
                                           for i in range(blocks_per_level)))
            cin = width
            if level + 1 < len(widths):
                self.downsample.append(nn.Conv2d(width, width, 3, stride=2, padding=1))
        self.mid = nn.ModuleList(ResBlock(widths[-1], widths[-1], audio_dim) for _ in range(mid_blocks))
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for level in reversed(range(len(widths))):
            width = widths[level]
            self.up.append(nn.ModuleList(ResBlock((cin if i == 0 else width) + (width if i == 0 else 0), width,
                                                  audio_dim) for i in range(blocks_per_level)))
            cin = width
            if level > 0:
                self.upsample.append(Upsample(width, widths[level - 1]))
                cin = widths[level - 1]
        self.norm_out, self.act = norm(widths[0]), nn.SiLU()
        self.conv_out = nn.Conv2d(widths[0], latent_channels, 3, padding=1)

    @property
    def downscale(self) -> int:
        return 2 ** (len(self.config.channel_mult) - 1)

    def forward(self, audio: torch.Tensor, ref_latent: torch.Tensor, masked_latent: torch.Tensor) -> torch.Tensor:
        """audio [B, 80, window] log-mel, ref_latent and masked_latent [B, C, h, w] -> latent [B, C, h, w]."""
        h, w = masked_latent.shape[-2:]
        if h % self.downscale or w % self.downscale:
            raise ValueError(f"latent sides must be multiples of {self.downscale}, got {h}x{w}")
        cond = self.audio(audio)
        x = self.conv_in(torch.cat([ref_latent, masked_latent], dim=1))
        skips = []
        for level, blocks in enumerate(self.down):
            for block in blocks:
                x = block(x, cond)
            skips.append(x)
            if level < len(self.downsample):
                x = self.downsample[level](x)
        for block in self.mid:
            x = block(x, cond)
        for level, blocks in enumerate(self.up):
            x = blocks[0](torch.cat([x, skips.pop()], dim=1), cond)
            for block in blocks[1:]:
                x = block(x, cond)
            if level < len(self.upsample):
                x = self.upsample[level](x)
        return masked_latent + self.conv_out(self.act(self.norm_out(x)))

    def example_inputs(self, batch_size: int = 1, height: int = 64, width: int = 64, **_) -> dict[str, torch.Tensor]:
        """Static-shape inputs for export: latents of a height x width frame (VAE stride 8)."""
        c, window = self.config.latent_channels, self.config.audio_window
        latent = (batch_size, c, height // 8, width // 8)
        gen = torch.Generator().manual_seed(0)
        return {"audio": SILENCE / 2 + torch.randn(batch_size, MEL_BINS, window, generator=gen),
                "ref_latent": torch.randn(*latent, generator=gen), "masked_latent": torch.randn(*latent, generator=gen)}

    def masked(self, frame_latents: torch.Tensor, ref_latent: torch.Tensor) -> torch.Tensor:
        """The masked input for frames with image latents [T, C, h, w] (see `masked_input`)."""
        source = frame_latents if self.config.masked_input == "target" else ref_latent.expand_as(frame_latents)
        return mask_lower_half(source)

    def audio_windows(self, audio, fps: float, num_frames: int) -> torch.Tensor:
        """The student's audio input per video frame [num_frames, 80, audio_window] (`mel_windows`)."""
        return mel_windows(audio, fps, num_frames, self.config.audio_window, chunk=self.config.audio_chunk)

    @torch.no_grad()
    def eval_generate(self, row: dict, components, batch_size: int = 16, decoder=None) -> dict:
        """This student's frames for a reference dataset row, decoded by the components' VAE, or by `decoder` (a
        `TinyVAEDecoder` of image latents, behind the reference latent: the phone's chain).

        Returns frames uint8 [T, H, W, 3] and latents [T, C, h, w] (per-frame image latents)."""
        teacher = decode_array(row, "frames")
        device = self.device
        ref = reference_latent(row).to(device)
        if self.config.masked_input == "target":  # the driving frames: the clip's own (teacher) frames
            masked = self.masked(encode_frames(components.vae, teacher).to(device), ref)
        else:
            masked = mask_lower_half(ref).expand(len(teacher), -1, -1, -1)
        mel = self.audio_windows(decode_array(row, "audio").copy(), row["fps"], len(teacher))
        latents = torch.cat([self(m.to(device), ref.expand(len(m), -1, -1, -1), x) for m, x in
                             zip(mel.split(batch_size), masked.split(batch_size))])
        if decoder is not None:
            pixels = decoder.decode(latents, ref.expand_as(latents), batch_size=batch_size)
        else:
            pixels = torch.cat([decode_latents(components.vae, z) for z in latents.split(batch_size)])
        return {"frames": pixels_to_frames(pixels), "latents": latents.cpu()}

