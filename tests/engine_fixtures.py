"""A tiny diffusers-style model and simple stage kinds, registered for tests of the recipe engine."""

from __future__ import annotations

import os
import time

import torch

import compress  # noqa: F401  (quiets torchao's import-time warnings, so it must come before diffusers)
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from pydantic import Field

from compress.models.auto import Preset, register_preset
from compress.stages import Stage, StageRef


class TinyMLP(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(self, width: int = 8, depth: int = 2):
        super().__init__()
        self.layers = torch.nn.ModuleList(torch.nn.Linear(width, width) for _ in range(depth))

    def forward(self, x):
        for layer in self.layers:
            x = torch.relu(layer(x))
        return x


class ScaleStage(Stage):
    """Multiplies every weight by `factor` (a model-producing stage)."""

    kind = "test-scale"
    factor: float = Field(default=2.0, gt=0)
    sleep_s: float = 0.0
    reads: StageRef["test-note"] | None = None  # a note stage whose artifact this one reads (its content unused)

    def run(self, source, out, ctx):
        model = source.load_model()
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(self.factor)
        time.sleep(self.sleep_s)
        if os.environ.get("TEST_SCALE_CRASH") == self.display_name:
            raise RuntimeError("injected failure")
        out.save_model(model)
        return {"factor": self.factor, "pid": os.getpid()}


class NoteStage(Stage):
    """Writes a text file (a stage without model weights)."""

    kind = "test-note"
    produces_model = False
    text: str

    def run(self, source, out, ctx):
        (out.path / "note.txt").write_text(self.text)
        return {"chars": len(self.text)}


class ShardStage(Stage):
    """Each rank writes its shard of `items`; rank 0 merges them after a barrier (a distributed stage)."""

    kind = "test-shards"
    produces_model = False
    distributed = True
    items: int = 6

    def run(self, source, out, ctx):
        mine = [i for i in range(self.items) if i % ctx.world_size == ctx.rank]
        (out.path / f"rank-{ctx.rank}.txt").write_text(" ".join(f"{i}:{ctx.rank}" for i in mine))
        ctx.barrier()
        if ctx.rank != 0:
            return {}
        shards = sorted(out.path.glob("rank-*.txt"))
        merged = sorted((p for f in shards for p in f.read_text().split()), key=lambda p: int(p.split(":")[0]))
        (out.path / "merged.txt").write_text(" ".join(merged))
        for f in shards:
            f.unlink()
        return {"world_size": ctx.world_size}


def register_engine_fixtures() -> None:
    register_preset(Preset("test-mlp", TinyMLP, {"width": 8, "depth": 2}, description="engine test model"))
