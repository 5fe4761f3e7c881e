"""Bar charts of a plan's importance scores (matplotlib, Agg canvas: no display, no global backend change)."""

from __future__ import annotations

from pathlib import Path

from compress.prune.importance import DEPTH_MEASURES
from compress.prune.plan import PrunePlan


def _kept_share(plan: PrunePlan, suffix: str) -> tuple[list[str], list[float]]:
    """Per unit ending in `suffix`, the share of its total importance that the kept channels / heads hold."""
    labels, shares = [], []
    for unit, scores in plan.scores.items():
        if unit.endswith(suffix):
            total = sum(scores)
            labels.append(unit.split(".")[1])
            shares.append(sum(scores[i] for i in plan.keep[unit]) / total if total else 1.0)
    return labels, shares


def plot_importance(plan: PrunePlan, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if plan.method == "depth":
        blocks = plan.scores["blocks"]
        label = next((axis for source, axis in DEPTH_MEASURES.values() if source == plan.scores_source), "score")
        panels = [("block", [str(i) for i in range(len(blocks))], blocks, label,
                   [i in plan.dropped_blocks for i in range(len(blocks))])]
    elif plan.method == "width":
        panels = [(xlabel, *_kept_share(plan, suffix), "importance share kept", None)
                  for xlabel, suffix in (("block: FFN channels", ".ffn"), ("block: self-attention heads", ".attn1"),
                                         ("block: text cross-attention heads", ".attn2"),
                                         ("audio injector: heads", ".attn"))]
        panels = [p for p in panels if p[1]]
    else:
        panels = [("layer", list(plan.scores), list(plan.scores.values()), "squared magnitude kept", None)]
    rotate = plan.method == "sparse_2_4" or len(panels[0][1]) > 40
    width = min(30.0, max(6.0, 0.25 * max(len(p[1]) for p in panels)))
    fig = Figure(figsize=(width, 2.6 * len(panels) + 1.5 * rotate))
    FigureCanvasAgg(fig)
    for ax, (xlabel, labels, values, ylabel, removed) in zip(fig.subplots(len(panels), 1, squeeze=False)[:, 0],
                                                             panels):
        colors = ["tab:red" if r else "tab:blue" for r in removed] if removed else "tab:blue"
        ax.bar(range(len(values)), values, color=colors)
        ax.set_xticks(range(len(values)), labels, rotation=90 if rotate else 0, fontsize=6 if rotate else 8)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    red = "; red: dropped" if plan.method == "depth" else ""
    fig.suptitle(f"prune {plan.method}: importance{red}\n{plan.scores_source}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path
