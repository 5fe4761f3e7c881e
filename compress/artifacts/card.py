"""The short README.md model card written into every artifact."""

from __future__ import annotations

import json


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return f"{n} B"


def human_count(n: float) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f}{unit}"
    return str(int(n))


def format_metric(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)


def flat_metrics(metrics: dict, prefix: str = "") -> dict:
    """{'a': {'b': 1}} -> {'a.b': 1}."""
    flat = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            flat.update(flat_metrics(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def render_card(manifest: dict) -> str:
    lines = [f"# {manifest['name']} ({manifest['kind']})", ""]
    if manifest.get("description"):
        lines += [manifest["description"], ""]
    lineage = " -> ".join(f"{a['name']} ({a['kind']})" for a in manifest.get("lineage", []))
    lines += [f"Lineage: {lineage + ' -> ' if lineage else ''}**{manifest['name']}**", ""]
    model = manifest.get("model")
    if model:
        dtypes = ", ".join(f"{d}: {human_bytes(b)}" for d, b in sorted(model.get("bytes_by_dtype", {}).items()))
        lines += [f"Parameters: {human_count(model.get('parameters', 0))} ({dtypes})", ""]
    config = manifest.get("stage_config")
    if config:
        lines += ["## Stage configuration", "", "```json", json.dumps(config, indent=2, sort_keys=True), "```", ""]
    for figure in manifest.get("figures", []):
        lines += [f"![{figure}]({figure})", ""]
    metrics = flat_metrics(manifest.get("metrics", {}))
    if metrics:
        lines += ["## Metrics", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {format_metric(v)} |" for k, v in metrics.items()]
        lines.append("")
    timing = manifest.get("timing", {})
    if timing:
        lines += [f"Built in {timing.get('wall_s', 0):.1f} s, peak RSS {human_bytes(timing.get('peak_rss_bytes', 0))}.", ""]
    return "\n".join(lines)
