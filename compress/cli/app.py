"""The `compress` command line: one module per command, thin wrappers over the library, rendered with rich.

Every command module is light at import (typer, rich, pydantic): each imports its library (torch and the rest)
when its command runs, so `compress --help` and `compress recipe validate` start at once.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console as RichConsole
from rich.markup import escape

from compress.cli import evaluate, export, prune, recipe, vram
from compress.cli.inspect import inspect
from compress.cli.run import run
from compress.errors import CompressError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Compress and distil talking-head video diffusion models.")
app.command("vram")(vram.vram)
app.command("eval")(evaluate.eval_command)
app.command("leaderboard")(evaluate.leaderboard_command)
app.command()(run)
app.command()(inspect)
app.add_typer(recipe.app, name="recipe")
app.add_typer(prune.app, name="prune")
app.add_typer(export.app, name="export")


def main() -> None:
    """Entry point: usage errors exit 2 (click), bad input 2, failures while running 1."""
    try:
        app()
    except CompressError as err:
        RichConsole(stderr=True).print(f"[bold red]error:[/] {escape(str(err))}", highlight=False)
        sys.exit(err.exit_code)
