"""Leaderboard records built from hand-made evaluation results (no model runs), shared by leaderboard tests."""

from compress.evaluate.lipsync import LABELS
from compress.evaluate.records import make_record
from compress.evaluate.suite import Suite

SUITE = Suite(name="t", metrics=["fidelity.frame_psnr", "cost.latency_ms_per_frame", "cost.bytes"],
              gates=[{"metric": "fidelity.frame_psnr", "min": 30}, {"metric": "tier_a.timing.lag", "max": 1}])
QUICKSTART_SUITE = Suite(name="quickstart", metrics=[
    "fidelity.frame_psnr", "fidelity.frame_ssim", "fidelity.latent_rel_error", "cost.bytes", "cost.gmacs_per_frame",
    "cost.dit_forwards_per_clip", "cost.wall_s_per_clip"], gates=[
    {"metric": "fidelity.latent_rel_error", "max": 0.05}, {"metric": "fidelity.frame_psnr", "min": 30},
    {"metric": "tier_a.timing.lag", "min": -1, "max": 1}, {"metric": "tier_a.timing.zero_lag_corr", "min": 0.8},
    {"metric": "tier_a.articulation.gain", "min": 0.8, "max": 1.2}])
UNRELIABLE_B = "unreliable: the sync expert rejected reversed audio in 0% of held-out checks (below 80%)"
NO_FACE = "no clip computed (3 given): no face in {} of 48 student frames"
#: `make demo`'s records (runs/quickstart/leaderboard at 6cd69d5, 4 significant digits, per-clip data cut):
#: name, kind, inputs, fidelity (PSNR, SSIM, latent error), cost (parameters, bytes, GMACs and ms per frame, DiT
#: forwards per clip), tier A (lag, r0, gain) or why not, tier B (LSE-D, LSE-C, offset), why no fit (None: fits)
QUICKSTART = [
    ("source", "source", "seen", (100.0, 1.0, 0.0), (2183865, 8735460, 0.3554, 182.4, 20), (0, 1.0, 1.0),
     (0.4511, 0.7233, 0.0), None),
    ("int8", "quantize", "held-out", (58.66, 0.9999, 0.003134), (2190009, 6204132, 0.3554, 163.9, 20),
     (0, 0.9984, 0.9934), (0.4512, 0.7244, 0.0), None),
    ("fp8", "quantize", "held-out", (51.63, 0.9994, 0.01351), (2190009, 6204132, 0.3554, 34.29, 20),
     (0, 0.9953, 0.9798), (0.4512, 0.7243, 0.0), None),
    ("depth", "prune", "held-out", (9.859, 0.09164, 1.024), (1852089, 7408356, 0.3099, 28.37, 20),
     NO_FACE.format(36), (1.259, 0.1132, -5.0), None),
    ("lipsync", "distill", "partly seen", (24.17, 0.8913, None), (31107152, 124428608, 0.7259, 16.81, None),
     (0, 0.1267, 0.2694), (1.065, 0.1227, -5.333), "LipSyncStudent"),
    ("vae-decoder", "distill", "seen", (18.01, 0.4515, None), (2574763, 10299052, 0.2237, 6.026, None),
     NO_FACE.format(48), (1.235, 0.1268, -10.0), "TinyVAEDecoder"),
]


def _artifact(name: str, kind: str) -> dict:
    return {"name": name, "kind": kind, "hash": f"{abs(hash(name)):064x}"[:64], "path": f"/runs/{name}",
            "recipe": "t", "lineage": [{"name": "source", "kind": "source", "hash": "0" * 64}]}


def _inputs(status: str) -> dict:
    seen = {"held-out": [], "seen": ["clip-0"], "partly seen": ["clip-0"]}[status]
    return {"status": status, "evaluated": ["clip-0", "clip-1"], "seen": seen, "seen_by": {c: "distill" for c in seen}}


def _result(artifact: dict, metrics: dict, clips: list, suite: Suite) -> dict:
    tiers = {t: {"tier": t, "label": LABELS[t], "status": metrics[f"tier_{t.lower()}"]["status"]} for t in LABELS}
    flat = {f"{group}.{k}": v for group, values in metrics.items() for k, v in values.items()} | {
        f"tier_a.{k}.{f}": v for k, sub in metrics["tier_a"].items() if isinstance(sub, dict) for f, v in sub.items()}
    return {"artifact": artifact, "reference": {**artifact, "name": "reference", "kind": "reference"},
            "suite": suite.name, "metrics": metrics, "tiers": tiers, "clips": clips, "gates": suite.check_gates(flat)}


