"""Markdown table of the phone's per-frame chain for the README: per lip-sync student preset and masked-input mode,
GMACs per output frame at the 256x256 face crop and the 480x832 portrait frame, and the implied fps on each phone
NPU's profile (Snapdragon 8 Gen 3 HTP, Apple A17 Pro ANE, MediaTek Dimensity 9300 APU), and which reach the budget
at 480x832. Analytic (meta device): no training, no weights, no device.
Usage: python scripts/phone_table.py"""

from __future__ import annotations

import torch

from compress.export.chain import chain_report
from compress.export.report import budget_report
from compress.export.targets import load_target
from compress.models.students import LIPSYNC_PRESETS, LipSyncStudent

PHONES = ("snapdragon-8gen3", "a17-pro", "dimensity-9300")
PORTRAIT = "-480x832"
MODES = ("target", "reference")


def rows() -> list[dict]:
    """One row per preset and mode: its chain report on each target, by target name (counted once per size: the
    phones differ only in throughput)."""
    table = []
    for preset, config in LIPSYNC_PRESETS.items():
        for mode in MODES:
            with torch.device("meta"):
                student = LipSyncStudent(**config, masked_input=mode)
            chains = {}
            for size in ("", PORTRAIT):
                counted = chain_report(student, load_target(PHONES[0] + size))
                for name in PHONES:
                    target = load_target(name + size)
                    chains[target.name] = {**counted, "budget": budget_report(
                        target, counted["gmacs_per_frame"] * 1e9, frames_per_call=1)}
            table.append({"preset": preset, "mode": mode, "chains": chains})
    return table


def markdown(table: list[dict]) -> str:
    face, portrait = load_target(PHONES[0]), load_target(PHONES[0] + PORTRAIT)
    sizes = [f"{t.shapes.height}x{t.shapes.width}" for t in (face, portrait)]
    header = ["preset", "mode", *(f"{size} GMACs/frame" for size in sizes),
              *(f"{name} fps ({' / '.join(sizes)})" for name in PHONES),
              f"{portrait.budget.fps:g} fps at {sizes[1]} on"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table:
        chains = row["chains"]
        gmacs = [f"{chains[name]['gmacs_per_frame']:.1f}" for name in (face.name, portrait.name)]
        fps = [" / ".join(f"{_fps(chains[name + size]):.1f}" for size in ("", PORTRAIT)) for name in PHONES]
        fits = [name for name in PHONES if _fps(chains[name + PORTRAIT]) >= portrait.budget.fps]
        lines.append(f"| {row['preset']} | {row['mode']} | {' | '.join(gmacs + fps)} | {', '.join(fits) or 'none'} |")
    return "\n".join(lines + ["", *_notes(table[0]["chains"])])


def _fps(chain: dict) -> float:
    return chain["budget"]["implied_fps"]


def _notes(chains: dict) -> list[str]:
    """Per-network GMACs shared by every preset, each budget's source and what the chain counts."""
    sized = [chains[PHONES[0]], chains[PHONES[0] + PORTRAIT]]
    parts = [f"{name}: " + ", ".join(f"{c['height']}x{c['width']} {c['networks'][name]['gmacs_per_frame']:.1f}"
                                     for c in sized)
             for name in ("driving-frame encoder", "tiny VAE decoder")]
    first = sized[0]
    chain = "; ".join(f"{name} ({network['runs']})" for name, network in first["networks"].items())
    budgets = []
    for name in PHONES:
        budget = load_target(name).budget
        budgets.append(f"{name}: {budget.effective_gmacs_per_s:g} GMAC/s ({' '.join(budget.source.split())})")
    return [f"Chain per output frame: {chain}. "
            f"Audio: {first['audio_features']}. GMACs per frame of the shared networks: {'; '.join(parts)}.",
            f"fps = the target's GMAC/s / chain GMACs per frame; budget {load_target(PHONES[0]).budget.fps:g} fps. "
            + "; ".join(budgets) + f". GMACs: {first['source']}. `target` mode encodes every driving frame; "
            "`reference` mode does not."]


def main() -> None:
    print(markdown(rows()))


if __name__ == "__main__":
    main()
