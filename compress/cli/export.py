"""`compress export onnx MODEL --target snapdragon-8gen3 [--target a17-pro ...]`: export, quantize and verify for each
target, then print the report (one target) or one row per target (several, each in OUT/<target>/)."""

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
from compress.export.rows import target_row
from compress.stages.export import stage_metrics

app = typer.Typer(no_args_is_help=True, help="Export models for devices (ONNX + QDQ + QNN HTP, Core ML, LiteRT).")


@app.command("onnx")
def onnx_command(
    model: str = typer.Argument(..., help="an artifact, a model directory or a preset name"),
    targets: list[str] = typer.Option(["snapdragon-8gen3"], "--target", "-t", help="built-in target or profile YAML; "
                                      "repeat it for several targets (each exported into OUT/<target>/)"),
    quantize: Optional[str] = typer.Option(None, "--quantize", help="w8a16 | w8a8 | none (default: the target's)"),
    reference: Optional[Path] = typer.Option(None, "--reference", help="a reference artifact for calibration"),
    out: Path = typer.Option(Path("export"), "--out", "-o", help="output directory"),
    batches: int = typer.Option(8, "--calibration-batches", min=1),
    allow_wrong_htp: bool = typer.Option(False, "--allow-wrong-htp", help="keep an export whose HTP output differs "
                                         "from onnxruntime's (marked 'HTP output wrong' in the report) instead of "
                                         "failing"),
    decoder: Optional[str] = typer.Option(None, "--decoder", help="a tiny VAE decoder of image latents (artifact, "
                                          "directory or preset, e.g. tiny-frame-decoder) exported beside a lip-sync "
                                          "student into OUT/decoder: the chain"),
    as_json: bool = typer.Option(False, "--json", help="print the whole report as JSON"),
) -> None:
    """Export for each target (ONNX + QDQ + HTP simulator, Core ML, or LiteRT + its CPU interpreter) and check it."""
    from compress.export import ExportRequest, example_inputs, run_export  # onnx, onnxruntime, torch
    from compress.export.calibration import export_inputs
    from compress.export.chain_frames import export_decoder
    from compress.models.students.chain import check_chain
    from compress.export.onnx_export import check_exportable
    from compress.export.pipeline import require_converter
    from compress.reference import ReferenceArtifact

    if quantize not in (None, "w8a16", "w8a8", "none"):
        raise UserInputError(f"--quantize: expected w8a16, w8a8 or none; found '{quantize}'")
    profiles = [load_target(name) for name in dict.fromkeys(targets)]
    for profile in profiles:  # every converter is checked before the first export starts
        require_converter(profile)
    source = resolve(model)
    check_exportable(source.layout()[0], model)
    loaded = source.load(device="cpu").float().eval()
    chain_decoder = resolve(decoder).load(device="cpu").float().eval() if decoder else None
    if chain_decoder is not None:
        check_chain(loaded, chain_decoder, "export with a decoder")
    console = stdout()

    def log(message: str) -> None:
        console.print(message, highlight=False)

    reports = {}
    for profile in profiles:
        target_out = out / profile.name if len(profiles) > 1 else out
        example = example_inputs(loaded, profile)
        inputs = export_inputs(loaded, example, ReferenceArtifact(reference) if reference else None, batches)
        request = ExportRequest(loaded, profile, quantize, **inputs, allow_wrong_htp=allow_wrong_htp)
        report = run_export(request, target_out, log=log)
        if chain_decoder is not None:
            report["decoder"] = export_decoder(request, chain_decoder, target_out, log)
        reports[profile.name] = report
    if as_json:
        print(json.dumps(reports if len(profiles) > 1 else report, indent=2, default=str))
    elif len(profiles) > 1:
        console.print(rows_table(model, [target_row(r) for r in reports.values()]))
    else:
        console.print(metrics_table(f"{model} -> {profile.name} ({out / 'report.json'})", report))


def metrics_table(title: str, report: dict) -> Table:
    table = Table(title=title, show_header=False)
    for key, value in stage_metrics(report).items():
        table.add_row(key, _cell(value))
    if report.get("htp", {}).get("reason"):
        table.add_row("htp", report["htp"]["reason"])
    return table


def rows_table(model: str, rows: list[dict]) -> Table:
    """One row per target: what every target shares (`compress.export.rows.target_row`)."""
    table = Table(title=f"{model}: one row per target (each target's report.json in its folder)")
    for column in rows[0]:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(v) for v in row.values()))
    return table


def _cell(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else "-" if value is None else str(value)
