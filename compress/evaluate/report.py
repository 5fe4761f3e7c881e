"""Evaluate one artifact against a reference artifact under a suite: fidelity, lip-sync tiers, cost, gates; and
whether its lineage saw the reference's inputs (`checked_inputs`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import torch
from rich.markup import escape

from compress.artifacts import Artifact
from compress.artifacts.card import flat_metrics
from compress.errors import UserInputError
from compress.evaluate import cost as costs
from compress.evaluate.fidelity import clip_fidelity, pool
from compress.evaluate.generate import ancestry, generator
from compress.evaluate.lipsync import LABELS, lipsync_tiers, not_computed
from compress.evaluate.suite import Suite
from compress.evaluate.wrong_audio import wrong_audio_control
from compress.models.s2v import WanS2VTransformer3DModel
from compress.pipelines.sampling import SamplingConfig, SamplingOverride, artifact_sampling
from compress.reference.artifact import ReferenceArtifact
from compress.reference.seen import HELD_OUT, lineage_inputs, merged_inputs
from compress.utils.hashing import sha256_json


def checked_inputs(artifact: Artifact, reference: ReferenceArtifact, allow_seen: bool, advice: str, log,
                   decoder: Artifact | None = None) -> dict:
    """Which of the reference's clips the artifact's lineage (and its `decoder`'s) saw (`lineage_inputs`: an
    evaluation record's `inputs`). Seen clips are refused unless `allow_seen` (`advice`: how to evaluate on others,
    or allow them); allowed, `log` warns loudly."""
    inputs = merged_inputs([lineage_inputs(a, reference) for a in (artifact, decoder) if a is not None])
    if inputs["status"] == HELD_OUT:
        return inputs
    stages = "; ".join(f"stage '{stage}' saw {', '.join(ids)}" for stage, ids in inputs["seen_by"].items())
    chain = f" decoded by '{decoder.name}'" if decoder is not None else ""
    message = (f"artifact '{artifact.name}' ({artifact.path}){chain} would be evaluated on inputs of reference "
               f"'{reference.artifact.name}' that its lineage trained on ({inputs['status']}: {stages})")
    if not allow_seen:
        raise UserInputError(f"{message}; {advice}")
    log(f"[bold red]WARNING: {escape(message)}: its scores say nothing about unseen inputs (record labelled "
        f"'{inputs['status']}')[/]")
    return inputs


def evaluate_artifact(artifact: Artifact, reference: ReferenceArtifact, suite: Suite, ctx,
                      inputs: dict | None = None, sampling: SamplingOverride | None = None,
                      decoder: Artifact | None = None) -> dict:
    """The evaluation of `artifact`: {artifact, reference, suite, metrics, tiers, clips, gates}, `inputs`
    (`checked_inputs`'s answer) when given, and for an S2V DiT the `sampling` it was generated with
    (`sampling_used`; `sampling` overrides some of its settings). With `decoder` (a tiny VAE decoder: of image
    latents for a lip-sync student, the phone's chain; of video latents for an S2V DiT), the model's latents are
    decoded by it instead of the teacher's VAE, recorded as its own artifact (`describe_chain`)."""
    if decoder is not None and artifact.model_dir is None:
        raise UserInputError(f"{artifact.path} holds no model weights: a decoder decodes a model's latents")
    if artifact.model_dir is not None:
        result = _evaluate_model(artifact, reference, suite, ctx, sampling, decoder)
    elif costs.onnx_file(artifact) or costs.export_report(artifact):
        result = _export_only(artifact, suite)
    else:
        raise UserInputError(f"{artifact.path} ({artifact.kind}) holds no model weights, no {costs.ONNX_FILE} and no "
                             f"export {costs.EXPORT_REPORT}: nothing to evaluate")
    gates = suite.check_gates(flat_metrics(result["metrics"])) + result.pop("tier_gates")
    described = describe(artifact) if decoder is None else describe_chain(artifact, decoder)
    return {"artifact": described, "reference": describe(reference.artifact), "suite": suite.name, **result,
            "gates": gates, **({"inputs": inputs} if inputs is not None else {})}


def describe(artifact: Artifact) -> dict:
    return {"name": artifact.name, "kind": artifact.kind, "hash": artifact.hash, "path": str(artifact.path),
            "recipe": (artifact.manifest.get("recipe") or {}).get("name"), "lineage": artifact.lineage}


def describe_chain(model: Artifact, decoder: Artifact) -> dict:
    """A model decoded by a tiny VAE decoder, as one artifact: named `MODEL+DECODER`, hashed from both, its lineage
    the model's then the decoder's (ancestors in common once)."""
    own = describe(model)
    return {**own, "name": f"{model.name}+{decoder.name}", "hash": sha256_json([model.hash, decoder.hash]),
            "label": f"{model.name} + tiny decoder '{decoder.name}' (not the teacher's VAE)",
            "decoder": {k: v for k, v in describe(decoder).items() if k != "lineage"},
            "lineage": [*own["lineage"], *(a for a in decoder.lineage if a not in own["lineage"])]}


def sampling_used(artifact: Artifact, reference: ReferenceArtifact, resolve: Callable[[str], Path],
                  override: SamplingOverride | None = None) -> tuple[SamplingConfig, str]:
    """How an S2V DiT artifact is sampled, and where that comes from: the sampling its manifest carries (a few-step
    DMD model's) or its nearest ancestor's (a quantized or pruned few-step model samples as the model it came from;
    `ancestry`), else the reference's; `override`'s given settings replace either."""
    base, source = reference.config.sampling, "reference"
    for ancestor in ancestry(artifact, resolve):
        own = artifact_sampling(ancestor.manifest, f"'{ancestor.name}' ({ancestor.path})")
        if own is not None:
            base, source = own, "artifact" if ancestor is artifact else f"ancestor '{ancestor.name}'"
            break
    given = override.given() if override is not None else {}
    return base.overridden(override), source + (f", overridden: {', '.join(given)}" if given else "")


def _evaluate_model(artifact: Artifact, reference: ReferenceArtifact, suite: Suite, ctx,
                    override: SamplingOverride | None, decoder: Artifact | None = None) -> dict:
    model = artifact.load_model(device=ctx.device).eval()
    dit = isinstance(model, WanS2VTransformer3DModel)  # students and decoders replace part of it: no sampling
    decoder_model = decoder.load_model(device=ctx.device).eval() if decoder is not None else None
    if decoder is not None and not dit:
        from compress.models.students.chain import StudentChain

        model = StudentChain(model, decoder_model, f"evaluate '{artifact.name}' with a decoder")
    sampling, source = sampling_used(artifact, reference, ctx.resolve_path, override) if dit else (None, "")
    if dit:
        ctx.log(f"  {artifact.name} sampled with {sampling.describe()} (from the {source})")
    generate = generator(reference, model, sampling, decoder_model if dit else None)
    clips, pairs, seconds = [], [], 0.0
    with torch.no_grad(), costs.PeakMemory(ctx.device) as peak, costs.ForwardTimer(model) as forwards:
        for index in ctx.track(range(len(reference)), f"evaluate {artifact.name}", total=len(reference)):
            start = time.perf_counter()
            student = generate(index)
            seconds += time.perf_counter() - start
            teacher = reference.teacher(index)
            clips.append({"id": teacher["id"], **clip_fidelity(student, teacher)})
            pairs.append((student, teacher))
    tiers = lipsync_tiers(pairs, suite.lipsync)
    control = wrong_audio_control(model, reference, suite.lipsync.max_lag) if suite.lipsync.wrong_audio else {}
    frames = len(pairs[0][0]["frames"])
    size = costs.size_cost(artifact) if decoder is None else costs.summed_size(artifact, decoder)
    cost = {**size, **peak.result(), **_speed(artifact, model, generate, suite, ctx, frames),
            **_wall_per_clip(seconds, forwards.seconds if dit else None, reference), **_dit_forwards(sampling),
            "fit": _fit(artifact, suite, sampling or reference.config.sampling)}
    used = {"sampling": {**sampling.model_dump(), "source": source}} if dit else {}
    metrics = {**_metrics(pool(clips), tiers, cost), **({"wrong_audio": control} if control else {})}
    return {"metrics": metrics, "tiers": _labels(tiers), "clips": _clips(clips, tiers),
            "tier_gates": _tier_gates(tiers), **used}


def _speed(artifact: Artifact, model, generate, suite: Suite, ctx, frames: int) -> dict:
    options = suite.cost
    out = costs.gmacs_per_frame(lambda: generate(0)) if options.flops else {}
    out.update(costs.generation_latency(lambda: generate(0), options, frames, ctx.device))
    out.update(costs.forward_latency(model, options))
    if options.onnx and costs.onnx_file(artifact):
        out.update(costs.onnx_latency(costs.onnx_file(artifact), options))
    return out


def _wall_per_clip(seconds: float, dit_seconds: float | None, reference: ReferenceArtifact) -> dict:
    """Generation wall time per clip over every input of the fidelity pass (each model's first run of them), and of
    an S2V DiT the part spent in its forwards (the rest is the text / audio encoders and the VAE)."""
    clips = sum(reference.rows["num_clips"])
    dit = {"dit_s_per_clip": dit_seconds / clips} if dit_seconds is not None else {}
    return {"wall_s_per_clip": seconds / clips, **dit, "wall_clips": clips,
            "wall_source": "measured (wall clock, every input generated once, first run)"}


def _dit_forwards(sampling: SamplingConfig | None) -> dict:
    """DiT forwards per clip of an S2V DiT: its sampling steps, twice each with classifier-free guidance (as the
    pipeline runs them); none for other models (students and decoders replace part of the pipeline)."""
    return {} if sampling is None else {"dit_forwards_per_clip": sampling.dit_forwards}


def _fit(artifact: Artifact, suite: Suite, sampling: SamplingConfig) -> dict:
    if suite.cost.fit is None:
        return {"status": "not planned: the suite asks for no fit verdict"}
    return costs.memory_fit(artifact, suite.cost.fit, sampling)


def _export_only(artifact: Artifact, suite: Suite) -> dict:
    """An export artifact without torch weights: its size, ONNX latency (when it has an ONNX file) and its target's
    row from the export report (`export.*`: chain GMACs per frame, implied fps, numeric error, verified on);
    nothing to compare frames with."""
    from compress.export.rows import target_row

    exported = costs.export_report(artifact)
    row = target_row(exported) if exported else None
    reason = (f"export for {row['target']}, verified on: {row['verified_on']} (no torch model to generate frames)"
              if row else f"{costs.ONNX_FILE} only (no torch model to generate frames)")
    onnx = costs.onnx_file(artifact)
    cost = {**costs.size_cost(artifact), **(costs.onnx_latency(onnx, suite.cost) if onnx and suite.cost.onnx else {})}
    tiers = {tier: not_computed(tier, reason) for tier in LABELS}
    metrics = {**_metrics({"notes": [reason]}, tiers, cost), **({"export": row} if row else {})}
    return {"metrics": metrics, "tiers": _labels(tiers), "clips": [], "tier_gates": []}


def _metrics(fidelity: dict, tiers: dict, cost: dict) -> dict:
    """The numbers, grouped: fidelity, tier_a / tier_b / tier_c (pooled, without per-clip data), cost."""
    pooled = {f"tier_{t.lower()}": {k: v for k, v in r.items() if k not in ("per_clip", "gates", "label")}
              for t, r in tiers.items()}
    return {"fidelity": fidelity, **pooled, "cost": cost}


def _labels(tiers: dict) -> dict:
    return {tier: {"tier": tier, "label": r["label"], "status": r["status"]} for tier, r in tiers.items()}


def _tier_gates(tiers: dict) -> list[dict]:
    """Each tier's own gates, named `tier_x.<gate>`."""
    return [{**g, "name": f"tier_{t.lower()}.{g['name']}"} for t, r in tiers.items() for g in r.get("gates", [])]


def _clips(fidelity: list[dict], tiers: dict) -> list[dict]:
    """Per clip: fidelity and each computed tier's clip result (tier A's mouth-opening series among them)."""
    per_tier = {t: r.get("per_clip", []) for t, r in tiers.items()}
    return [{**clip, **{f"tier_{t.lower()}": rows[i] for t, rows in per_tier.items() if i < len(rows)}}
            for i, clip in enumerate(fidelity)]
