"""The settings of a distillation, as the recipe gives them: loss weights, the training loop, LoRA recovery.

A light module (pydantic only), so recipes are validated without importing torch; the code that uses the settings
lives beside it (`losses`, `trainer`, `lora`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# LiveAvatar's LoRA targets (q, k, v, o, ffn.0, ffn.2) in our module names; the attention patterns cover
# self-attention, text cross-attention and the audio injectors' cross-attention alike.
DEFAULT_TARGETS = ["*.to_q", "*.to_k", "*.to_v", "*.to_out.0", "*.ffn.net.0.proj", "*.ffn.net.2"]


class LossConfig(BaseModel):
    """Weights of the loss terms (0 turns one off). The mouth box up-weights every term inside it."""

    model_config = ConfigDict(extra="forbid")

    latent_mse: float = Field(default=0.0, ge=0, description="MSE of predicted vs teacher latents")
    pixel_l1: float = Field(default=0.0, ge=0, description="L1 of decoded vs teacher frames (pixels in [-1, 1])")
    pixel_mse: float = Field(default=0.0, ge=0, description="MSE of decoded vs teacher frames")
    mouth_weight: float = Field(default=0.0, ge=0, description="extra weight inside the mouth box (0: uniform)")
    mouth_box: Literal["inputs", "landmarks"] | tuple[float, float, float, float] = Field(
        default="inputs", description="'inputs': each clip's mouth_box from the input set (the built-in set "
                                      "records one); 'landmarks': from MediaPipe face landmarks on each clip's "
                                      "teacher frames (needs scripts/setup_landmarks.sh); or one box "
                                      "[x0, y0, x1, y1] in fractions of the frame")
    sync: float = Field(default=0.0, ge=0, description="expert lip-sync loss on windows of 5 consecutive frames "
                                                       "(lip-sync students; needs the stage's sync_expert)")

    @field_validator("mouth_box")
    @classmethod
    def _box(cls, value):
        if not isinstance(value, str) and not (0 <= value[0] < value[2] <= 1 and 0 <= value[1] < value[3] <= 1):
            raise ValueError("[x0, y0, x1, y1] with 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1")
        return value

    def active(self) -> dict[str, float]:
        return {k: v for k, v in {"latent_mse": self.latent_mse, "pixel_l1": self.pixel_l1,
                                  "pixel_mse": self.pixel_mse}.items() if v > 0}


class TrainConfig(BaseModel):
    """Optimisation settings of one training run."""

    model_config = ConfigDict(extra="forbid")

    steps: int = Field(default=200, ge=1, description="optimizer steps")
    batch_size: int = Field(default=8, ge=1, description="examples per micro-batch and rank")
    lr: float = Field(default=1e-3, gt=0, description="peak learning rate (AdamW)")
    weight_decay: float = Field(default=0.0, ge=0)
    warmup_steps: int = Field(default=0, ge=0, description="linear warmup from zero, then cosine decay to zero")
    grad_accum: int = Field(default=1, ge=1, description="micro-batches per optimizer step")
    clip_grad: float | None = Field(default=1.0, gt=0, description="max gradient norm; null: no clipping")
    ema_decay: float | None = Field(default=None, gt=0, lt=1, description="EMA of the weights; diffusers EMAModel: the "
                                    "decay of step n is min(ema_decay, n / (n + 9)), 0 at step 1; null: off")
    checkpoint_every: int = Field(default=50, ge=1, description="steps between checkpoints")
    keep_checkpoints: int = Field(default=2, ge=1, description="most recent checkpoints kept")
    autocast: Literal["auto", "bf16", "off"] = Field(
        default="auto", description="bf16 autocast; auto: on CUDA GPUs that support bf16, off elsewhere")
    log_every: int = Field(default=10, ge=1, description="steps between log lines and wandb points")
    seed: int = Field(default=0, description="seeds the data order and the RNGs")
    sharding: Literal["ddp", "fsdp"] = Field(
        default="ddp", description="under torchrun: ddp (each rank holds whole models) or fsdp (method dmd: FSDP2 "
                                   "shards every DiT block and the rest of each base over the ranks, frozen weights "
                                   "and LoRA alike; `compress vram --task dmd-train --sharding` plans both)")


class LoraRecoveryConfig(BaseModel):
    """Adapters, loss and output of a LoRA recovery run."""

    model_config = ConfigDict(extra="forbid")

    rank: int = Field(default=16, ge=1, description="LoRA rank (LiveAvatar: 128)")
    alpha: float | None = Field(default=None, gt=0, description="LoRA alpha; default: the rank (LiveAvatar: 64)")
    dropout: float = Field(default=0.0, ge=0, lt=1)
    targets: list[str] = Field(default_factory=lambda: list(DEFAULT_TARGETS), min_length=1,
                               description="Linear modules to adapt (fnmatch globs on module names)")
    feature_blocks: list[int] = Field(default_factory=list, description="blocks of the trained model whose "
                                      "(noisy-token) outputs match those of the teacher block they came from")
    feature_weight: float = Field(default=0.0, ge=0, description="weight of the feature loss (relative MSE)")
    guidance_scale: float = Field(default=1.0, ge=1, description="> 1: match the classifier-free guided velocity "
                                  "(conditional + scale x (conditional - unconditional), the unconditional branch "
                                  "with the negative prompt and no audio, as the pipeline samples; two forwards per "
                                  "example); 1: the conditional velocity alone")
    unconditional_weight: float = Field(default=0.0, ge=0, description="weight of the unconditional branch's "
                                        "velocity error (negative prompt, no audio; mouth-weighted alike), added to "
                                        "the loss: guidance samples with both branches; 0: not matched on its own")
    sigma_shift: float = Field(default=1.0, ge=1, description="noise levels sigma = shift u / (1 + (shift - 1) u), "
                               "u uniform in (0, 1): the flow sampler's timestep shift (the reference's `shift`, 3, "
                               "spends its steps at high noise); 1: uniform")
    mouth_weight: float = Field(default=0.0, ge=0, description="extra weight of the velocity error inside each "
                                "clip's mouth box (the reference input set's mouth_box entries); 0: uniform")
    base_dtype: Literal["auto", "float32", "bfloat16"] = Field(
        default="auto", description="dtype of a dequantized base's weights; auto: the dtype of each layer's bias")
    validation_batches: int = Field(default=4, ge=1, le=64, description="held-out inputs for the before/after error")
    merge: bool = Field(default=True, description="also write the model with the adapters merged into it")
    requantize: bool = Field(default=True, description="a quantized base: quantize the merged model again with "
                                                        "its QuantConfig (required to merge into a quantized base)")

    @model_validator(mode="after")
    def _features_need_both(self) -> LoraRecoveryConfig:
        if bool(self.feature_blocks) != (self.feature_weight > 0):
            raise ValueError("feature matching needs both feature_blocks and a feature_weight > 0 (or neither)")
        return self


class DmdConfig(BaseModel):
    """DMD2-style few-step distillation (`compress.distill.dmd`): a LoRA generator sampling in K Euler steps without
    guidance, a frozen real score (the teacher with CFG) and a trainable fake score (LoRA on the teacher)."""

    model_config = ConfigDict(extra="forbid")

    num_inference_steps: int = Field(default=4, ge=1, le=50, description="K: the generator's Euler steps "
                                     "(LiveAvatar: 4, t = 1000, 858, 602, 9 with shift 3)")
    shift: float = Field(default=3.0, gt=0, description="the sampler's sigma shift (euler_sigmas)")
    real_guidance_scale: float | None = Field(default=None, ge=0, description="CFG scale of the real score; "
                                              "default: the reference's guidance_scale (<= 1: no CFG)")
    fake_updates_per_step: int = Field(default=5, ge=1, description="fake-score updates per generator update "
                                                                    "(DMD2: 5)")
    fake_lr: float | None = Field(default=None, gt=0, description="the fake score's learning rate; default train.lr")
    t_min: float = Field(default=0.02, gt=0, lt=1, description="DMD and fake-score noise levels: sigma ~ "
                                                               "U(t_min, t_max), then shifted by timestep_shift")
    t_max: float = Field(default=0.98, gt=0, le=1)
    timestep_shift: float = Field(default=3.0, gt=0, description="shift of the sampled noise levels (1: none)")
    exit_step: Literal["last", "random"] = Field(
        default="last", description="the rollout step whose x0 prediction is the generator's sample and carries "
                                    "the gradient: the last, or one drawn per step (Self-Forcing)")
    regression_warmup_steps: int = Field(default=0, ge=0, description="generator steps before DMD that regress "
                                         "its x0 prediction at a random rollout step from the reference's noise on "
                                         "the teacher's latents (ODE pairs)")
    rank: int = Field(default=16, ge=1, description="generator LoRA rank (LiveAvatar: 128)")
    alpha: float | None = Field(default=None, gt=0, description="generator LoRA alpha; default the rank")
    fake_rank: int | None = Field(default=None, ge=1, description="fake-score LoRA rank; default `rank`")
    targets: list[str] = Field(default_factory=lambda: list(DEFAULT_TARGETS), min_length=1,
                               description="Linear modules to adapt, in both networks (fnmatch globs)")
    checkpointing: bool = Field(default=False, description="activation checkpointing of the DiT blocks: their "
                                "activations are recomputed in the backward instead of kept (what `compress vram "
                                "--task dmd-train` plans by default; --no-checkpointing plans without)")
    merge: bool = Field(default=True, description="also write the generator with its adapters merged")
    requantize: bool = Field(default=True, description="a quantized input: quantize the merged model again")

    @model_validator(mode="after")
    def _noise_range(self) -> DmdConfig:
        if self.t_min >= self.t_max:
            raise ValueError(f"t_min ({self.t_min}) must be below t_max ({self.t_max})")
        return self
