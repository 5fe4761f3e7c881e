"""`compress recipe validate RECIPE`: check a recipe without running it."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from compress.cli.common import SET_HELP, stdout
from compress.recipe import load_recipe

app = typer.Typer(no_args_is_help=True, help="Work with recipe files.")


@app.command("validate")
def validate(
    recipe: Path = typer.Argument(..., help="recipe YAML file"),
    overrides: list[str] = typer.Option([], "--set", help=SET_HELP),
) -> None:
    """Check a recipe without running it; every problem is reported with file, line and field."""
    loaded = load_recipe(recipe, overrides)
    loaded.check_paths(Path.cwd())
    count = len(loaded.stages)
    out = stdout()
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
