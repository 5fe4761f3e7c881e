"""Markdown table of `compress vram` for the README: the FSDP-on-5x4090 claim, single-GPU options and LiveAvatar's
layout, each row planned by compress.memory. Usage: python scripts/vram_table.py [--source simulated]"""

from __future__ import annotations

import argparse
import shlex
import sys

from compress.memory import Layout, ModelSpec, Workload, plan_memory
from compress.memory.render import GB

TEACHER = "wan2.2-s2v-14b"
CLIP = ("480*832", 80, True)  # upstream's default clip: size, pixel frames, CFG
LIVE = ("720*400", 48, False)  # LiveAvatar: 12 latent frames at 720x400, distilled (no CFG)

ROWS = [  # setup, GPU, layout, extra layout options, quantize, workload, CLI flags for those options
    ("claim: 5 x 4090, FSDP", None, None, {}, None, CLIP, ""),
    ("5 x 4090, FSDP, all parts on every GPU", "rtx4090", "fsdp:5", {}, None, CLIP, ""),
    ("5 x 4090, FSDP, text encoder on CPU", "rtx4090", "fsdp:5", {"text_encoder": "cpu"}, None, CLIP,
     "--offload text_encoder"),
    ("5 x 4090, FSDP + Ulysses, text encoder on CPU", "rtx4090", "fsdp:5", {"text_encoder": "cpu", "sp": True},
     None, CLIP, "--offload text_encoder --sequence-parallel"),
    ("1 x 4090, bf16", "rtx4090", "single", {}, None, CLIP, ""),
    ("1 x 4090, FP8 weight-only, offload", "rtx4090", "offload", {}, "fp8_weight_only", CLIP, ""),
    ("1 x 4090, FP8 dynamic, offload", "rtx4090", "offload", {}, "fp8_dynamic", CLIP, ""),
    ("1 x 4090, bf16, block-offload", "rtx4090", "block-offload", {}, None, CLIP, ""),
    ("1 x H100, bf16", "h100", "single", {}, None, CLIP, ""),
    ("LiveAvatar TPP, 5 x H800, bf16", "h800", "pipeline:5", {}, None, LIVE, ""),
    ("LiveAvatar TPP, 5 x H800, FP8", "h800", "pipeline:5", {}, "fp8_dynamic", LIVE, ""),
    ("LiveAvatar TPP, 5 x L40S (48 GB), bf16", "l40s", "pipeline:5", {}, None, LIVE, ""),
    ("LiveAvatar TPP, 5 x L40S (48 GB), FP8", "l40s", "pipeline:5", {}, "fp8_dynamic", LIVE, ""),
    ("LiveAvatar TPP, 5 x 4090, FP8", "rtx4090", "pipeline:5", {}, "fp8_dynamic", LIVE, ""),
]
CLAIM = ("| claim: 5 x 4090, FSDP | - | 25.65 GB of 22.15 usable | no (quoted) | \"21.48 GB shard + 4.17 GB to "
         "unshard\"; the 4.17 is the root FSDP unit in GiB (every non-block parameter: 4.48 GB), no DiT "
         "shard is 21.48 GB (32.59 / 5 = 6.52 GB) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", default="analytic", choices=("analytic", "simulated"))
    source = parser.parse_args().source
    teacher = ModelSpec.load(TEACHER)
    specs = {None: teacher, **{s: teacher.quantized(s) for s in ("fp8_dynamic", "fp8_weight_only")}}
    print(f"Produced by `python scripts/{' '.join(map(shlex.quote, ['vram_table.py', *sys.argv[1:]]))}`; "
          f"per-GPU peak of the worst GPU, sizes in GB (1e9 bytes), source {source} for the DiT.\n")
    print("| setup | `compress vram wan2.2-s2v-14b ...` | per-GPU peak | fits (margin) | largest items (GB) |")
    print("|---|---|---|---|---|")
    for label, gpu, layout, options, quantize, (size, frames, cfg), flags in ROWS:
        if gpu is None:
            print(CLAIM)
            continue
        options = dict(options)
        sp = options.pop("sp", False)
        workload = Workload(frames=frames, cfg=cfg).with_size(size)
        layout_ = Layout.parse(layout, placement=options, sequence_parallel=sp)
        plan = plan_memory(specs[quantize], gpu, workload, layout_, source, suggest=False)
        command = (f"-t {gpu} --size {size} --frames {frames}{'' if cfg else ' --no-cfg'} --layout {layout}"
                   f"{' --quantize ' + quantize if quantize else ''} {flags}").strip()
        items = sorted(plan.breakdown, key=lambda i: -i.bytes)[:5]
        detail = ", ".join(f"{i.name} {i.bytes / GB:.2f}" for i in items)
        fits = f"{'yes' if plan.fits else 'no'} ({plan.margin_bytes / GB:+.2f})"
        print(f"| {label} | `{command}` | {plan.peak_bytes / GB:.2f} of {plan.target.memory_bytes / GB:.2f} | "
              f"{fits} | {detail} |")


if __name__ == "__main__":
    main()
