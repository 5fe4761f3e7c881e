"""`compress export onnx MODEL --target snapdragon-8gen3`: export, quantize and verify, then print the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from compress.cli.common import stdout
from compress.errors import UserInputError
from compress.export.targets import load_target
from compress.sources import resolve
from compress.stages.export import stage_metrics

app = typer.Typer(no_args_is_help=True, help="Export models for devices (ONNX, QDQ, QNN HTP).")


@app.command("onnx")
def onnx_command(
    model: str = typer.Argument(..., help="an artifact, a model directory or a preset name"),
    target: str = typer.Option("snapdragon-8gen3", "--target", "-t", help="built-in target or profile YAML"),
    quantize: Optional[str] = typer.Option(None, "--quantize", help="w8a16 | w8a8 | none (default: the target's)"),
    reference: Optional[Path] = typer.Option(None, "--reference", help="a reference artifact for calibration"),
    out: Path = typer.Option(Path("export"), "--out", "-o", help="output directory"),
    batches: int = typer.Option(8, "--calibration-batches", min=1),
    allow_wrong_htp: bool = typer.Option(False, "--allow-wrong-htp", help="keep an export whose HTP output differs "
                                         "from onnxruntime's (marked 'HTP output wrong' in the report) instead of "
                                         "failing"),
    decoder: Optional[str] = typer.Option(None, "--decoder", help="a tiny VAE decoder (artifact, directory or "
                                          "preset) exported beside a lip-sync student into OUT/decoder: the chain"),
    as_json: bool = typer.Option(False, "--json", help="print the whole report as JSON"),
) -> None:
    """Export to ONNX for a target, check parity, quantize (QDQ) and run on the HTP simulator when available."""
    from compress.export import ExportRequest, example_inputs, run_export  # onnx, onnxruntime, torch
    from compress.export.calibration import export_calibration
    from compress.export.chain_frames import check_chain, export_decoder
    from compress.export.onnx_export import check_exportable
    from compress.reference import ReferenceArtifact

    if quantize not in (None, "w8a16", "w8a8", "none"):
        raise UserInputError(f"--quantize: expected w8a16, w8a8 or none; found '{quantize}'")
    profile = load_target(target)
    source = resolve(model)
    check_exportable(source.layout()[0], model)
    loaded = source.load(device="cpu").float().eval()
    chain_decoder = resolve(decoder).load(device="cpu").float().eval() if decoder else None
    if chain_decoder is not None:
        check_chain(loaded, chain_decoder)
    example = example_inputs(loaded, profile)
    calibration, sources = export_calibration(loaded, example, ReferenceArtifact(reference) if reference else None,
                                               batches)
    console = stdout()
    request = ExportRequest(loaded, profile, quantize, calibration, sources, allow_wrong_htp=allow_wrong_htp)

    def log(message: str) -> None:
        console.print(message, highlight=False)

    report = run_export(request, out, log=log)
    if chain_decoder is not None:
        report["decoder"] = export_decoder(request, chain_decoder, out, log)
    if as_json:
        print(json.dumps(report, indent=2, default=str))
        return
    table = Table(title=f"{model} -> {profile.name} ({out / 'report.json'})", show_header=False)
    for key, value in stage_metrics(report).items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    if report.get("htp", {}).get("reason"):
        table.add_row("htp", report["htp"]["reason"])
    console.print(table)
