"""Speech-to-video generation with the Wan2.2-S2V DiT, following upstream `wan/speech2video.py`.

Per clip of `frames_per_clip` frames (F = frames_per_clip / 4 latent frames):
- noise from a CPU generator seeded `seed + clip`; flow-matching sampling, `sampler="unipc"` with upstream's sigmas
  (linspace(1 - 1/1000, 0) shifted by `shift`) or `sampler="euler"` with LiveAvatar's few-step Euler sigmas
  (`compress.pipelines.sampling`), and classifier-free guidance (scale > 1) that drops text (negative
  prompt) and audio (zeros) together while reference, motion and pose stay;
- clip 0 drops the motion tokens and is decoded behind the reference latent; every later clip conditions on
  the VAE encoding of the last `motion_frames` (73 = 19 latents) decoded pixel frames and is decoded behind
  them, keeping the last frames_per_clip frames (the causal VAE sees the history, as upstream).
Differences from upstream: the number of clips is ceil(audio frames / frames_per_clip) (upstream adds a clip
of silence when the audio fills whole clips), and clip 0 keeps all its frames (upstream drops its first 3,
which leaves its output 3 frames ahead of the audio), so frame i always belongs to audio frame i.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import numpy as np
import torch
from PIL import Image

from compress.models.students.decoder import check_decodes
from compress.models.students.vae_io import decode_video, encode_video, reference_pixels

from .audio import audio_features, clips_for_audio, load_audio
from .components import NUM_TRAIN_TIMESTEPS, S2VComponents
from .sampling import SAMPLERS, UPSTREAM, euler_sigmas, euler_step, guided
from .video import MIN_SIZE_MULTIPLE, UPSTREAM_SIZE_MULTIPLE, load_image, prepare_image, size_for_area, to_uint8

FPS = 16
MOTION_FRAMES = 73  # pixel frames of history = 19 latent frames
# upstream's default negative prompt (used when the negative prompt is empty)
UPSTREAM_NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，丑陋的，残缺的，"
    "多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，"
    "背景人很多，倒着走"
)


@dataclass
class S2VOutput:
    frames: np.ndarray | torch.Tensor  # uint8 [T, H, W, 3] ("np") or float [3, T, H, W] in [-1, 1] ("pt")
    latents: torch.Tensor  # [clips, 16, F, h, w] denoised latents of each clip
    audio_features: torch.Tensor  # [num_hidden_states, audio_dim, clips * frames_per_clip]
    ref_latents: torch.Tensor  # [16, 1, h, w]
    motion_latents: torch.Tensor  # [clips, 16, M, h, w] conditioning of each clip (clip 0: zeros, dropped)
    text_embeds: torch.Tensor  # [L, text_dim]
    negative_text_embeds: torch.Tensor  # [L', text_dim]
    seeds: list[int]  # noise seed of each clip
    block_outputs: dict[int, torch.Tensor] = field(default_factory=dict)  # block -> [clips, steps, noisy tokens, dim]


def flow_sigmas(num_inference_steps: int) -> np.ndarray:
    """Upstream's unshifted sampling sigmas (the scheduler applies the shift)."""
    return np.linspace(1 - 1 / NUM_TRAIN_TIMESTEPS, 0, num_inference_steps + 1)[:-1]


