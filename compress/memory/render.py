"""A MemoryPlan as rich tables for the CLI."""

from __future__ import annotations

from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .planner import MemoryPlan

GB = 1e9


def gb(n: float) -> str:
    return f"{n / GB:.2f} GB"


def verdict(plan: MemoryPlan) -> str:
    if plan.fits:
        return f"fits: peak {gb(plan.peak_bytes)} of {gb(plan.target.memory_bytes)}, margin {gb(plan.margin_bytes)}"
    return (f"does not fit: peak {gb(plan.peak_bytes)} of {gb(plan.target.memory_bytes)}, "
            f"{gb(-plan.margin_bytes)} short")


def _cfg(workload) -> str:
    return "off" if not workload.cfg else ("batched" if workload.cfg_batched else "2 forwards")


def render(plan: MemoryPlan) -> Group:
    w, lay = plan.workload, plan.layout
    cfg = _cfg(w)
    parts = [Text(f"{plan.model} ({plan.parameters / 1e9:.2f}B parameters) on {plan.target.name} "
                  f"({gb(plan.target.memory_bytes)})\n"
                  f"size {w.size}, {w.frames} frames, batch {w.batch}, CFG {cfg}; layout {lay.label}; "
                  f"placement {', '.join(f'{k}={v}' for k, v in lay.placement.items())}; source {plan.source}, "
                  f"{plan.memory_mode} forward")]
    parts += _verdict_tables(plan)
    parts += [Text(f"note: {note}", style="dim") for note in plan.notes]
    return Group(*parts)


def _gpu_table(gpu) -> Table:
    phases = ", ".join(f"{name} {gb(size)}" for name, size in gpu.phases.items())
    table = Table(title=f"{gpu.role} (x{gpu.count}): peak in phase '{gpu.phase}' ({phases})", title_justify="left")
    for column, justify in (("item", "left"), ("size", "right"), ("source", "left"), ("note", "left")):
        table.add_column(column, justify=justify)
    for item in gpu.breakdown:
        table.add_row(escape(item.name), gb(item.bytes), item.source, escape(item.note))
    table.add_row("total", gb(gpu.peak_bytes), "", "", style="bold")
    return table


def _verdict_tables(plan) -> list:
    """Each GPU's breakdown at its peak, the verdict, and the suggested changes (a MemoryPlan or TrainingPlan)."""
    parts = [_gpu_table(gpu) for gpu in plan.gpus]
    parts.append(Text(verdict(plan), style="bold green" if plan.fits else "bold red"))
    if plan.suggestions:
        table = Table(title="changes, cheapest first (analytic)", title_justify="left")
        for column in ("cost", "change", "peak", "fits", "margin"):
            table.add_column(column)
        for s in plan.suggestions:
            fits = "yes" if s.fits else "no"
            table.add_row(str(s.cost), escape(s.change), gb(s.peak_bytes), fits, gb(s.margin_bytes))
        parts.append(table)
    return parts


def render_training(plan) -> Group:
    """A TrainingPlan (compress.memory.training) as rich tables."""
    w, setup = plan.workload, plan.setup
    cfg = _cfg(w)
    lora = ", ".join(f"{name} {count / 1e6:.0f}M" for name, count in plan.lora_parameters.items())
    header = Text(f"DMD training of {plan.model} (generator base: {plan.generator}) on {setup.label} x "
                  f"{plan.target.name} ({gb(plan.target.memory_bytes)} each)\n"
                  f"size {w.size}, {w.frames} frames + motion frames, batch {w.batch} per GPU, real score CFG {cfg}; "
                  f"LoRA rank {setup.lora_rank} ({lora} parameters); {setup.steps} generator steps; "
                  f"activation checkpointing {'on' if setup.checkpointing else 'off'}; activations {plan.source}")
    return Group(header, *_verdict_tables(plan), *[Text(f"note: {note}", style="dim") for note in plan.notes])
