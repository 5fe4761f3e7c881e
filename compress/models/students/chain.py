"""The phone's chain as one model: a lip-sync student whose image latents a tiny VAE decoder (`latents: image`)
turns into frames, behind the reference latent. Evaluated like the student (its `eval_generate`, decoding with
the decoder instead of the teacher's VAE); its forward is one frame of the chain."""

from __future__ import annotations

import torch
from torch import nn

from compress.errors import UserInputError
from compress.models.s2v import WanS2VTransformer3DModel

from .decoder import TinyVAEDecoder, check_decodes
from .lipsync import LipSyncStudent

EMITTED_LATENTS = {LipSyncStudent: "image", WanS2VTransformer3DModel: "video"}  # what a tiny decoder can decode
_NAMES = {LipSyncStudent: "lip-sync student", WanS2VTransformer3DModel: "S2V DiT"}


def decoder_latents(decoder: nn.Module, who: str) -> str:
    """The latents ("image" or "video") a tiny VAE decoder decodes; any other model is refused."""
    if not isinstance(decoder, TinyVAEDecoder):
        raise UserInputError(f"{who}: the decoder must be a TinyVAEDecoder; found a {type(decoder).__name__}")
    return decoder.config.latents


def check_decoder(decoder: nn.Module, who: str, emitter: type = LipSyncStudent) -> None:
    """`who` (e.g. "export with a decoder") needs a tiny VAE decoder of the latents `emitter` emits (a lip-sync
    student's image latents, an S2V DiT's video latents)."""
    if emitter not in EMITTED_LATENTS:
        found = f"a {emitter.__name__}'s" if emitter is not None else "an artifact's without model weights"
        raise UserInputError(f"{who}: a tiny decoder decodes a LipSyncStudent's or an S2V DiT's latents, not {found}")
    decoder_latents(decoder, who)
    check_decodes(decoder, EMITTED_LATENTS[emitter], f"{who}: the {_NAMES[emitter]} ({emitter.__name__})")


def check_chain(student: nn.Module, decoder: nn.Module, who: str) -> None:
    """`who` needs a lip-sync student and a tiny VAE decoder of its image latents."""
    if not isinstance(student, LipSyncStudent):
        raise UserInputError(f"{who}: the model must be a LipSyncStudent (the phone's chain); found a "
                             f"{type(student).__name__}")
    check_decoder(decoder, who)


class StudentChain(nn.Module):
    def __init__(self, student: LipSyncStudent, decoder: TinyVAEDecoder, who: str = "the phone's chain"):
        super().__init__()
        check_chain(student, decoder, who)
        self.student, self.decoder = student, decoder

    def forward(self, audio: torch.Tensor, ref_latent: torch.Tensor, masked_latent: torch.Tensor) -> torch.Tensor:
        """The student's inputs -> frames [B, 1, 3, H, W] in about [-1, 1]."""
        return self.decoder(self.student(audio, ref_latent, masked_latent), ref_latent)

    def example_inputs(self, *args, device=None, **kwargs) -> dict[str, torch.Tensor]:
        return {k: v.to(device) for k, v in self.student.example_inputs(*args, **kwargs).items()}

    @torch.no_grad()
    def eval_generate(self, row: dict, components, batch_size: int = 16) -> dict:
        return self.student.eval_generate(row, components, batch_size, decoder=self.decoder)
