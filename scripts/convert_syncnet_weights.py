"""Convert the published SyncNet weights (`syncnet_v2.model` of joonson/syncnet_python, a torch-saved state
dict) to safetensors with this toolkit's key names, for tier C lip-sync scores.

    python scripts/convert_syncnet_weights.py /models/syncnet_v2.model /models/syncnet_v2.safetensors

The file is read with `torch.load(weights_only=True)` (no code runs); missing, unexpected and mis-shaped keys
are listed by name. Nothing is downloaded: get the file yourself under its licence.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from compress.errors import UserInputError
from compress.evaluate.sync.syncnet import convert_original_state, save_syncnet_weights


def convert(source: Path, dest: Path) -> int:
    """Write `dest`; returns the number of tensors."""
    if not source.is_file():
        raise UserInputError(f"no such file '{source}'")
    try:
        state = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as error:  # a pickle with code in it, or not a torch file at all
        raise UserInputError(f"'{source}' is not a plain torch state dict readable with weights_only=True "
                             f"({type(error).__name__}: {str(error).splitlines()[0]})") from None
    if not isinstance(state, dict):
        raise UserInputError(f"'{source}' holds a {type(state).__name__}, expected a state dict")
    converted = convert_original_state(state, str(source))
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_syncnet_weights(converted, dest)
    return len(converted)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="syncnet_v2.model (torch state dict)")
    parser.add_argument("dest", type=Path, help="output .safetensors")
    args = parser.parse_args(argv)
    try:
        count = convert(args.source, args.dest)
    except UserInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.dest} ({count} tensors)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
