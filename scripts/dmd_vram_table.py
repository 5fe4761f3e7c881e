"""Markdown table for the README: can the 14B be DMD-trained on N x H100 / H800? LiveAvatar's setting (480*832,
48 frames plus its 73 motion frames, LoRA rank 128, 4 generator steps), each row planned by
compress.memory.plan_dmd. Usage: python scripts/dmd_vram_table.py"""

from __future__ import annotations

from compress.distill.config import DEFAULT_TARGETS
from compress.memory import DmdSetup, ModelSpec, Workload, load_catalog, plan_dmd
from compress.memory.render import GB

TEACHER = "wan2.2-s2v-14b"
CLIP = Workload(480, 832, frames=48)
ROWS = [(gpus, sharding, checkpointing, generator) for generator in (None, "fp8_weight_only")
        for checkpointing in (True, False) for gpus, sharding in ((1, "fsdp"), (2, "fsdp"), (4, "fsdp"), (8, "fsdp"))]
ROWS += [(8, "zero2", True, None), (8, "ddp", True, None)]


def main() -> None:
    teacher = ModelSpec.load(TEACHER)
    fp8 = teacher.quantized("fp8_weight_only")
    gpus_ = load_catalog().gpus
    print("Produced by `python scripts/dmd_vram_table.py`; per-GPU peak, sizes in GB (1e9 bytes), analytic. "
          f"H100 and H800 both have {gpus_['h100'].memory_bytes / GB:.2f} GB: one verdict for both.\n")
    print("| GPUs, sharding | checkpointing | generator base | `compress vram wan2.2-s2v-14b -t h800 --task dmd-train "
          "--frames 48 ...` | per-GPU peak (phase) | fits H100 / H800 (margin) | largest items (GB) |")
    print("|---|---|---|---|---|---|---|")
    for gpus, sharding, checkpointing, generator in ROWS:
        setup = DmdSetup(tuple(DEFAULT_TARGETS), gpus=gpus, sharding=sharding, checkpointing=checkpointing)
        plan = plan_dmd(teacher, "h800", CLIP, setup, fp8 if generator else None, suggest=False)
        flags = (f"--gpus {gpus}{'' if sharding == 'fsdp' else ' --sharding ' + sharding}"
                 f"{'' if checkpointing else ' --no-checkpointing'}"
                 f"{' --generator-base ' + generator if generator else ''}")
        items = sorted(plan.breakdown, key=lambda i: -i.bytes)[:4]
        detail = ", ".join(f"{i.name} {i.bytes / GB:.2f}" for i in items)
        print(f"| {gpus} x, {sharding} | {'on' if checkpointing else 'off'} | {generator or 'same (teacher)'} | "
              f"`{flags}` | {plan.peak_bytes / GB:.2f} ({plan.worst.phase}) | "
              f"{'yes' if plan.fits else 'no'} ({plan.margin_bytes / GB:+.2f}) | {detail} |")


if __name__ == "__main__":
    main()
