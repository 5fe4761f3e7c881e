"""Teacher generation as a reference stage's settings say: the components it builds around a DiT and the pipeline
call it makes. The stage generates its inputs with it; `ReferenceArtifact.regenerate` generates them again with
another DiT (the same components, seeds and sampling), so both sides of a comparison run the same code.
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKLWan

from compress.models.loading import check_model_finite, require_weight_files
from compress.pipelines.components import S2VComponents
from compress.pipelines.cpu_conv import use_onednn_conv3d
from compress.pipelines.s2v import S2VOutput, S2VPipeline
from compress.reference.config import ReferenceConfig
from compress.reference.inputs import InputClip


def torch_dtype(config: ReferenceConfig) -> torch.dtype | None:
    """The DiT's and text encoder's dtype; None keeps the stored one."""
    return None if config.dtype == "auto" else getattr(torch, config.dtype)


def build_components(config: ReferenceConfig, dit, ctx) -> S2VComponents:
    """The S2V components around `dit` on `ctx.device`: the folders the settings name (checked against the
    recipe's roots), or a preset teacher's own (tiny ones built from `ctx.seed`)."""
    if config.preset_components:
        components = S2VComponents.tiny(dit=dit, seed=ctx.seed)
    else:
        components = S2VComponents.from_dirs(dit, *(ctx.resolve_path(v) for v in config.component_dirs().values()),
                                             torch_dtype=torch_dtype(config))
    return components.to(ctx.device, offload_text_encoder=config.offload_text_encoder)


def load_vae(config: ReferenceConfig, dit, ctx) -> AutoencoderKLWan:
    """The VAE alone (float32, on the CPU): the settings' folder, or the preset teacher's own for `dit`."""
    if config.preset_components:
        return S2VComponents.tiny(dit=dit, seed=ctx.seed).vae
    folder = ctx.resolve_path(config.vae)
    require_weight_files(folder)  # pickled weights are named and refused, never loaded
    vae = AutoencoderKLWan.from_pretrained(folder, torch_dtype=torch.float32, use_safetensors=True)
    return use_onednn_conv3d(check_model_finite(vae, folder).eval())


class TeacherPipeline:
    """The S2V pipeline around a DiT with the reference's components (and a distilled `decoder` of its latents, if
    given), sampling with the reference's settings."""

    def __init__(self, config: ReferenceConfig, dit, ctx, decoder=None):
        self.config = config
        self.pipe = S2VPipeline(build_components(config, dit, ctx), decoder)

    @property
    def dit(self):
        return self.pipe.components.dit

    def __call__(self, clip: InputClip, seed: int, audio) -> S2VOutput:
        """One input's generation: its image, prompts and `audio` (16 kHz), clip k's noise seeded `seed + k`."""
        config = self.config
        return self.pipe(clip.image, audio, clip.prompt, clip.negative_prompt,
                         num_inference_steps=config.num_inference_steps, guidance_scale=config.guidance_scale,
                         shift=config.shift, max_area=config.max_area, size_multiple=config.size_multiple,
                         frames_per_clip=config.frames, seed=seed, capture_blocks=tuple(config.block_outputs),
                         capture_steps=config.block_output_steps, sampler=config.sampler)
