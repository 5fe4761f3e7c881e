"""`evaluate`: check artifacts against the teacher's reference outputs under a suite, and add them to a leaderboard.

For each evaluated artifact: fidelity (frame PSNR / SSIM, latent error), lip-sync tiers A / B / C (each
labelled; "not computed: <reason>" where a tier cannot run), cost (parameters, bytes by dtype, GMACs per frame,
latency, peak memory, the memory planner's fit per target) and the suite's gates. The stage writes its own
artifact (`results/NAME.json` per artifact, `leaderboard.md`, `leaderboard.html`) and appends one record per
artifact to the leaderboard directory; it never touches the artifacts it evaluates.

Sampling: an S2V DiT is regenerated as the reference sampled (same seeds, inputs, size, frames, components), unless
its artifact carries its own sampling (a few-step model's manifest `sampling`, e.g. `{sampler: euler,
num_inference_steps: 4, guidance_scale: 0.0}` from a DMD stage) or its nearest ancestor does (a quantized DMD
model): it is then sampled that way. `sampling:` (any of sampler, num_inference_steps, guidance_scale, shift)
replaces those settings for every S2V DiT evaluated, e.g. to score the teacher with the same 4 Euler steps::

    - kind: evaluate
      reference: heldout
      artifacts: [source]
      sampling: {sampler: euler, num_inference_steps: 4, guidance_scale: 0}

Each record states the sampling used; its cost counts the DiT forwards per clip and the generation wall time per
clip (`wall_s_per_clip`, measured in the same run for every artifact, so a 4-step model and a 10-step teacher
compare within one stage) and of it the time inside the DiT's forwards (`dit_s_per_clip`: on the small demo
teacher the VAE and the encoders take most of a clip). Students and decoders do not sample.

The phone's chain: with `decoder: STAGE` (a tiny VAE decoder of image latents, preset `tiny-frame-decoder`), every
lip-sync student evaluated is evaluated a second time with its latents decoded by that decoder instead of the
teacher's VAE (the same suite: tiers, fidelity, wrong-audio control), recorded as `STUDENT+DECODER` (its lineage
and inputs seen are both models')::

    - kind: evaluate
      reference: heldout
      artifacts: [lipsync]
      decoder: frame-decoder

A decoder of video latents (preset `tiny-vae-decoder`, distilled from the teacher's VAE) does the same for every S2V
DiT evaluated: e.g. `dmd+vae-decoder`, a 4-step model decoding without the VAE, timed in the same run as the rest.

Held-out by default: an artifact whose lineage trained or calibrated on some of the reference's clips (the
ancestors' manifests say which: `compress.reference.seen`) is refused before anything is evaluated, naming the stage
and the clips; with `allow_seen_inputs: true` it is evaluated with a loud warning and its record's `inputs` say
"seen" or "partly seen" (else "held-out").
"""

from __future__ import annotations

from pydantic import Field

from compress.errors import UserInputError
from compress.pipelines.sampling import SamplingOverride
from compress.stages.base import Stage
from compress.stages.refs import MODEL, StageRef


