"""`compress inspect TARGET`: lineage, parameters, bytes by dtype and metrics of an artifact, a model directory or a
preset."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from compress.artifacts.card import flat_metrics, format_metric, human_bytes, human_count
from compress.cli.common import stdout
from compress.inspection import inspect_target


def inspect(
    target: str = typer.Argument(..., help="an artifact directory, a model directory or a preset name"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Lineage, parameter count, bytes by dtype and metrics (presets are counted on the meta device)."""
    info = inspect_target(target)
    if as_json:
        print(json.dumps(info, indent=2, default=str))
        return
    table = Table(title=f"{info['type']}: {target}", show_header=False)
    model = info.get("model") or {}
    if info.get("lineage"):
        table.add_row("lineage", " -> ".join(f"{a['name']} ({a['kind']})" for a in info["lineage"]))
    table.add_row("parameters", f"{model.get('parameters', 0):,} ({human_count(model.get('parameters', 0))})")
    for dtype, size in sorted(model.get("bytes_by_dtype", {}).items()):
        table.add_row(f"bytes {dtype}", human_bytes(size))
    for key, value in info.get("breakdown", {}).items():
        table.add_row(f"params {key}", f"{value:,}")
    for key, value in flat_metrics(info.get("metrics") or {}).items():
        table.add_row(key, format_metric(value))
    stdout().print(table)
