"""Streaming quantization of the full-size Wan2.2-S2V DiT on a machine with less RAM than the model.

Writes a random 16.3B-parameter checkpoint in the official layout (bf16, ~32.6 GB, sharded like the
release), then runs the `quantize` stage in streaming mode for fp8_weight_only and int8_weight_only and
prints wall time, read+write throughput, peak RSS and output size, next to a plain copy of the same
files measured in the same run. Scratch files are removed at the end.

    python scripts/bench_quantize_streaming.py --scratch /tmp/bench   # needs ~50 GB free disk
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch

from compress import Recipe
from compress.artifacts.card import human_bytes
from compress.models import WanS2VTransformer3DModel
from compress.stages.quantize import QuantizeStage
from compress.utils.resources import ResourceMonitor


def write_checkpoint(directory: Path) -> float:
    start = time.perf_counter()
    model = WanS2VTransformer3DModel.from_preset("wan2.2-s2v-14b", device="meta")
    model.save_official(directory, max_shard_size="10GB", dtype=torch.bfloat16)
    return time.perf_counter() - start


def dir_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def plain_copy(source: Path, scratch: Path) -> dict:
    """Read and write every shard once (synced to disk), one copied shard on disk at a time."""
    target = scratch / "copy.safetensors"
    with ResourceMonitor() as monitor:
        for shard in sorted(source.glob("*.safetensors")):
            shutil.copyfile(shard, target)
            with open(target, "rb") as f:
                os.fsync(f.fileno())
            target.unlink()
    size = dir_bytes(source)
    return {"wall_s": monitor.wall_s, "throughput": 2 * size / monitor.wall_s, "peak_rss": monitor.peak_rss_bytes}


def quantize(scheme: str, scratch: Path) -> dict:
    stage = QuantizeStage(name=scheme, scheme=scheme, streaming=True)
    recipe = Recipe(model="official", output=f"runs-{scheme}", stages=[stage])
    artifact = recipe.run(root=scratch, quiet=True)[scheme]
    timing = artifact.manifest["timing"]
    read, written = dir_bytes(scratch / "official"), dir_bytes(artifact.path)
    result = {"wall_s": timing["wall_s"], "throughput": (read + written) / timing["wall_s"],
              "peak_rss": timing["peak_rss_bytes"], "output_bytes": written}
    shutil.rmtree(scratch / f"runs-{scheme}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scratch", type=Path, default=None, help="scratch directory (default: a new temp dir)")
    parser.add_argument("--schemes", nargs="+", default=["fp8_weight_only", "int8_weight_only"])
    args = parser.parse_args()
    os.environ.setdefault("WANDB_MODE", "disabled")
    scratch = Path(tempfile.mkdtemp(prefix="bench-quant-", dir=args.scratch))
    try:
        written_s = write_checkpoint(scratch / "official")
        size = dir_bytes(scratch / "official")
        print(f"checkpoint: {human_bytes(size)} in {written_s:.0f} s ({len(list((scratch / 'official').glob('*.safetensors')))} shards)")
        copy = plain_copy(scratch / "official", scratch)
        print(f"plain copy: {copy['wall_s']:.0f} s, {human_bytes(copy['throughput'])}/s read+write")
        print(f"{'scheme':<18}{'wall':>8}{'read+write':>14}{'of copy':>9}{'peak RSS':>11}{'output':>11}")
        for scheme in args.schemes:
            r = quantize(scheme, scratch)
            print(f"{scheme:<18}{r['wall_s']:>7.0f}s{human_bytes(r['throughput']) + '/s':>14}"
                  f"{r['throughput'] / copy['throughput']:>9.2f}{human_bytes(r['peak_rss']):>11}"
                  f"{human_bytes(r['output_bytes']):>11}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
