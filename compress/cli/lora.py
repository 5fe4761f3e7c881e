"""`compress lora convert`: LiveAvatar's LoRA file <-> our peft adapters (the `adapters/` of a LoRA artifact)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from compress.cli.common import bounded, stdout

app = typer.Typer(no_args_is_help=True, help="LoRA adapters of the S2V DiT in other formats.")


class Format(str, Enum):
    liveavatar = "liveavatar"
    peft = "peft"


class Dtype(str, Enum):
    bfloat16 = "bfloat16"
    float32 = "float32"


@app.command("convert")
def convert(
    source: Path = typer.Argument(..., help="--to peft: a LiveAvatar file (.safetensors/.pt); --to liveavatar: a peft "
                                            "adapter directory, or an artifact holding adapters/"),
    target: Path = typer.Argument(..., help="--to peft: a directory; --to liveavatar: a .safetensors file"),
    to: Format = typer.Option(..., "--to", help="the format to write"),
    alpha: Optional[float] = typer.Option(None, "--alpha", callback=bounded(1e-6, 1e6),
                                          help="--to peft: LiveAvatar's lora_alpha (default: the file's metadata, "
                                               "else 64)"),
    dtype: Dtype = typer.Option(Dtype.bfloat16, "--dtype", help="--to liveavatar: tensor dtype (bfloat16 as "
                                                                "LiveAvatar's; float32 keeps every bit)"),
) -> None:
    """Convert LoRA adapters between LiveAvatar's format and ours (peft on our module names)."""
    import torch

    from compress.distill.lora import ADAPTERS_DIR
    from compress.models.s2v.liveavatar_lora import (read_liveavatar_lora, read_peft_adapters, write_liveavatar_lora,
                                                     write_peft_adapters)

    if to is Format.peft:
        lora = read_liveavatar_lora(source, alpha)
        written = write_peft_adapters(lora, target, base=str(source))
    else:
        adapters = source / ADAPTERS_DIR if (source / ADAPTERS_DIR).is_dir() else source
        lora = read_peft_adapters(adapters)
        written = write_liveavatar_lora(lora, target, getattr(torch, dtype.value))
    console = stdout()
    console.print(f"{written}: {len(lora.pairs)} modules, rank {lora.rank}, alpha {lora.alpha:g}, "
                  f"{lora.num_parameters():,} parameters", highlight=False)
    if to is Format.liveavatar:
        console.print(f"LiveAvatar reads rank and alpha from its training config: set lora_rank: {lora.rank} and "
                      f"lora_alpha: {lora.alpha:g} there (liveavatar/configs/s2v_causal_sft.yaml)", highlight=False)
