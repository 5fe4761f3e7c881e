"""Settings of a training run: light (no torch), so that recipe parsing reads them without the training loop."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


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
