"""Markdown table of the phone's per-frame chain for the README: per lip-sync student preset and masked-input mode,
GMACs per output frame and the implied fps on the Snapdragon 8 Gen 3 profiles (256x256 face crop, 480x832 portrait),
and which fit the budget at 480x832. Analytic (meta device): no training, no weights, no HTP.
Usage: python scripts/phone_table.py"""

from __future__ import annotations

import torch

from compress.export.chain import chain_report
from compress.export.targets import load_target
from compress.models.students import LIPSYNC_PRESETS, LipSyncStudent

TARGETS = ("snapdragon-8gen3", "snapdragon-8gen3-480x832")
MODES = ("target", "reference")


def rows() -> list[dict]:
    """One row per preset and mode: its chain report on each target, by target name."""
    targets = [load_target(name) for name in TARGETS]
    table = []
    for preset, config in LIPSYNC_PRESETS.items():
        for mode in MODES:
            with torch.device("meta"):
                student = LipSyncStudent(**config, masked_input=mode)
            table.append({"preset": preset, "mode": mode,
                          "chains": {t.name: chain_report(student, t) for t in targets}})
    return table


def markdown(table: list[dict]) -> str:
    portrait = load_target(TARGETS[-1])
    sizes = [load_target(name).shapes for name in TARGETS]
    header = ["preset", "mode", *(f"{s.height}x{s.width} {col}" for s in sizes for col in ("GMACs/frame", "fps")),
              f"fits {portrait.budget.fps:g} fps at {portrait.shapes.height}x{portrait.shapes.width}"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table:
        chains = [row["chains"][name] for name in TARGETS]
        cells = [f"{c['gmacs_per_frame']:.1f} | {c['budget']['implied_fps']:.1f}" for c in chains]
        fits = "yes" if chains[-1]["budget"]["implied_fps"] >= portrait.budget.fps else "no"
        lines.append(f"| {row['preset']} | {row['mode']} | {' | '.join(cells)} | {fits} |")
    return "\n".join(lines + ["", *_notes(table[0]["chains"], portrait)])


def _notes(chains: dict, portrait) -> list[str]:
    """Per-network GMACs shared by every preset, the budget's source and what the chain counts."""
    parts = [f"{name}: " + ", ".join(f"{c['height']}x{c['width']} {c['networks'][name]['gmacs_per_frame']:.1f}"
                                     for c in chains.values())
             for name in ("driving-frame encoder", "tiny VAE decoder")]
    first = next(iter(chains.values()))
    chain = "; ".join(f"{name} ({network['runs']})" for name, network in first["networks"].items())
    return [f"Chain per output frame: {chain}. "
            f"Audio: {first['audio_features']}. GMACs per frame of the shared networks: {'; '.join(parts)}.",
            f"fps = {portrait.budget.effective_gmacs_per_s:g} GMAC/s / chain GMACs per frame ({portrait.budget.source}"
            f"); budget {portrait.budget.fps:g} fps = {portrait.budget.ms_per_frame:.0f} ms per frame. "
            f"GMACs: {first['source']}. `target` mode encodes every driving frame; `reference` mode does not."]


def main() -> None:
    print(markdown(rows()))


if __name__ == "__main__":
    main()
