"""`compress run RECIPE`: validate a recipe, run (or resume) its stages, print the summary."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from compress.artifacts.card import flat_metrics, format_metric, human_bytes, human_count
from compress.cli.common import SET_HELP, stdout
from compress.recipe import load_recipe
from compress.stages import registered_kinds, stage_class
from compress.utils.console import Console, quiet_libraries


def run(
    recipe: Path = typer.Argument(..., help="recipe YAML file"),
    force: bool = typer.Option(False, "--force", help="redo every stage, even finished ones"),
    from_stage: Optional[str] = typer.Option(None, "--from-stage", help="redo this stage and all after it"),
    overrides: list[str] = typer.Option([], "--set", help=SET_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="print the summary table and errors only"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
) -> None:
    """Run a recipe: validate it, then run (or resume) its stages."""
    with quiet_libraries() if quiet or as_json else contextlib.nullcontext():  # from their imports on
        from compress.distributed import init_from_env
        from compress.runner import run as run_recipe  # torch

        loaded = load_recipe(recipe, overrides)
        result = run_recipe(loaded, Path.cwd(), force=force, from_stage=from_stage, console=Console(quiet or as_json))
    if init_from_env()[0] != 0:
        return  # under torchrun, rank 0 prints the summary
    if as_json:
        print(json.dumps(summary_rows(result), indent=2, default=str))
    else:
        stdout().print(summary_table(result, loaded.name))


def summary_rows(result) -> list[dict]:
    """One plain row per stage of a `compress.runner.RunResult`."""
    rows = []
    for r in result.results:
        model = r.artifact.manifest.get("model") or {}
        rows.append({"stage": r.name, "kind": r.kind, "status": r.status, "wall_s": round(r.wall_s, 2),
                     "parameters": model.get("parameters"), "bytes": model.get("bytes"),
                     "path": str(r.artifact.path), "metrics": r.metrics})
    return rows


def summary_table(result, title: str) -> Table:
    table = Table(title=f"{title}: artifacts in {result.output_dir}")
    for column in ("stage", "kind", "status", "time", "params", "size", "key metrics"):
        table.add_column(column)
    for row in summary_rows(result):
        metrics = flat_metrics(row["metrics"])
        keys = stage_class(row["kind"]).key_metrics if row["kind"] in registered_kinds() else ()
        key_metrics = ", ".join(f"{k} {format_metric(metrics[k])}" for k in keys if k in metrics)
        table.add_row(row["stage"], row["kind"], row["status"], f"{row['wall_s']:.1f}s" if row["status"] == "ran" else "-",
                      human_count(row["parameters"]) if row["parameters"] else "-",
                      human_bytes(row["bytes"]) if row["bytes"] else "-", key_metrics)
    return table