def clip_noise(seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    """The initial noise of one clip: float32 from a CPU generator, the same on every device."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


class _BlockRecorder:
    """Forward hooks keeping the noisy-token outputs of chosen DiT blocks while `active`."""

    def __init__(self, dit, blocks, steps: set[int] | None):
        self.steps, self.active, self.step, self.num_noisy = steps, False, 0, 0
        self.outputs: dict[int, list[torch.Tensor]] = {b: [] for b in blocks}
        self.handles = [dit.blocks[b].register_forward_hook(self._hook(b)) for b in blocks]

    def _hook(self, block: int):
        def hook(module, args, output):
            if self.active and (self.steps is None or self.step in self.steps):
                # a copy (one, whatever the device and dtype): the DiT may update its residual stream in place
                self.outputs[block].append(output[0, : self.num_noisy].detach().to("cpu", torch.float32, copy=True))
        return hook

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()

    def stacked(self, num_clips: int) -> dict[int, torch.Tensor]:
        return {b: torch.stack(v).unflatten(0, (num_clips, -1)) for b, v in self.outputs.items()}


class S2VPipeline:
    """`decoder`: a distilled decoder of the video latents (a `TinyVAEDecoder`, `latents: video`) that decodes each
    clip instead of the VAE, behind the latent before it; the VAE still encodes the reference and motion history (so
    from the second clip on, the latents follow the decoder's frames, as a pipeline running it would)."""

    def __init__(self, components: S2VComponents, decoder=None):
        if decoder is not None:
            check_decodes(decoder, "video", "the S2V pipeline")
        self.components, self.decoder = components, decoder

    @property
    def device(self) -> torch.device:
        return next(self.components.dit.parameters()).device

    def encode_video(self, pixels: torch.Tensor) -> torch.Tensor:
        """[1, 3, T, H, W] in [-1, 1] -> normalised latents [1, 16, 1 + (T - 1) // 4, H / 8, W / 8] (posterior mean)."""
        return encode_video(self.components.vae, pixels).to(self.device)

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents [1, 16, f, h, w] -> pixels [1, 3, 1 + 4 (f - 1), 8h, 8w] in [-1, 1], on the CPU."""
        return decode_video(self.components.vae, latents)

    def decoder_reference(self, ref: torch.Tensor) -> torch.Tensor | None:
        """The reference pixels the decoder decodes against (`reference: true`; the VAE's decoding of the reference
        latent [1, 16, 1, h, w], as it trained), else None."""
        if self.decoder is None or not self.decoder.config.reference:
            return None
        return reference_pixels(self.components.vae, ref)

    def decode_clip(self, context: torch.Tensor, denoised: torch.Tensor,
                    reference: torch.Tensor | None = None) -> torch.Tensor:
        """A clip's latents [1, 16, F, h, w] decoded behind `context` (the reference latent or the motion latents) ->
        its pixels [1, 3, 4F, 8h, 8w] in [-1, 1], on the CPU: by the VAE over both, or by the decoder per latent
        (against `reference`, `decoder_reference`'s pixels, when it decodes against one)."""
        if self.decoder is None:
            return self.decode_latents(torch.cat([context, denoised], dim=2))[:, :, -4 * denoised.shape[2]:]
        previous = torch.cat([context[:, :, -1:], denoised[:, :, :-1]], dim=2)
        pixels = self.decoder.decode(denoised[0].transpose(0, 1), previous[0].transpose(0, 1), reference)
        return pixels.float().clamp(-1, 1).transpose(0, 1)[None]

    def _scheduler(self, shift: float, num_inference_steps: int):
        base = self.components.scheduler
        key = "flow_shift" if "flow_shift" in base.config else "shift"
        scheduler = type(base).from_config(base.config, **{key: shift})
        scheduler.set_timesteps(sigmas=flow_sigmas(num_inference_steps), device=self.device)
        return scheduler

    def _sampling(self, sampler: str, shift: float, num_inference_steps: int):
        """(timesteps, step(pred, index, latents) -> latents) of one clip's denoising.
        unipc: the components' scheduler over upstream's sigmas; euler: x <- x + (sigma_next - sigma) * v over
        LiveAvatar's sigmas, the DiT seeing t = 1000 sigma (as diffusers' flow-matching Euler)."""
        if sampler == "euler":
            sigmas = euler_sigmas(num_inference_steps, shift).to(self.device)  # latents stay float32
            return sigmas[:-1] * NUM_TRAIN_TIMESTEPS, lambda pred, i, x: euler_step(x, pred, sigmas[i], sigmas[i + 1])
        scheduler = self._scheduler(shift, num_inference_steps)
        timesteps = scheduler.timesteps
        return timesteps, lambda pred, i, x: scheduler.step(pred, timesteps[i], x, return_dict=False)[0]

    def _size(self, image: Image.Image, height, width, max_area, size_multiple) -> tuple[int, int]:
        if size_multiple <= 0 or size_multiple % MIN_SIZE_MULTIPLE:
            raise ValueError(f"size_multiple must be a positive multiple of {MIN_SIZE_MULTIPLE}, got {size_multiple}")
        if height is None and width is None:
            height, width = size_for_area(image.height, image.width, max_area or image.height * image.width,
                                          size_multiple)
        if height is None or width is None or any(side <= 0 or side % MIN_SIZE_MULTIPLE for side in (height, width)):
            raise ValueError(f"height and width must both be positive multiples of {MIN_SIZE_MULTIPLE}, "
                             f"got {height}x{width}")
        return height, width

    @torch.no_grad()
    def __call__(self, image, audio, prompt: str, negative_prompt: str = "",
                 num_inference_steps: int = UPSTREAM.num_inference_steps,
                 guidance_scale: float = UPSTREAM.guidance_scale, shift: float = 3.0, height: int | None = None,
                 width: int | None = None,
                 max_area: int | None = None, size_multiple: int = UPSTREAM_SIZE_MULTIPLE,
                 frames_per_clip: int = 80, num_clips: int | None = None, motion_frames: int = MOTION_FRAMES,
                 seed: int = 0, output_type: str = "np", capture_blocks: tuple[int, ...] = (),
                 capture_steps: tuple[int, ...] | None = None, sampler: str = "unipc") -> S2VOutput:
        """image: PIL / uint8 array / path; audio: 16 kHz mono array or a sound file. Size: height x width
        (multiples of 16), else the image's aspect fitted to `max_area` (default: the image's area) as upstream,
        sides rounded to multiples of `size_multiple` (upstream: 64; 16 at least).
        sampler: "unipc" (upstream) or "euler" (LiveAvatar's few-step sampler, e.g. 4 steps with guidance 0).
        num_clips None: as many clips as the audio covers. motion_frames: pixel frames of history (4k + 1; 73
        upstream; fewer leave the oldest frame-pack slots empty). negative_prompt "": upstream's default.
        capture_blocks: DiT blocks whose outputs (noisy tokens, conditional pass, steps `capture_steps` or all)
        are returned in `block_outputs`."""
        if frames_per_clip <= 0 or frames_per_clip % 4:
            raise ValueError(f"frames_per_clip must be a positive multiple of 4, got {frames_per_clip}")
        if motion_frames < 1 or motion_frames % 4 != 1:
            raise ValueError(f"motion_frames must be 4k + 1, got {motion_frames}")
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
        if output_type not in ("np", "pt"):
            raise ValueError(f"output_type must be 'np' or 'pt', got {output_type!r}")
        c = self.components
        image = load_image(image)
        height, width = self._size(image, height, width, max_area, size_multiple)
        wave = load_audio(audio)
        num_clips = clips_for_audio(len(wave), FPS, frames_per_clip, num_clips)

        feats = audio_features(c.audio_encoder, wave, FPS, num_clips * frames_per_clip).to(self.device)
        text = c.encode_text(prompt).to(self.device)
        negative = c.encode_text(negative_prompt or UPSTREAM_NEGATIVE_PROMPT).to(self.device)
        ref = self.encode_video(prepare_image(image, height, width))
        latent_shape = (1, c.dit.config.in_channels, frames_per_clip // 4, height // 8, width // 8)
        motion = torch.zeros(1, latent_shape[1], (motion_frames + 3) // 4, *latent_shape[3:], device=self.device)
        history = torch.zeros(1, 3, motion_frames, height, width)
        decoder_reference = self.decoder_reference(ref)
        recorder = _BlockRecorder(c.dit, capture_blocks, None if capture_steps is None else set(capture_steps))
        recorder.num_noisy = latent_shape[2] * (latent_shape[3] // 2) * (latent_shape[4] // 2)
        videos, latents, motions = [], [], []
        try:
            for clip in range(num_clips):
                audio_clip = feats[None, ..., clip * frames_per_clip : (clip + 1) * frames_per_clip]
                denoised = self._denoise(
                    clip_noise(seed + clip, latent_shape).to(self.device), text, negative, audio_clip, ref, motion,
                    first=clip == 0, sampling=self._sampling(sampler, shift, num_inference_steps),
                    guidance_scale=guidance_scale, recorder=recorder)
                video = self.decode_clip(ref if clip == 0 else motion, denoised, decoder_reference)
                videos.append(video[0])
                latents.append(denoised[0].cpu())
                motions.append(motion[0].cpu())
                if clip + 1 < num_clips:
                    history = torch.cat([history, video], dim=2)[:, :, -motion_frames:]
                    motion = self.encode_video(history)
        finally:
            recorder.remove()
        frames = torch.cat(videos, dim=1)
        return S2VOutput(
            frames=to_uint8(frames) if output_type == "np" else frames, latents=torch.stack(latents),
            audio_features=feats.cpu(), ref_latents=ref[0].cpu(), motion_latents=torch.stack(motions),
            text_embeds=text[0].cpu(), negative_text_embeds=negative[0].cpu(),
            seeds=[seed + clip for clip in range(num_clips)], block_outputs=recorder.stacked(num_clips))

    def _denoise(self, latents, text, negative, audio, ref, motion, *, first, sampling, guidance_scale, recorder):
        dit = self.components.dit
        timesteps, step_latents = sampling
        cond = dict(encoder_hidden_states=text, audio_features=audio, ref_latents=ref, motion_latents=motion,
                    drop_motion_frames=first)
        uncond = {**cond, "encoder_hidden_states": negative, "audio_features": torch.zeros_like(audio)}
        for step, t in enumerate(timesteps):
            timestep = t.expand(1).to(self.device)
            recorder.step, recorder.active = step, True
            pred = dit(latents, timestep, **cond).sample
            recorder.active = False
            if guidance_scale > 1:
                pred_uncond = dit(latents, timestep, **uncond).sample
                pred = guided(pred_uncond, pred, guidance_scale)
            latents = step_latents(pred, step, latents)
        return latents
