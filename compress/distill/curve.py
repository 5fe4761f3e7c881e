"""A learning curve: training in segments of `every` steps, a measurement after each (and before the first), kept
beside the checkpoints so a resumed run keeps the points it measured before it was killed, and plotted as a PNG
for the model card.

    points = train_with_curve(task, config, checkpoint_dir, every=100, measure=lambda model: {...}, ctx=ctx)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import torch

from compress.distill.config import TrainConfig
from compress.distill.trainer import latest_checkpoint, train

CURVE_FILE = "curve.json"


def curve_steps(steps: int, every: int) -> list[int]:
    """0, every, 2 * every, ..., and the last step."""
    return sorted({*range(0, steps, every), steps})


def train_with_curve(task, config: TrainConfig, checkpoint_dir: Path, every: int,
                     measure: Callable[[object], dict], ctx=None, log_prefix: str = "train") -> tuple[dict, list]:
    """`train` in segments of `every` steps, `measure(task.model)` (eval mode, no gradients) at each of
    `curve_steps`. Returns the training result (as `train` returns it, wall time and throughput over all segments)
    and the points [{"step": n, **measure(model)}] in step order; under torchrun rank 0 alone measures (the
    ranks hold the same weights), the others get no points."""
    path = Path(checkpoint_dir) / CURVE_FILE
    points = {p["step"]: p for p in (json.loads(path.read_text()) if path.is_file() else [])}
    segments = []
    for target in curve_steps(config.steps, every):
        if target:
            segments.append(train(task, config, checkpoint_dir, ctx=ctx, stop_after=target, log_prefix=log_prefix))
        at = segments[-1]["steps"] if segments else (0 if latest_checkpoint(checkpoint_dir) is None else None)
        if at == target and target not in points and (ctx is None or ctx.rank == 0):  # resumed past it: too late
            points[target] = {"step": target, **_measured(task.model, measure)}
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(sorted(points.values(), key=lambda p: p["step"])))
            if ctx is not None:
                ctx.log(f"  curve at step {target}: {json.dumps(points[target], default=str)[:200]}")
    return _merged(segments), sorted(points.values(), key=lambda p: p["step"])


def _measured(model, measure) -> dict:
    """`measure(model)` in eval mode without gradients (the model's mode restored)."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        point = measure(model)
    model.train(was_training)
    return point


def _merged(segments: list[dict]) -> dict:
    """One `train` result for consecutive segments: the last one's history, the first's resume step, total time."""
    last, wall = segments[-1], sum(s["wall_s"] for s in segments)
    samples = sum(s["wall_s"] * (s["samples_per_s"] or 0) for s in segments)
    return {**last, "resumed_from": segments[0]["resumed_from"], "wall_s": round(wall, 3),
            "samples_per_s": round(samples / wall, 3) if wall else None}


def plot_learning_curve(points: list[dict], series: dict[str, Callable[[dict], float | None]],
                        bands: dict[str, tuple[float, float]], path: Path, title: str) -> Path:
    """One panel per entry of `series` (name -> value of a point), each against steps, with its pass band shaded
    where `bands` gives one; written to `path` (PNG)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 1.9 * len(series) + 0.6))
    FigureCanvasAgg(fig)
    steps = [p["step"] for p in points]
    for ax, (name, value) in zip(fig.subplots(len(series), 1, squeeze=False)[:, 0], series.items()):
        values = [value(p) for p in points]
        ax.plot(steps, [float("nan") if v is None else v for v in values], "o-", color="tab:blue")
        if name in bands:
            ax.axhspan(*bands[name], color="tab:green", alpha=0.15, label="pass")
            ax.legend(loc="best", fontsize=7)
        ax.set_ylabel(name, fontsize=8)
        ax.grid(alpha=0.3)
    ax.set_xlabel("training step")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path
