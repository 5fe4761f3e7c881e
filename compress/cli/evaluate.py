"""`compress eval ARTIFACT --suite NAME` and `compress leaderboard [DIR]`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from compress.artifacts import Artifact
from compress.cli.common import bounded, one_of, stdout
from compress.errors import UserInputError
from compress.evaluate.records import make_record, write_record
from compress.evaluate.suite import load_suite
from compress.pipelines.sampling import SAMPLERS, SamplingOverride
from compress.utils.console import Console

DEFAULT_BOARD = Path("eval/leaderboard")


def find_reference(artifact, suite, explicit: Path | None):
    """The reference artifact: --reference, else the suite's `inputs` path, else the one the artifact's own stage
    named (a sibling directory of the same run)."""
    if explicit is not None:
        return Artifact.open(explicit)
    if suite.inputs != "reference":
        return Artifact.open(suite.inputs)
    name = artifact.manifest.get("stage_config", {}).get("reference")
    siblings = [p for p in artifact.path.parent.glob(f"*-{name}") if Artifact.is_artifact(p)] if name else []
    if len(siblings) == 1:
        return Artifact.open(siblings[0])
    raise UserInputError(f"{artifact.path}: no reference artifact to compare with; give --reference PATH "
                         f"(a finished reference stage's directory)")


def eval_command(
    artifact: Path = typer.Argument(..., help="an artifact directory (a model, or an export with model.onnx)"),
    suite: str = typer.Option("default", "--suite", help="a suite name in eval/suites, or a suite YAML path"),
    reference: Optional[Path] = typer.Option(None, "--reference", help="the reference artifact, e.g. a held-out "
                                             "one (default: the suite's inputs, else the one the artifact's stage "
                                             "used, which a student trained on: refused unless --allow-seen)"),
    leaderboard: Path = typer.Option(DEFAULT_BOARD, "--leaderboard", help="where the record is appended"),
    replace: bool = typer.Option(False, "--replace", help="delete older records of this artifact and suite"),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N"),
    roots: list[Path] = typer.Option([], "--root", help="a directory the reference's input files may be in "
                                     "besides the working directory (repeatable)"),
    as_json: bool = typer.Option(False, "--json", help="print the record as JSON"),
    decoder: Optional[Path] = typer.Option(None, "--decoder", help="a tiny VAE decoder artifact of image latents "
                                           "(tiny-frame-decoder): evaluate the lip-sync student decoded by it (the "
                                           "phone's chain) instead of by the teacher's VAE"),
    allow_seen: bool = typer.Option(False, "--allow-seen", help="evaluate on reference clips the artifact's lineage "
                                    "trained on (the record says 'seen'); default: refuse (exit 2)"),
    sampler: Optional[str] = typer.Option(None, "--sampler", callback=one_of(SAMPLERS), help="S2V DiTs: unipc "
                                          "(upstream) or euler (LiveAvatar's few-step sampler)"),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="S2V DiTs: sampling steps"),
    guidance: Optional[float] = typer.Option(None, "--guidance", callback=bounded(0, 1e6), help="S2V DiTs: "
                                             "guidance scale (above 1: classifier-free guidance, two DiT forwards "
                                             "per step; 0 or 1: one)"),
) -> None:
    """Evaluate an artifact against a reference's teacher outputs; append a record to the leaderboard.

    Refused (exit 2) when the artifact or one of its ancestors trained on the reference's clips, unless --allow-seen.

    With --decoder, the model's latents are decoded by that tiny decoder instead of the teacher's VAE (a lip-sync
    student's image latents: the phone's chain; an S2V DiT's video latents): the record is the pair's, named
    MODEL+DECODER, and the decoder's training clips count as seen.

    An S2V DiT is sampled as the reference was (same seeds, inputs, size, frames), unless its artifact carries its
    own sampling (a few-step model's manifest `sampling`, or its nearest ancestor's); --sampler, --steps and
    --guidance replace either. The
    record's `sampling` says which was used, and its cost counts the DiT forwards per clip.

    The result is also written to ARTIFACT/eval/SUITE.json: the artifact's hash (its manifest's record of the
    files it was committed with) does not change, so resume keys that name it stay valid."""
    import torch

    from compress.evaluate.generate import EvalContext, recipe_seed
    from compress.evaluate.leaderboard import Board, rich_table  # matplotlib
    from compress.evaluate.report import checked_inputs, evaluate_artifact
    from compress.reference import ReferenceArtifact

    target, options = Artifact.open(artifact), load_suite(suite)
    ref = find_reference(target, options, reference)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserInputError(f"--device {device}: no CUDA GPU is visible")
    ctx = EvalContext(torch.device(device), roots=[str(r) for r in roots], console=Console(quiet=as_json))
    ctx.seed = recipe_seed(ref, ctx.resolve_path)
    compared = ReferenceArtifact(ref, ctx, options.max_inputs)
    advice = "give --reference a held-out reference artifact (e.g. of `inputs: builtin:heldout`), or --allow-seen"
    chained = Artifact.open(decoder) if decoder else None
    if chained is not None:  # before the seen-clips check and any model is loaded
        from compress.models.students.chain import check_decoder

        check_decoder(chained.load_model(device="cpu"), f"--decoder {decoder}", target.model_class)
    inputs = checked_inputs(target, compared, allow_seen, advice, Console().log, chained)  # warns even with --json
    override = SamplingOverride(sampler=sampler, num_inference_steps=steps, guidance_scale=guidance)
    record = make_record(evaluate_artifact(target, compared, options, ctx, inputs, override, chained),
                         options.model_dump(mode="json"))
    path = write_record(record, leaderboard, replace=replace)
    (target.path / "eval").mkdir(exist_ok=True)
    name = options.name if chained is None else f"{options.name}+{chained.name}"
    (target.path / "eval" / f"{name}.json").write_text(json.dumps(record, indent=1, default=str) + "\n")
    if as_json:
        print(json.dumps(record, indent=1, default=str))
        return
    out = stdout(width=200)
    out.print(rich_table(Board.of([record])))
    out.print(f"record: {path}", highlight=False)


def leaderboard_command(
    directory: Path = typer.Argument(DEFAULT_BOARD, help="a leaderboard directory of records"),
    suite: Optional[str] = typer.Option(None, "--suite", help="only this suite's records"),
    sort: Optional[str] = typer.Option(None, "--sort", help="a metric, e.g. fidelity.frame_psnr, "
                                       "cost.latency_ms_per_frame, tier_a.timing.lag"),
    descending: bool = typer.Option(False, "--descending", help="largest first"),
    columns: Optional[str] = typer.Option(None, "--columns", help="comma-separated metrics to show, e.g. "
                                          "cost.bytes,tier_a.timing.zero_lag_corr (default: the suite's, then "
                                          "each tier's: lag, zero_lag_corr, gain; lse_d, lse_c, av_offset); a "
                                          "wrong name lists the valid ones"),
    markdown_path: Optional[Path] = typer.Option(None, "--markdown", help="also write the table as Markdown"),
    html_path: Optional[Path] = typer.Option(None, "--html", help="also write a static HTML page with plots"),
) -> None:
    """The newest record per artifact and suite: one line each, numbers only (reasons as numbered footnotes, gates
    as a pass count with the failing ones below); Markdown and HTML."""
    from compress.evaluate.leaderboard import Board, rich_table, write_outputs  # matplotlib

    chosen = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    board = Board.load(directory, suite, sort, descending, chosen)
    out = stdout(width=120)
    out.print(rich_table(board))
    for path in write_outputs(board, markdown_path, html_path):
        out.print(f"wrote {path}", highlight=False)
