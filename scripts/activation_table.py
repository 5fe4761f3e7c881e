"""Activation peak of one 14B DiT forward above its weights, plain vs lean, and the FP8-on-one-4090 verdict.

This is the command behind the README's memory-lean forward table:

    python scripts/activation_table.py            # simulated (fake tensors), ~5 min on 2 CPU cores
    python scripts/activation_table.py --quick    # analytic lean figures only, seconds

Upstream's figures are teacher.md's fake-tensor profile of upstream's code (bf16, batch 1, motion tokens).
The measured column runs one forward on CUDA (random weights) under max_memory_allocated when a GPU is
present (the same as `compress vram ... --source measured --memory-mode lean|plain`).
"""

from __future__ import annotations

import argparse

import torch

from compress.memory import ModelSpec, Workload, plan_memory
from compress.memory.analytic import dit_activations
from compress.memory.render import GB

GIB = 2**30
TEACHER = "wan2.2-s2v-14b"
# (width, height, pixel frames) and upstream's activations above weights in GiB (teacher.md)
SIZES = [((480, 832, 48), 6.24), ((480, 832, 80), 9.70), ((704, 1280, 80), 21.87)]
VERDICT = ("rtx4090", Workload(480, 832, frames=48), "offload", "fp8_weight_only")


def _forward_args(workload: Workload) -> tuple:
    return workload.dit_batch, workload.latent_frames, workload.latent_hw, workload.motion


def _measured(spec: ModelSpec, workload: Workload, mode: str) -> str:
    if not torch.cuda.is_available():
        return "not measured"
    from compress.memory.measure import measure_dit

    return f"{measure_dit(spec, *_forward_args(workload), memory_mode=mode).activations / GIB:.2f}"


def table(spec: ModelSpec, quick: bool) -> None:
    print("| size, frames | upstream (teacher.md) | plain, simulated | lean, simulated | lean, analytic | "
          "lean / upstream | plain, measured | lean, measured |")
    print("|---|---|---|---|---|---|---|---|")
    for (width, height, frames), upstream in SIZES:
        workload = Workload(width, height, frames=frames)
        args = _forward_args(workload)
        analytic = sum(item.bytes for item in dit_activations(spec, *args)) / GIB
        if quick:
            plain = lean = "-"
            ratio = analytic / upstream
        else:
            from compress.memory.simulate import simulate_dit

            plain_gib, lean_gib = (simulate_dit(spec, *args, memory_mode=mode).activations / GIB
                                   for mode in ("plain", "lean"))
            plain, lean, ratio = f"{plain_gib:.2f}", f"{lean_gib:.2f}", lean_gib / upstream
        print(f"| {width}x{height} x {frames} | {upstream:.2f} | {plain} | {lean} | {analytic:.2f} | {ratio:.2f} | "
              f"{_measured(spec, workload, 'plain')} | {_measured(spec, workload, 'lean')} |")


def verdict(spec: ModelSpec, source: str) -> None:
    target, workload, layout, scheme = VERDICT
    plan = plan_memory(spec.quantized(scheme), target, workload, layout, source, suggest=False)
    print(f"\n`compress vram {TEACHER} -t {target} --size {workload.size} --frames {workload.frames} --layout {layout} "
          f"--quantize {scheme} --source {source}` (text and audio encoders on CPU, VAE loaded after the DiT):")
    print(f"{'fits' if plan.fits else 'does not fit'}: peak {plan.peak_bytes / GB:.2f} GB "
          f"({plan.peak_bytes / GIB:.2f} GiB) of {plan.target.memory_bytes / GB:.2f} GB, "
          f"margin {plan.margin_bytes / GB:+.2f} GB ({plan.margin_bytes / GIB:+.2f} GiB)")
    for item in sorted(plan.breakdown, key=lambda i: -i.bytes)[:6]:
        print(f"  {item.name}: {item.bytes / GB:.2f} GB ({item.source}) {item.note}".rstrip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="analytic figures only (no fake-tensor simulation)")
    quick = parser.parse_args().quick
    spec = ModelSpec.load(TEACHER)
    print("Activations above weights of one DiT forward (GiB), bf16, batch 1, motion tokens, "
          "lean chunk 4096 tokens.\n")
    table(spec, quick)
    verdict(spec, "analytic" if quick else "simulated")


if __name__ == "__main__":
    main()
