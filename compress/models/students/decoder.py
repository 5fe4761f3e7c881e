"""A tiny Wan VAE decoder student (in the spirit of TAEHV): latents -> frames, a few million parameters.

The Wan VAE is causal with temporal stride 4: each latent frame after the first becomes 4 pixel frames, decoded
with the latents before it as context. The student sees the latent frame and the one before it (for a clip's
first frame: the reference latent for clip 0, the last motion latent for later clips, as the teacher decodes)
and outputs its 4 frames. Most parameters sit at latent resolution (`channels[0]` wide, `latent_blocks`
residual blocks), where they are cheap; a 1x1 convolution then splits them into 4 frames of `channels[1]`
channels (channels -> frames), and narrow x2 upsampling stages (one per width in `channels[1:]`; three by default)
reach pixel resolution. Two options make it cheaper on a CPU, where at these widths normalisation and activations
cost what the convolutions do: `output_shuffle: true` (the last x2 is a pixel shuffle of `conv_out`'s output, so no
layer runs at pixel resolution: `channels` then lists one upsampling stage fewer for the same output size;
recipes/dmd-demo.yaml's decoder) and `block: plain` (TAESD-like ReLU-conv blocks without GroupNorm: faster again,
but on the demo teacher its mouth lost tier-A r0, 0.889 -> 0.794 for dmd+vae-decoder on 8 held-out clips with the
mouth weighted 5x; the reference path keeps its SiLU either way).

`reference: true` (video latents) decodes against the reference image's pixels (the VAE's decoding of the reference
latent): a few strided convolutions give its features at every resolution of the upsampling path, each added to the
frames' features there. The reference's lower half is masked (zeroed), as Wav2Lip and MuseTalk mask theirs: with the
whole reference the decoder copied its mouth and under-articulated. In the upper half each output pixel blends the
reference's pixel with a generated one (`conv_out` also predicts the blend's weight, starting at 98% reference); the
lower half is generated. The upper face and its colours come from the reference, so faces the decoder never trained
on carry over; the mouth comes from the latents.

`latents: image` (`frames_per_latent: 1`, preset `tiny-frame-decoder`) decodes per-frame image latents instead
(each frame encoded alone as one image, what `LipSyncStudent` predicts): one latent -> its one frame, behind the
reference latent (`previous`), as the phone's chain runs it.
"""

from __future__ import annotations

from typing import Literal

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from compress.errors import UserInputError
from compress.utils.arrays import decode_array, decode_tensor

from .layers import PlainBlock, ResBlock, Upsample, mask_lower_half, norm
from .vae_io import encode_frames, pixels_to_frames, reference_latent, reference_pixels

INITIAL_REFERENCE_LOGIT = 4.0  # a reference decoder starts at sigmoid(4) = 98% reference in the upper half
BLOCKS = {"resnet": (lambda width: ResBlock(width, width), norm, nn.SiLU),  # block(width), norm(width), activation
          "plain": (PlainBlock, lambda _: nn.Identity(), nn.ReLU)}
LATENT_KINDS = {"video": "the teacher's video latents (Wan VAE, temporal stride 4)",
                "image": "per-frame image latents (each frame encoded alone by the Wan VAE)"}