class EvaluateStage(Stage):
    kind = "evaluate"
    summary = "evaluate artifacts against the reference: fidelity, lip-sync tiers A/B/C, cost, gates; leaderboard"
    key_metrics = ("evaluated", "gates_failed", "gates_not_computed")
    produces_model = False

    reference: StageRef["reference"] = Field(description="the reference stage whose inputs and teacher outputs are "
                                                         "compared against")
    artifacts: list[StageRef[MODEL, "export"]] | None = Field(
        default=None, min_length=1, description="stages to evaluate; default: every model artifact so far (source "
                                                "included)")
    suite: str = Field(default="default", description="a suite name in eval/suites, or a suite YAML path")
    leaderboard: str | None = Field(default=None, description="leaderboard directory; default: OUTPUT/leaderboard")
    sync_expert: StageRef["sync_expert"] | None = Field(
        default=None, description="a sync_expert stage for lip-sync tier B (instead of the suite's)")
    decoder: StageRef[MODEL] | None = Field(
        default=None, description="a tiny VAE decoder: of image latents (tiny-frame-decoder), each lip-sync student "
                                  "is also evaluated decoded by it (the phone's chain); of video latents "
                                  "(tiny-vae-decoder), each S2V DiT; each as its own record `MODEL+DECODER`")
    allow_seen_inputs: bool = Field(default=False, description="evaluate artifacts on reference clips their lineage "
                                                               "trained on (labelled 'seen'); default: refuse")
    sampling: SamplingOverride | None = Field(
        default=None, description="sampler, num_inference_steps, guidance_scale or shift for every S2V DiT evaluated "
                                  "(default: its artifact's own sampling, else the reference's)")

    written_paths = ("leaderboard",)

    def paths(self) -> dict[str, str]:
        return {k: v for k, v in {"suite": self.suite if self._suite_is_path else None,
                                  "leaderboard": self.leaderboard}.items() if v}

    @property
    def _suite_is_path(self) -> bool:
        return self.suite.endswith((".yaml", ".yml")) or "/" in self.suite

    def data_fingerprint(self, ctx) -> dict:
        """The suite's content, and (default `artifacts`) which artifacts are evaluated: both are in the resume key."""
        return {"suite": self._suite(ctx).model_dump(mode="json"),
                "artifacts": {n: ctx.artifacts[n].hash for n in self._names(ctx)}}

    def _suite(self, ctx):
        from compress.evaluate.suite import load_suite

        return load_suite(str(ctx.resolve_path(self.suite)) if self._suite_is_path else self.suite)

    def _names(self, ctx) -> list[str]:
        from compress.evaluate.cost import export_report, onnx_file

        if self.artifacts is not None:
            return list(self.artifacts)
        return [n for n, a in ctx.artifacts.items() if a.model_dir is not None or onnx_file(a) or export_report(a)]

    def run(self, source, out, ctx) -> dict:
        from compress.evaluate.leaderboard import Board, html_page, markdown
        from compress.evaluate.records import make_record, write_record
        from compress.evaluate.report import checked_inputs, evaluate_artifact

        suite = self._suite(ctx)
        if self.sync_expert:
            lipsync = suite.lipsync.model_copy(update={"sync_expert": str(ctx.artifact(self.sync_expert).path)})
            suite = suite.model_copy(update={"lipsync": lipsync})
        reference = ctx.reference(self.reference, suite.max_inputs)
        advice = ("name a held-out reference stage (e.g. `inputs: builtin:heldout`), or set `allow_seen_inputs: "
                  "true` in the evaluate stage")
        decoder = ctx.artifact(self.decoder) if self.decoder else None
        runs = [(name, None) for name in self._names(ctx)]
        runs += self._decoded(decoder, runs, ctx) if decoder is not None else []
        inputs = [checked_inputs(ctx.artifact(name), reference, self.allow_seen_inputs, advice, ctx.log, chained)
                  for name, chained in runs]
        records = []
        for (name, chained), seen in ctx.track(list(zip(runs, inputs)), "artifacts evaluated", len(runs)):
            label = name if chained is None else f"{name} decoded by {chained.name}"
            ctx.log(f"  evaluating {label} on {len(reference)} inputs (suite {suite.name}, {seen['status']})")
            result = evaluate_artifact(ctx.artifact(name), reference, suite, ctx, seen, self.sampling, chained)
            records.append(make_record(result, suite.model_dump(mode="json")))
            out.write_json(f"results/{result['artifact']['name']}.json", records[-1])
        board = Board.of(records)
        (out.path / "leaderboard.md").write_text(markdown(board))
        (out.path / "leaderboard.html").write_text(html_page(board))
        directory = ctx.resolve_path(self.leaderboard) if self.leaderboard else ctx.output_dir / "leaderboard"
        for record in records:  # only once every artifact is evaluated: a failed run adds nothing
            write_record(record, directory)
        ctx.log(f"  {len(records)} records added to {directory}")
        gates = [g for r in records for g in r["gates"]]
        return {"suite": suite.name, "evaluated": len(records), "leaderboard": str(directory),
                "gates_failed": sum(g["passed"] is False for g in gates),
                "gates_not_computed": sum(g["passed"] is None for g in gates),
                "artifacts": {r["artifact"]["name"]: _headline(r) for r in records}}

    def _decoded(self, decoder, runs: list, ctx) -> list:
        """Before anything is evaluated: each artifact whose latents the decoder decodes, paired with it (image
        latents: the lip-sync students; video latents: the S2V DiTs); none is an error."""
        from compress.models.students.chain import EMITTED_LATENTS, decoder_latents
        from compress.models.students.decoder import LATENT_KINDS

        latents = decoder_latents(decoder.load_model(device="cpu"), f"evaluate decoder '{self.decoder}'")
        decoded = [(name, decoder) for name, _ in runs
                   if EMITTED_LATENTS.get(ctx.artifact(name).model_class) == latents]
        if not decoded:
            emitter = next(cls for cls, kind in EMITTED_LATENTS.items() if kind == latents)
            raise UserInputError(f"evaluate decoder: '{self.decoder}' decodes {LATENT_KINDS[latents]}, but none of "
                                 f"the evaluated artifacts ({', '.join(n for n, _ in runs)}) emits them (a "
                                 f"{emitter.__name__} does)")
        return decoded


def _headline(record: dict) -> dict:
    """A few numbers per artifact for the manifest (the full record is in results/NAME.json)."""
    fidelity, cost = record["metrics"]["fidelity"], record["metrics"]["cost"]
    return {"frame_psnr": fidelity.get("frame_psnr"), "latent_rel_error": fidelity.get("latent_rel_error"),
            "latency_ms_per_frame": cost.get("latency_ms_per_frame"), "bytes": cost.get("bytes"),
            "dit_forwards_per_clip": cost.get("dit_forwards_per_clip"), "wall_s_per_clip": cost.get("wall_s_per_clip"),
            "dit_s_per_clip": cost.get("dit_s_per_clip"),
            "tier_a": record["tiers"]["A"]["status"], "tier_b": record["tiers"]["B"]["status"],
            "tier_c": record["tiers"]["C"]["status"], "inputs": record["inputs"]["status"]}
