"""wandb logging of each stage's metrics: offline unless WANDB_MODE says otherwise, off with WANDB_MODE=disabled."""

from __future__ import annotations

import os
from pathlib import Path

from compress.artifacts.card import flat_metrics


class Tracker:
    def __init__(self, recipe, output_dir: Path | None):
        self.run = None
        mode = os.environ.get("WANDB_MODE", "offline")
        if mode == "disabled" or recipe is None:
            return
        import wandb

        self.run = wandb.init(project=recipe.wandb_project, name=recipe.name, dir=str(output_dir), mode=mode,
                              config=recipe.to_dict(), settings=wandb.Settings(silent=True))

    @classmethod
    def off(cls) -> "Tracker":
        return cls(None, None)

    def log_stage(self, stage: str, metrics: dict) -> None:
        numbers = {f"{stage}/{k}": v for k, v in flat_metrics(metrics).items() if isinstance(v, (int, float))}
        if self.run is not None and numbers:
            self.run.log(numbers)

    def finish(self) -> None:
        if self.run is not None:
            self.run.finish()
