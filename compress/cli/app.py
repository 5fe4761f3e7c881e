"""The `compress` command line: one module per command, thin wrappers over the library, rendered with rich.

Every command module is light at import (typer, rich, pydantic): each imports its library (torch and the rest)
when its command runs, so `compress --help` and `compress recipe validate` start at once.
"""

from __future__ import annotations

import sys
import traceback

import typer
from rich.console import Console as RichConsole
from rich.markup import escape

from compress.cli import evaluate, export, lora, prune, recipe, vram
from compress.cli.inspect import inspect
from compress.cli.run import run
from compress.errors import CompressError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Compress and distil talking-head video diffusion models.\n\nExit codes: 0 done, 1 a failure "
                       "while running, 2 bad input. Errors print one line; --debug (or COMPRESS_DEBUG=1) adds the "
                       "traceback.")
app.command("vram")(vram.vram)
app.command("eval")(evaluate.eval_command)
app.command("leaderboard")(evaluate.leaderboard_command)
app.command()(run)
app.command()(inspect)
app.add_typer(recipe.app, name="recipe")
app.add_typer(prune.app, name="prune")
app.add_typer(export.app, name="export")
app.add_typer(lora.app, name="lora")

_options = {"debug": False}


@app.callback()
def _global_options(
    debug: bool = typer.Option(False, "--debug", envvar="COMPRESS_DEBUG",
                               help="print the traceback of an error (also: COMPRESS_DEBUG=1)"),
) -> None:
    _options["debug"] = debug


def main() -> None:
    """Entry point: usage errors exit 2 (click), bad input 2, failures while running 1; anything unforeseen is
    reported in one line `error: <type>: <message>` and exits 1."""
    _options["debug"] = False
    try:
        app()
    except CompressError as err:
        _fail(str(err), err.exit_code)
    except Exception as err:  # the last resort: a bug, or a failure nothing above foresaw
        _fail(f"{type(err).__name__}: {err} (compress --debug COMMAND ... prints the traceback)", 1)


def _fail(message: str, code: int) -> None:
    console = RichConsole(stderr=True)
    if _options["debug"]:
        console.print(escape(traceback.format_exc()), highlight=False)
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)  # whole lines
    sys.exit(code)