class TinyVAEDecoder(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(self, latent_channels: int = 16, channels: tuple[int, ...] = (256, 48, 24, 12),
                 latent_blocks: int = 2, blocks_per_stage: int = 1, frames_per_latent: int = 4,
                 latents: Literal["video", "image"] = "video", reference: bool = False,
                 block: Literal["resnet", "plain"] = "resnet", output_shuffle: bool = False):
        super().__init__()
        if latents not in LATENT_KINDS:
            raise ValueError(f"latents: one of {', '.join(LATENT_KINDS)}; got {latents!r}")
        if block not in BLOCKS:
            raise ValueError(f"block: one of {', '.join(BLOCKS)}; got {block!r}")
        if latents == "video" and frames_per_latent != 4:
            raise ValueError(f"latents: video decodes 4 frames per latent (the Wan VAE's temporal stride); got "
                             f"frames_per_latent {frames_per_latent}")
        if latents == "image" and frames_per_latent != 1:
            raise ValueError(f"latents: image decodes one frame per latent (frames_per_latent 1); got "
                             f"frames_per_latent {frames_per_latent}")
        if reference and latents != "video":
            raise ValueError("reference: decoding against the reference image applies to video latents (latents: "
                             "video)")
        make_block, norm_out, act = BLOCKS[block]
        c0, shuffled = channels[0], 4 if output_shuffle else 1  # output pixels per conv_out position
        self.conv_in = nn.Conv2d(2 * latent_channels, c0, 3, padding=1)
        self.trunk = nn.ModuleList(make_block(c0) for _ in range(latent_blocks))
        self.to_frames = nn.Conv2d(c0, frames_per_latent * channels[1], 1)
        self.stages = nn.ModuleList()
        for cin, cout in zip((channels[1], *channels[1:-1]), channels[1:]):
            blocks = (make_block(cout) for _ in range(blocks_per_stage))
            self.stages.append(nn.ModuleList([Upsample(cin, cout), *blocks]))
        self.norm_out, self.act = norm_out(channels[-1]), act()
        self.shuffle = nn.PixelShuffle(2) if output_shuffle else nn.Identity()
        # RGB (+ the reference's weight), for each of the `shuffled` output pixels
        self.conv_out = nn.Conv2d(channels[-1], (4 if reference else 3) * shuffled, 3, padding=1)
        if reference:  # pixels -> features at each resolution of the upsampling path, finest first
            widths = (*channels[:0:-1], channels[1])  # the finest stage's resolution ... latent resolution
            self.reference_in = nn.Conv2d(3 * shuffled, widths[0], 3, padding=1)  # on the unshuffled reference
            self.reference_down = nn.ModuleList(nn.Sequential(nn.SiLU(), nn.Conv2d(cin, cout, 3, stride=2, padding=1))
                                                for cin, cout in zip(widths, widths[1:]))
            nn.init.zeros_(self.conv_out.weight)
            nn.init.constant_(self.conv_out.bias, 0.0)
            nn.init.constant_(self.conv_out.bias[3 * shuffled:], INITIAL_REFERENCE_LOGIT)

    @property
    def upscale(self) -> int:
        return 2 ** (len(self.config.channels) - 1 + int(self.config.output_shuffle))

    def forward(self, latents: torch.Tensor, previous: torch.Tensor,
                reference: torch.Tensor | None = None) -> torch.Tensor:
        """latents, previous [B, C, h, w] (and with `reference: true` the reference image's pixels [B or 1, 3, h * s,
        w * s]) -> frames [B, frames_per_latent, 3, h * s, w * s] in about [-1, 1], s = `upscale` (8 for the Wan
        VAE)."""
        if (reference is None) == self.config.reference:
            raise ValueError(f"TinyVAEDecoder(reference: {self.config.reference}) "
                             f"{'needs' if self.config.reference else 'takes no'} reference pixels")
        b, _, h, w = latents.shape
        t, c1 = self.config.frames_per_latent, self.config.channels[1]
        guide = None
        if reference is not None:
            reference = mask_lower_half(reference)  # the mouth comes from the latents, not the reference's mouth
            guide = self._reference_features(reference)
        x = self.conv_in(torch.cat([latents, previous], dim=1))
        for block in self.trunk:
            x = block(x)
        x = self._guided(self.to_frames(x).reshape(b * t, c1, h, w), guide, t)
        for upsample, *blocks in self.stages:
            x = upsample(x)
            for block in blocks:
                x = block(x)
            x = self._guided(x, guide, t)
        x = self.shuffle(self.conv_out(self.act(self.norm_out(x))))
        x = x.reshape(b, t, -1, h * self.upscale, w * self.upscale)
        if reference is None:
            return x
        kept = mask_lower_half(torch.sigmoid(x[:, :, 3:]))  # the reference's weight per pixel: none where masked
        return kept * reference[:, None] + (1 - kept) * x[:, :, :3]

    def _reference_features(self, reference: torch.Tensor) -> list[torch.Tensor]:
        """The reference's features from latent resolution to the finest stage's (pixel resolution, or half of it
        with `output_shuffle`), in the upsampling path's order."""
        if self.config.output_shuffle:  # to the finest stage's resolution, pixels as channels
            reference = nn.functional.pixel_unshuffle(reference, 2)
        features = [self.reference_in(reference)]
        for down in self.reference_down:
            features.append(down(features[-1]))
        return features[::-1]

    @staticmethod
    def _guided(x: torch.Tensor, guide: list[torch.Tensor] | None, frames: int) -> torch.Tensor:
        """x [B * frames, c, H, W] plus the next (coarsest remaining) reference feature, shared by each example's
        frames; unchanged without a reference."""
        if guide is None:
            return x
        return (x.unflatten(0, (-1, frames)) + guide.pop(0)[:, None]).flatten(0, 1)

    def example_inputs(self, batch_size: int = 1, height: int = 64, width: int = 64, **_) -> dict[str, torch.Tensor]:
        shape = (batch_size, self.config.latent_channels, height // self.upscale, width // self.upscale)
        gen = torch.Generator().manual_seed(0)
        inputs = {"latents": torch.randn(*shape, generator=gen), "previous": torch.randn(*shape, generator=gen)}
        if self.config.reference:
            inputs["reference"] = torch.rand(batch_size, 3, height, width, generator=gen) * 2 - 1
        return inputs

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, previous: torch.Tensor, reference: torch.Tensor | None = None,
               batch_size: int = 16) -> torch.Tensor:
        """latents, previous [N, C, h, w] (and reference pixels [1, 3, H, W], shared) -> pixels [N *
        frames_per_latent, 3, H, W] in frame order. Runs channels-last: oneDNN's faster layout for these narrow
        convolutions on a CPU (about 25% less time on the demo's, the same outputs)."""
        def prepared(x: torch.Tensor) -> torch.Tensor:
            return x.to(self.device).contiguous(memory_format=torch.channels_last)

        reference = None if reference is None else prepared(reference)
        self.to(memory_format=torch.channels_last)
        try:
            return torch.cat([self(prepared(z), prepared(p), reference).flatten(0, 1).cpu()
                              for z, p in zip(latents.split(batch_size), previous.split(batch_size))])
        finally:
            self.to(memory_format=torch.contiguous_format)  # as saved (safetensors wants contiguous weights)

    @torch.no_grad()
    def eval_generate(self, row: dict, components=None, batch_size: int = 16) -> dict:
        """Frames uint8 [T, H, W, 3] decoded from the teacher's latents of the row: its video latents, or (`latents:
        image`) its frames encoded one by one by the components' VAE; with `reference: true`, against the VAE's
        decoding of the row's reference latent."""
        if self.config.latents == "image":
            latents = encode_frames(components.vae, decode_array(row, "frames"))
            previous = reference_latent(row).expand_as(latents)
        else:
            latents, previous = decoder_inputs(row)
        reference = reference_pixels(components.vae, reference_latent(row)) if self.config.reference else None
        pixels = self.decode(latents, previous, reference, batch_size=batch_size)
        return {"frames": pixels_to_frames(pixels), "latents": None}


def check_decodes(decoder: TinyVAEDecoder, latents: str, producer: str) -> None:
    """Refuse a decoder that was not trained on `latents` ("video" or "image"), which `producer` emits."""
    if decoder.config.latents != latents:
        raise UserInputError(
            f"{producer} emits {LATENT_KINDS[latents]}, but the decoder (TinyVAEDecoder, latents: "
            f"{decoder.config.latents}) decodes {LATENT_KINDS[decoder.config.latents]}: use a decoder trained on "
            f"{latents} latents (preset {'tiny-frame-decoder' if latents == 'image' else 'tiny-vae-decoder'})")


def decoder_inputs(row: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """A reference row's latent frames and the latent before each, both [clips * F, C, h, w], in frame order."""
    latents = decode_tensor(row, "latents")  # [clips, C, F, h, w]
    ref = decode_tensor(row, "ref_latents")  # [C, 1, h, w]
    motion = decode_tensor(row, "motion_latents")  # [clips, C, M, h, w]
    first = torch.cat([ref[None, :, -1:], motion[1:, :, -1:]])  # what each clip is decoded behind
    previous = torch.cat([first, latents[:, :, :-1]], dim=2)
    return latents.transpose(1, 2).flatten(0, 1), previous.transpose(1, 2).flatten(0, 1)