def result(name: str, psnr: float | None, latency: float, size: int, series: list | None = None) -> dict:
    """An evaluate_artifact-shaped result; with `series` tier A is computed (lag 2, gain 0.5), else no face."""
    tier_a = ({"tier": "A", "status": "ok", "timing": {"lag": 2, "zero_lag_corr": 0.4}, "articulation": {"gain": 0.5}}
              if series else {"tier": "A", "status": "not computed: no face in 16 of 16 teacher frames"})
    metrics = {"fidelity": {} if psnr is None else {"frame_psnr": psnr}, "tier_a": tier_a,
               "tier_b": {"tier": "B", "status": "not computed: no sync expert given"},
               "tier_c": {"tier": "C", "status": "not computed: no SyncNet weights given"},
               "cost": {"latency_ms_per_frame": latency, "bytes": size, "latency_device": "cpu (test)",
                        "fit": {"status": "ok", "targets": {"rtx4090": {"fits": True}, "h100": {"fits": True}}}}}
    clip_series = {"student": series, "teacher": [v * 2 for v in series]} if series else {
        "student": [None] * 4, "teacher": [None] * 4}
    clips = [{"id": "clip-0", "frame_psnr": psnr, "tier_a": {"series": clip_series}}]
    return _result(_artifact(name, "quantize"), metrics, clips, SUITE)


def record(name: str, psnr: float | None, latency: float, size: int, series: list | None = None,
           inputs: str = "held-out") -> dict:
    return {**make_record(result(name, psnr, latency, size, series), SUITE.model_dump(mode="json")),
            "inputs": _inputs(inputs)}


def quickstart_record(name, kind, inputs, fidelity, cost, tier_a, tier_b, no_fit) -> dict:
    """One of `QUICKSTART`'s rows as a record (tier C not computed: no SyncNet weights)."""
    psnr, ssim, latent = fidelity
    parameters, size, gmacs, ms, forwards = cost
    if isinstance(tier_a, str):
        tier_a = {"tier": "A", "status": f"not computed: {tier_a}"}
        series = {"student": [None] * 8, "teacher": [None] * 8}
    else:
        lag, r0, gain = tier_a
        tier_a = {"tier": "A", "status": "ok", "timing": {"lag": lag, "zero_lag_corr": r0},
                  "articulation": {"gain": gain}}
        teacher = [0.16, 0.19, 0.25, 0.33, 0.27, 0.22, 0.18, 0.15]
        series = {"teacher": teacher, "student": [round(0.2 + gain * (v - 0.2), 4) for v in teacher]}
    fit = ({"status": "ok", "targets": {"rtx4090": {"fits": True}, "h100": {"fits": True}}} if no_fit is None else
           {"status": f"not planned: memory planning knows the Wan S2V DiT only ({no_fit})"})
    # wall time per 48-frame clip: these records predate it, so derived from their latency (a layout fixture)
    cost = {"parameters": parameters, "bytes": size, "gmacs_per_frame": gmacs, "latency_ms_per_frame": ms,
            "wall_s_per_clip": round(ms * 48 / 1000, 3), "latency_device": "cpu (x86_64, 2 cores, 2 threads)",
            "fit": fit}
    metrics = {"fidelity": {k: v for k, v in (("frame_psnr", psnr), ("frame_ssim", ssim),
                                              ("latent_rel_error", latent)) if v is not None},
               "tier_a": tier_a, "tier_b": dict(zip(("lse_d", "lse_c", "av_offset"), tier_b), tier="B",
                                                status=UNRELIABLE_B),
               "tier_c": {"tier": "C", "status": "not computed: no SyncNet weights given"},
               "cost": cost if forwards is None else {**cost, "dit_forwards_per_clip": forwards}}
    clips = [{"id": f"train-00{i}", "frame_psnr": psnr, "tier_a": {"series": series}} for i in range(2)]
    result = _result(_artifact(name, kind), metrics, clips, QUICKSTART_SUITE)
    return {**make_record(result, QUICKSTART_SUITE.model_dump(mode="json")), "inputs": _inputs(inputs)}


def quickstart_records() -> list[dict]:
    return [quickstart_record(*row) for row in QUICKSTART]
