"""Markdown tables of the phone's per-frame chain for the README.

Analytic (meta device: no training, no weights, no device): per lip-sync student preset and masked-input mode,
GMACs per output frame at the 256x256 face crop and the 480x832 portrait frame, the implied fps on each phone
NPU's profile (Snapdragon 8 Gen 3 HTP, Apple A17 Pro ANE, MediaTek Dimensity 9300 APU), and which reach the budget
at 480x832.
Measured (`--measured RUN`): every export stage of a run (e.g. recipes/phone-presets.yaml), one row per student
and target: what verified it, its numeric error, the NPU's share, the chain's frames against torch, the chain's
GMACs and implied fps at the export's size and (analytic) at 480x832, and the export stage's wall time.
Usage: python scripts/phone_table.py [--measured runs/phone-presets]"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from compress.artifacts import Artifact
from compress.export.chain import chain_report
from compress.export.chain_frames import DECODER_DIR
from compress.export.rows import target_row
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


def measured(run: Path) -> str:
    """One row per export stage of `run`: the student preset, the target's row and what the NPU took."""
    header = ["student", "target", "size", "precision", "verified on", "error (what)", "off the NPU",
              "chain frames vs torch", "chain GMACs/frame (480x832)", "implied fps (480x832)", "export time"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for manifest in sorted(run.glob("*/manifest.json")):
        artifact = Artifact.open(manifest.parent)
        if artifact.manifest["kind"] != "export":
            continue
        report = json.loads((artifact.path / "report.json").read_text())
        student = Artifact.open(run / Path(artifact.manifest["input"]["path"]).name)  # a stage of the same run
        row = target_row(report)
        portrait = _portrait_chain(student.path, row["target"])
        cells = [student.manifest["stage_config"].get("student", student.manifest["name"]), row["target"],
                 _size(report), _precision(report), row["verified_on"], _error(report, row), _off_npu(report),
                 _frames(artifact.path), f"{_number(row['chain_gmacs_per_frame'])} ({portrait['gmacs_per_frame']:.1f})",
                 f"{_number(row['implied_fps'])} ({_fps(portrait):.1f})",
                 f"{artifact.manifest['timing']['wall_s'] / 60:.1f} min"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _portrait_chain(student: Path, target: str) -> dict:
    """The chain's cost at 480x832 on `target` for the student saved at `student` (meta device, its config)."""
    with torch.device("meta"):
        model = LipSyncStudent.from_config(LipSyncStudent.load_config(student))
    return chain_report(model, load_target(target + PORTRAIT))


def _size(report: dict) -> str:
    chain = report.get("chain") or {}
    return f"{chain['height']}x{chain['width']}" if "height" in chain else "-"


def _precision(report: dict) -> str:
    coreml = report.get("coreml")
    return f"{coreml['compute_precision']}, {coreml['weights']} weights" if coreml else report["precision"]


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _error(report: dict, row: dict) -> str:
    """The row's numeric error and what it compares; for Core ML off macOS, its float16 emulation, labelled."""
    if row["numeric_error"] is not None:
        return f"{row['numeric_error']:.4f} ({row['numeric_error_of']})"
    emulation = report.get("coreml", {}).get("float16_emulation")
    return f"{emulation['rel_l2']:.4f} (torch float16 emulation, not Core ML)" if emulation else "-"


def _off_npu(report: dict) -> str:
    """What would not run on the NPU: nodes off the HTP (with HTP vs onnxruntime QDQ), ops outside the ANE or APU."""
    if "htp" in report:
        htp = report["htp"]
        return (f"{1 - htp['htp_share']:.0%} of nodes (HTP vs QDQ {htp['vs_cpu_qdq']['rel_l2']:.4f})"
                if "vs_cpu_qdq" in htp else f"HTP {htp['status']}")
    if "coreml" in report:
        return ", ".join(report["coreml"]["may_leave_ane"]) or "none"
    if "litert" in report:
        part = report["litert"]
        return ", ".join((part["quantized"] if "quantized" in part else part["float"])["not_on_apu"]) or "none"
    return "-"  # a CPU target


def _frames(export: Path) -> str:
    """The chain's frames (student + decoder) against torch, from the decoder's report."""
    decoder = export / DECODER_DIR / "report.json"
    frames = json.loads(decoder.read_text()).get("chain_frames", {}) if decoder.is_file() else {}
    psnrs = [f"{name.removesuffix('_psnr_db').replace('_', ' ')} {value:.1f} dB"
             for name, value in frames.items() if name.endswith("_psnr_db") and value is not None]
    return ", ".join(psnrs) or frames.get("not_run", "-").split(" (")[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measured", type=Path, help="a run directory whose export stages to tabulate")
    args = parser.parse_args()
    print(measured(args.measured) if args.measured else markdown(rows()))


if __name__ == "__main__":
    main()
