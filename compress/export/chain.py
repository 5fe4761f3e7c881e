"""The per-frame chain a phone runs for a lip-sync student, and its cost per output frame (analytic).

Per output frame the phone runs, in order:
- audio features: a log-mel window (DSP, no network); the student's audio encoder is inside its own graph;
- in `target` masked-input mode, the driving-frame encoder: no small encoder exists among the students, so
  this is the teacher's Wan2.1 VAE encoder on one frame, counted as diffusers runs it (its causal 3x3x3
  convolutions also multiply the zero padding in time, so a single-frame 2-D rewrite would cost less);
- the lip-sync student;
- the tiny VAE decoder of image latents (`tiny-frame-decoder`), once per frame: the student emits one image
  latent per frame, which the decoder turns into that one frame (behind the reference latent).

Multiply-accumulates come from the export's counter (torch FlopCounterMode) on the meta device: shapes only,
no weights and no compute, so the release-size networks at 480x832 cost a fraction of a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import AutoencoderKLWan
from torch import nn

from compress.export import report
from compress.export.onnx_export import count_macs
from compress.export.targets import TargetProfile
from compress.models.students import DECODER_PRESETS, LipSyncStudent, TinyVAEDecoder

DECODER_PRESET = "tiny-frame-decoder"
SOURCE = "analytic (torch FlopCounterMode on the meta device)"
AUDIO_FEATURES = "log-mel window (DSP, no network); the student's audio encoder is counted in its graph"


@dataclass(frozen=True)
class Link:
    """One network of the chain on the meta device, with its inputs for one output frame."""

    name: str
    runs: str
    model: nn.Module
    inputs: dict


class FrameEncoder(nn.Module):
    """A Wan VAE's encoder on one RGB frame [B, 3, H, W] -> its latent mean [B, C, H / 8, W / 8]."""

    def __init__(self, vae: AutoencoderKLWan):
        super().__init__()
        self.vae = vae

    def forward(self, frame: torch.Tensor) -> torch.Tensor:
        return self.vae.encode(frame[:, :, None]).latent_dist.mode()[:, :, 0]


def chain_links(student_config: dict, height: int, width: int) -> list[Link]:
    """The networks a phone runs per output frame of a `height` x `width` video for a student with this config."""
    with torch.device("meta"):
        student = LipSyncStudent.from_config(student_config)
        decoder = TinyVAEDecoder(**DECODER_PRESETS[DECODER_PRESET])
        encoder = FrameEncoder(AutoencoderKLWan()) if student.config.masked_input == "target" else None
    links = [] if encoder is None else [
        Link("driving-frame encoder", "the Wan2.1 VAE encoder, diffusers AutoencoderKLWan defaults, on one frame",
             encoder, {"frame": torch.empty(1, 3, height, width, device="meta")})]
    return links + [
        Link("lip-sync student", "once per frame", student, _meta(student.example_inputs(1, height, width))),
        Link("tiny VAE decoder", f"{DECODER_PRESET}, once per frame (one image latent -> one frame)", decoder,
             _meta(decoder.example_inputs(1, height, width)))]


def chain_report(model: nn.Module, target: TargetProfile) -> dict | None:
    """GMACs per output frame of each network the phone runs for a lip-sync student at the target's shapes, their
    sum, and the frame rate it implies on the target's budget; None for other models."""
    if not isinstance(model, LipSyncStudent):
        return None
    links = chain_links(model.config, target.shapes.height, target.shapes.width)
    macs = {link.name: count_macs(link.model, link.inputs) for link in links}
    return {"masked_input": model.config.masked_input, "height": target.shapes.height, "width": target.shapes.width,
            "audio_features": AUDIO_FEATURES, "source": SOURCE,
            "networks": {link.name: {"gmacs_per_frame": macs[link.name] / 1e9, "runs": link.runs} for link in links},
            "gmacs_per_frame": sum(macs.values()) / 1e9,
            "budget": report.budget_report(target, sum(macs.values()), frames_per_call=1)}


def _meta(inputs: dict) -> dict:
    return {name: value.to("meta") for name, value in inputs.items()}
