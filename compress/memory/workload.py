"""What runs (Workload), how it is laid out over GPUs (Layout), and one labelled number (Item)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace

from compress.errors import UserInputError
from compress.models.s2v.motion import BUCKET_FACTORS, MOTION_BUCKETS
from compress.pipelines.sampling import SAMPLERS, UPSTREAM, dit_forwards

SOURCES = ("analytic", "simulated", "measured")
COMPONENTS = ("text_encoder", "audio_encoder", "vae")
PLACEMENTS = ("gpu", "cpu", "sequential")  # sequential: on the GPU only while it runs
LAYOUTS = ("single", "offload", "block-offload", "fsdp", "pipeline")
WRAPS = ("block", "module", "model")
VAE_STRIDE, TEMPORAL_STRIDE, PATCH = 8, 4, 2
FPS = 16
# bounds far above any real clip or cluster, so an absurd request is refused at once instead of planned for minutes
MAX_SIDE, MAX_FRAMES, MAX_BATCH, MAX_GPUS, MAX_STEPS = 8192, 2048, 1024, 4096, 10_000


@dataclass(frozen=True)
class Item:
    """One labelled number of a breakdown."""

    name: str
    bytes: int
    source: str  # analytic | simulated | measured
    kind: str  # weights | activations | cache | overhead
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def parse_size(text: str) -> tuple[int, int]:
    """'480*832' (upstream's W*H; 'x' also accepted) -> (width, height)."""
    match = re.fullmatch(r"\s*(\d+)\s*[*xX]\s*(\d+)\s*", str(text))
    if not match:
        raise UserInputError(f"size must be WIDTH*HEIGHT in pixels, e.g. 480*832; got {text!r}")
    return int(match[1]), int(match[2])


@dataclass(frozen=True)
class Workload:
    """One clip: pixel size (W, H), pixel frames per clip, batch, classifier-free guidance, sampler and steps.

    CFG runs two DiT forwards per step; `cfg_batched` runs them as one forward of twice the batch. Memory depends
    on guidance only through that batch: the sampler and its steps (e.g. LiveAvatar's 4-step Euler without CFG)
    set the DiT forwards per clip (`dit_forwards`), i.e. time, not the peak."""

    width: int = 480
    height: int = 832
    frames: int = 80
    batch: int = 1
    cfg: bool = True
    cfg_batched: bool = False
    motion: bool = True  # FramePack motion tokens (every clip but the first)
    sampler: str = "unipc"
    steps: int = UPSTREAM.num_inference_steps

    def __post_init__(self):
        if self.sampler not in SAMPLERS or not 1 <= self.steps <= MAX_STEPS:
            raise UserInputError(f"sampler must be one of {', '.join(SAMPLERS)} (got {self.sampler!r}) and steps from "
                                 f"1 to {MAX_STEPS} (got {self.steps})")
        if self.width % 16 or self.height % 16 or not 64 <= min(self.width, self.height) <= max(
                self.width, self.height) <= MAX_SIDE:
            raise UserInputError(f"size {self.size}: width and height must be multiples of 16 from 64 to {MAX_SIDE}")
        if not 4 <= self.frames <= MAX_FRAMES or self.frames % TEMPORAL_STRIDE:
            raise UserInputError(f"frames must be a multiple of 4 from 4 to {MAX_FRAMES}, got {self.frames}")
        if not 1 <= self.batch <= MAX_BATCH:
            raise UserInputError(f"batch must be from 1 to {MAX_BATCH}, got {self.batch}")

    size = property(lambda self: f"{self.width}*{self.height}")
    latent_frames = property(lambda self: self.frames // TEMPORAL_STRIDE)
    latent_hw = property(lambda self: (self.height // VAE_STRIDE, self.width // VAE_STRIDE))
    dit_batch = property(lambda self: self.batch * (2 if self.cfg and self.cfg_batched else 1))
    audio_seconds = property(lambda self: self.frames / FPS)
    dit_forwards = property(lambda self: dit_forwards(self.steps, 2.0 if self.cfg else 1.0))

    def with_size(self, size: str) -> Workload:
        width, height = parse_size(size)
        return replace(self, width=width, height=height)

    def to_dict(self) -> dict:
        return {**asdict(self), "size": self.size, "dit_batch": self.dit_batch, "dit_forwards": self.dit_forwards}


def tokens_per_frame(latent_h: int, latent_w: int) -> int:
    return (latent_h // PATCH) * (latent_w // PATCH)


def token_counts(latent_frames: int, latent_h: int, latent_w: int, motion: bool) -> dict[str, int]:
    """Tokens of one DiT forward as our model builds them: noisy, reference, FramePack motion."""
    per_frame = tokens_per_frame(latent_h, latent_w)
    moving = sum((n // s) * (latent_h // (PATCH * s)) * (latent_w // (PATCH * s))
                 for n, s in zip(MOTION_BUCKETS, BUCKET_FACTORS)) if motion else 0
    counts = {"noisy": latent_frames * per_frame, "reference": per_frame, "motion": moving}
    return {**counts, "total": sum(counts.values())}


@dataclass(frozen=True)
class Layout:
    """How the pipeline is spread over GPUs.

    single         everything on one GPU
    offload        one GPU; components placed per `placement`; the DiT leaves the GPU while the VAE decodes
    block-offload  offload, and the DiT's `wrap` units stream from CPU, `units` of them resident at once
    fsdp           `gpus` GPUs, each holding 1/gpus of the DiT plus the unsharded root unit and `units`
                   gathered units (`wrap` granularity); `sequence_parallel` (Ulysses) splits the tokens
    pipeline       LiveAvatar TPP: `gpus` - 1 GPUs with a full DiT and a rolling KV cache of `kv_blocks`
                   blocks of `frames_per_block` latent frames plus `sink_frames`; one GPU decodes
    """

    kind: str = "single"
    gpus: int = 1
    placement: dict[str, str] = field(default_factory=dict)
    wrap: str = "block"
    units: int = 1
    sequence_parallel: bool = False
    frames_per_block: int = 3
    kv_blocks: int = 4
    sink_frames: int = 1

    def __post_init__(self):
        if self.kind not in LAYOUTS:
            raise UserInputError(f"unknown layout '{self.kind}'; known: {', '.join(LAYOUTS)}")
        if self.wrap not in WRAPS:
            raise UserInputError(f"unknown wrap granularity '{self.wrap}'; known: {', '.join(WRAPS)}")
        if min(self.units, self.frames_per_block, self.kv_blocks) < 1 or self.sink_frames < 0:
            raise UserInputError("units, frames_per_block and kv_blocks must be >= 1, sink_frames >= 0")
        multi = self.kind in ("fsdp", "pipeline")
        if not (2 if self.kind == "pipeline" else 1) <= self.gpus <= MAX_GPUS or (not multi and self.gpus != 1):
            raise UserInputError(f"layout {self.kind} cannot use {self.gpus} GPUs (at most {MAX_GPUS})")
        defaults = dict.fromkeys(COMPONENTS, "gpu")
        if self.kind in ("offload", "block-offload"):
            defaults = {"text_encoder": "cpu", "audio_encoder": "cpu", "vae": "sequential"}
        for name, where in self.placement.items():
            if name not in COMPONENTS or where not in PLACEMENTS:
                raise UserInputError(f"placement {name}={where}: components are {', '.join(COMPONENTS)}, "
                                     f"places {', '.join(PLACEMENTS)}")
        object.__setattr__(self, "placement", {**defaults, **self.placement})

    @classmethod
    def parse(cls, text: str, **options) -> Layout:
        """'single', 'offload', 'block-offload', 'fsdp:5', 'pipeline:5'."""
        kind, _, count = str(text).partition(":")
        if count and not count.isdigit():
            raise UserInputError(f"layout '{text}': the GPU count after ':' must be a number")
        if kind == "block-offload":
            options.setdefault("wrap", "module")
            options.setdefault("units", 2)
        return cls(kind, int(count or 1), **options)

    @property
    def dit_sequential(self) -> bool:
        """Whether the DiT is moved off the GPU outside the denoising loop."""
        return self.kind in ("offload", "block-offload")

    @property
    def label(self) -> str:
        return self.kind + (f":{self.gpus}" if self.kind in ("fsdp", "pipeline") else "")

    def to_dict(self) -> dict:
        return {**asdict(self), "label": self.label}
