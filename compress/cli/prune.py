"""`compress prune plan`: what a prune would remove and the size after, without doing it.

By default nothing is loaded: the model is built on the meta device from its config (the 14B preset in well
under a second) and a placeholder order stands in for measured importance. `--calibrate N` loads the weights
and scores N random inputs instead.
"""

from __future__ import annotations

import json
from typing import Optional

import typer
from pydantic import ValidationError
from rich.table import Table

from compress.artifacts.card import format_metric, human_bytes
from compress.cli.common import stdout
from compress.errors import UserInputError
from compress.models.auto import meta_model
from compress.prune.config import PruneConfig
from compress.sources import resolve
from compress.utils.problems import problems_from

app = typer.Typer(no_args_is_help=True, help="Plan pruning of the S2V DiT (dry run: nothing is written).")


@app.command("plan")
def plan(
    model: str = typer.Argument(..., help="a preset name, a model directory or an artifact"),
    method: str = typer.Option(..., "--method", help="depth | width | sparse_2_4"),
    blocks: Optional[int] = typer.Option(None, "--blocks", help="depth: blocks to keep"),
    drop_blocks: Optional[int] = typer.Option(None, "--drop-blocks", help="depth: blocks to remove"),
    ffn_dim: Optional[int] = typer.Option(None, "--ffn-dim", help="width: FFN channels to keep"),
    heads: Optional[int] = typer.Option(None, "--heads", help="width: block attention heads to keep"),
    audio_heads: Optional[int] = typer.Option(None, "--audio-heads", help="width: audio injector heads to keep"),
    ratio: Optional[float] = typer.Option(None, "--ratio", help="fraction to remove"),
    params: Optional[float] = typer.Option(None, "--params", help="parameter budget, e.g. 8e9"),
    injectors: str = typer.Option("drop", "--injectors", help="depth: drop | nearest (injectors on dropped blocks)"),
    parts: list[str] = typer.Option(["ffn", "heads"], "--part", help="width: ffn | heads | audio_heads (repeat)"),
    calibrate: int = typer.Option(0, "--calibrate", min=0, help="load the weights, score on N random inputs"),
    as_json: bool = typer.Option(False, "--json", help="print the plan's summary as JSON"),
) -> None:
    """Print what would be removed and the parameter count after (nothing is written)."""
    from compress.reference.calibration import random_dit_inputs  # torch
    from compress.prune.plan import plan_prune

    target = {k: v for k, v in dict(blocks=blocks, drop_blocks=drop_blocks, ffn_dim=ffn_dim, heads=heads,
                                    audio_heads=audio_heads, ratio=ratio, params=params).items() if v is not None}
    data = {"method": method, "injectors_on_dropped_blocks": injectors, "parts": parts,
            **({"target": target} if target else {})}
    try:
        config = PruneConfig.model_validate(data)
    except ValidationError as err:
        raise UserInputError("invalid prune options:\n" + "\n".join(
            f"  - {p}" for p in problems_from(err, data, PruneConfig))) from None
    resolved = resolve(model)
    network = resolved.load().eval() if calibrate else meta_model(*resolved.layout())
    calibration = random_dit_inputs(network, calibrate) if calibrate else None
    summary = plan_prune(network, config, calibration).summary()
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    table = Table(title=f"prune plan: {model} ({method}); nothing was changed", show_header=False)
    for key, value in summary.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) else format_metric(value))
    for key in ("params_before", "params_after"):
        table.add_row(key.replace("params", "bf16 bytes"), human_bytes(2 * summary[key]))
    stdout().print(table)
