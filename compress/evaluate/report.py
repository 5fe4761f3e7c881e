"""Evaluate one artifact against a reference artifact under a suite: fidelity, lip-sync tiers, cost, gates; and
whether its lineage saw the reference's inputs (`checked_inputs`)."""

from __future__ import annotations

import torch
from rich.markup import escape

from compress.artifacts import Artifact
from compress.artifacts.card import flat_metrics
from compress.errors import UserInputError
from compress.evaluate import cost as costs
from compress.evaluate.fidelity import clip_fidelity, pool
from compress.evaluate.generate import generator
from compress.evaluate.lipsync import LABELS, lipsync_tiers, not_computed
from compress.evaluate.suite import Suite
from compress.evaluate.wrong_audio import wrong_audio_control
from compress.models.s2v import WanS2VTransformer3DModel
from compress.pipelines.sampling import dit_forwards
from compress.reference.artifact import ReferenceArtifact
from compress.reference.seen import HELD_OUT, lineage_inputs


def checked_inputs(artifact: Artifact, reference: ReferenceArtifact, allow_seen: bool, advice: str, log) -> dict:
    """Which of the reference's clips the artifact's lineage saw (`lineage_inputs`: an evaluation record's `inputs`).
    Seen clips are refused unless `allow_seen` (`advice`: how to evaluate on others, or allow them); allowed, `log`
    warns loudly."""
    inputs = lineage_inputs(artifact, reference)
    if inputs["status"] == HELD_OUT:
        return inputs
    stages = "; ".join(f"stage '{stage}' saw {', '.join(ids)}" for stage, ids in inputs["seen_by"].items())
    message = (f"artifact '{artifact.name}' ({artifact.path}) would be evaluated on inputs of reference "
               f"'{reference.artifact.name}' that its lineage trained on ({inputs['status']}: {stages})")
    if not allow_seen:
        raise UserInputError(f"{message}; {advice}")
    log(f"[bold red]WARNING: {escape(message)}: its scores say nothing about unseen inputs (record labelled "
        f"'{inputs['status']}')[/]")
    return inputs


def evaluate_artifact(artifact: Artifact, reference: ReferenceArtifact, suite: Suite, ctx,
                      inputs: dict | None = None) -> dict:
    """The evaluation of `artifact`: {artifact, reference, suite, metrics, tiers, clips, gates}, and `inputs`
    (`checked_inputs`'s answer) when given."""
    if artifact.model_dir is not None:
        result = _evaluate_model(artifact, reference, suite, ctx)
    elif costs.onnx_file(artifact):
        result = _onnx_only(artifact, suite)
    else:
        raise UserInputError(f"{artifact.path} ({artifact.kind}) holds no model weights and no {costs.ONNX_FILE}: "
                             f"nothing to evaluate")
    gates = suite.check_gates(flat_metrics(result["metrics"])) + result.pop("tier_gates")
    return {"artifact": describe(artifact), "reference": describe(reference.artifact), "suite": suite.name, **result,
            "gates": gates, **({"inputs": inputs} if inputs is not None else {})}


def describe(artifact: Artifact) -> dict:
    return {"name": artifact.name, "kind": artifact.kind, "hash": artifact.hash, "path": str(artifact.path),
            "recipe": (artifact.manifest.get("recipe") or {}).get("name"), "lineage": artifact.lineage}


def _evaluate_model(artifact: Artifact, reference: ReferenceArtifact, suite: Suite, ctx) -> dict:
    model = artifact.load_model(device=ctx.device).eval()
    generate = generator(reference, model)
    clips, pairs = [], []
    with torch.no_grad(), costs.PeakMemory(ctx.device) as peak:
        for index in ctx.track(range(len(reference)), f"evaluate {artifact.name}", total=len(reference)):
            student, teacher = generate(index), reference.teacher(index)
            clips.append({"id": teacher["id"], **clip_fidelity(student, teacher)})
            pairs.append((student, teacher))
    tiers = lipsync_tiers(pairs, suite.lipsync)
    control = wrong_audio_control(model, reference, suite.lipsync.max_lag) if suite.lipsync.wrong_audio else {}
    frames = len(pairs[0][0]["frames"])
    cost = {**costs.size_cost(artifact), **peak.result(), **_speed(artifact, model, generate, suite, ctx, frames),
            **_dit_forwards(model, reference), "fit": _fit(artifact, suite, reference)}
    metrics = {**_metrics(pool(clips), tiers, cost), **({"wrong_audio": control} if control else {})}
    return {"metrics": metrics, "tiers": _labels(tiers), "clips": _clips(clips, tiers),
            "tier_gates": _tier_gates(tiers)}


def _speed(artifact: Artifact, model, generate, suite: Suite, ctx, frames: int) -> dict:
    options = suite.cost
    out = costs.gmacs_per_frame(lambda: generate(0)) if options.flops else {}
    out.update(costs.generation_latency(lambda: generate(0), options, frames, ctx.device))
    out.update(costs.forward_latency(model, options))
    if options.onnx and costs.onnx_file(artifact):
        out.update(costs.onnx_latency(costs.onnx_file(artifact), options))
    return out


def _dit_forwards(model, reference: ReferenceArtifact) -> dict:
    """DiT forwards per clip of an S2V DiT: the reference's sampling steps, twice each with classifier-free guidance
    (as the pipeline runs them); none for other models (students and decoders replace part of the pipeline)."""
    if not isinstance(model, WanS2VTransformer3DModel):
        return {}
    config = reference.config
    return {"dit_forwards_per_clip": dit_forwards(config.num_inference_steps, config.guidance_scale)}


def _fit(artifact: Artifact, suite: Suite, reference: ReferenceArtifact) -> dict:
    if suite.cost.fit is None:
        return {"status": "not planned: the suite asks for no fit verdict"}
    return costs.memory_fit(artifact, suite.cost.fit, cfg=reference.config.guidance_scale > 1)


def _onnx_only(artifact: Artifact, suite: Suite) -> dict:
    """An export artifact without torch weights: its ONNX latency and size; nothing to compare frames with."""
    reason = f"{costs.ONNX_FILE} only (no torch model to generate frames)"
    cost = {**costs.size_cost(artifact), **(costs.onnx_latency(costs.onnx_file(artifact), suite.cost)
                                            if suite.cost.onnx else {})}
    tiers = {tier: not_computed(tier, reason) for tier in LABELS}
    return {"metrics": _metrics({"notes": [reason]}, tiers, cost), "tiers": _labels(tiers), "clips": [],
            "tier_gates": []}


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
