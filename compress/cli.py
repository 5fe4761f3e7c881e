"""The `compress` command line: thin wrappers over the library, rendered with rich."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console as RichConsole
from rich.markup import escape
from rich.table import Table

from compress.artifacts.card import flat_metrics, format_metric, human_bytes, human_count
from compress.errors import CompressError
from compress.evaluate.cli import eval_command, leaderboard_command
from compress.export.cli import app as export_app
from compress.memory.cli import vram
from compress.prune.cli import app as prune_app
from compress.recipe import load_recipe
from compress.runner import RunResult, Runner
from compress.stages import registered_kinds, stage_class
from compress.utils.console import Console

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Compress and distil talking-head video diffusion models.")
recipe_app = typer.Typer(no_args_is_help=True, help="Work with recipe files.")
app.add_typer(recipe_app, name="recipe")
app.add_typer(prune_app, name="prune")
app.add_typer(export_app, name="export")
app.command("vram")(vram)
app.command("eval")(eval_command)
app.command("leaderboard")(leaderboard_command)
out = RichConsole(width=None if sys.stdout.isatty() else 160)  # logs and pipes get the whole table

SET_HELP = "override a recipe field, e.g. --set stages.int8.scheme=fp8_weight_only (repeatable)"


@app.command()
def run(
    recipe: Path = typer.Argument(..., help="recipe YAML file"),
    force: bool = typer.Option(False, "--force", help="redo every stage, even finished ones"),
    from_stage: Optional[str] = typer.Option(None, "--from-stage", help="redo this stage and all after it"),
    overrides: list[str] = typer.Option([], "--set", help=SET_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress or log output"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
) -> None:
    """Run a recipe: validate it, then run (or resume) its stages."""
    loaded = load_recipe(recipe, overrides)
    result = Runner(loaded, Path.cwd(), force=force, from_stage=from_stage, console=Console(quiet or as_json)).run()
    if as_json:
        print(json.dumps(summary_rows(result), indent=2, default=str))
    elif not quiet:
        out.print(summary_table(result, loaded.name))


@recipe_app.command("validate")
def validate(
    recipe: Path = typer.Argument(..., help="recipe YAML file"),
    overrides: list[str] = typer.Option([], "--set", help=SET_HELP),
) -> None:
    """Check a recipe without running it; every problem is reported with file, line and field."""
    loaded = load_recipe(recipe, overrides)
    loaded.check_paths(Path.cwd())
    count = len(loaded.stages)
    out.print(f"{recipe}: valid ({count} stage{'s' * (count != 1)}, model '{loaded.model}' -> {loaded.output})",
              highlight=False)
    table = Table()
    for column in ("#", "name", "kind", "what it does", "input", "settings"):
        table.add_column(column)
    for i, stage in enumerate(loaded.stages, start=1):
        settings = {k: v for k, v in stage.config_dict().items() if k not in ("kind", "input")}
        table.add_row(str(i), stage.display_name, stage.kind, stage.summary, stage.input or "(latest model)",
                      json.dumps(settings))
    out.print(table)


@app.command()
def inspect(
    target: str = typer.Argument(..., help="an artifact directory, a model directory or a preset name"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Lineage, parameter count, bytes by dtype and metrics (presets are counted on the meta device)."""
    from compress.inspection import inspect_target

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
    out.print(table)


def summary_rows(result: RunResult) -> list[dict]:
    rows = []
    for r in result.results:
        model = r.artifact.manifest.get("model") or {}
        rows.append({"stage": r.name, "kind": r.kind, "status": r.status, "wall_s": round(r.wall_s, 2),
                     "parameters": model.get("parameters"), "bytes": model.get("bytes"),
                     "path": str(r.artifact.path), "metrics": r.metrics})
    return rows


def summary_table(result: RunResult, title: str) -> Table:
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


def main() -> None:
    """Entry point: usage errors exit 2 (click), bad input 2, failures while running 1."""
    try:
        app()
    except CompressError as err:
        RichConsole(stderr=True).print(f"[bold red]error:[/] {escape(str(err))}", highlight=False)
        sys.exit(err.exit_code)


if __name__ == "__main__":
    main()
