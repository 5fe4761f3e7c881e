"""Leaderboard plots as inline SVG (matplotlib, no network): Pareto fronts and per-clip mouth opening."""

from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from compress.artifacts.card import flat_metrics  # noqa: E402


def _svg(fig) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and doctype: the SVG goes inline into HTML


def _value(record: dict, metric: str) -> float | None:
    value = flat_metrics(record["metrics"]).get(metric)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def pareto_front(points: list[tuple[float, float]], higher_is_better: bool) -> list[int]:
    """Indices of the points no other point beats on both axes (x: cost, lower is better; y: quality)."""
    sign = 1 if higher_is_better else -1
    front = []
    for i, (x, y) in enumerate(points):
        beaten = any(ox <= x and sign * oy >= sign * y and (ox, oy) != (x, y) for ox, oy in points)
        if not beaten:
            front.append(i)
    return front


def pareto_svg(records: list[dict], quality: str, cost: str, higher_is_better: bool, cost_label: str,
               quality_label: str) -> str:
    """Quality against cost for every record that has both; the Pareto front's points ringed and joined."""
    rows = [(r["artifact"]["name"], _value(r, cost), _value(r, quality)) for r in records]
    rows = [row for row in rows if row[1] is not None and row[2] is not None]
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    if rows:
        points = [(x, y) for _, x, y in rows]
        front = sorted(points[i] for i in pareto_front(points, higher_is_better))
        ax.plot(*zip(*front), "-o", color="tab:orange", markersize=11, markerfacecolor="none", label="Pareto front",
                zorder=1)
        ax.scatter(*zip(*points), zorder=2)
        for name, x, y in rows:
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        if min(points)[0] > 0 and max(points)[0] / min(points)[0] > 20:
            ax.set_xscale("log")  # costs spanning orders of magnitude
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, f"no artifact has both\n{quality_label} and {cost_label}", ha="center", va="center",
                transform=ax.transAxes)
    ax.set_xlabel(f"{cost_label} (lower is better)")
    ax.set_ylabel(f"{quality_label}\n({'higher' if higher_is_better else 'lower'} is better)", fontsize=9)
    ax.set_title(f"lip sync against {cost_label}", fontsize=9)
    ax.grid(alpha=0.3)
    return _svg(fig)


def mouth_svg(clip_id: str, series: dict, fps: float | None = None) -> str:
    """Mouth opening per frame (tier A landmarks), student against teacher; gaps where no face was found."""
    fig, ax = plt.subplots(figsize=(5.5, 2.4))
    for who, style in (("teacher", "-"), ("student", "--")):
        values = [math.nan if v is None else v for v in series.get(who) or []]
        ax.plot(range(len(values)), values, style, label=who)
    ax.set_title(f"mouth opening, clip {clip_id}", fontsize=9)
    ax.set_xlabel("frame" if fps is None else f"frame ({fps:g} fps)")
    ax.set_ylabel("lip gap / mouth width")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _svg(fig)
