"""Leaderboard records built from hand-made evaluation results (no model runs), shared by leaderboard tests."""

from compress.evaluate.lipsync import LABELS
from compress.evaluate.records import make_record
from compress.evaluate.suite import Suite

SUITE = Suite(name="t", metrics=["fidelity.frame_psnr", "cost.latency_ms_per_frame", "cost.bytes"],
              gates=[{"metric": "fidelity.frame_psnr", "min": 30}, {"metric": "tier_a.timing.lag", "max": 1}])


def result(name: str, psnr: float | None, latency: float, size: int, series: list | None = None) -> dict:
    """An evaluate_artifact-shaped result; with `series` tier A is computed (lag 2, gain 0.5), else no face."""
    artifact = {"name": name, "kind": "quantize", "hash": f"{abs(hash(name)):064x}"[:64], "path": f"/runs/{name}",
                "recipe": "t", "lineage": [{"name": "source", "kind": "source", "hash": "0" * 64}]}
    tier_a = ({"tier": "A", "status": "ok", "timing": {"lag": 2, "zero_lag_corr": 0.4}, "articulation": {"gain": 0.5}}
              if series else {"tier": "A", "status": "not computed: no face in 16 of 16 teacher frames"})
    tiers = {"A": tier_a, "B": {"tier": "B", "status": "not computed: no sync expert given"},
             "C": {"tier": "C", "status": "not computed: no SyncNet weights given"}}
    metrics = {"fidelity": {} if psnr is None else {"frame_psnr": psnr},
               "tier_a": tier_a, "tier_b": tiers["B"], "tier_c": tiers["C"],
               "cost": {"latency_ms_per_frame": latency, "bytes": size, "latency_device": "cpu (test)",
                        "fit": {"status": "ok", "targets": {"rtx4090": {"fits": True}, "h100": {"fits": True}}}}}
    flat = {"fidelity.frame_psnr": psnr, "tier_a.timing.lag": tier_a.get("timing", {}).get("lag")}
    clip_series = {"student": series, "teacher": [v * 2 for v in series]} if series else {
        "student": [None] * 4, "teacher": [None] * 4}
    return {"artifact": artifact, "reference": {**artifact, "name": "reference", "kind": "reference"},
            "suite": SUITE.name, "metrics": metrics,
            "tiers": {t: {"tier": t, "label": LABELS[t], "status": r["status"]} for t, r in tiers.items()},
            "clips": [{"id": "clip-0", "frame_psnr": psnr, "tier_a": {"series": clip_series}}],
            "gates": SUITE.check_gates(flat)}


def record(name: str, psnr: float | None, latency: float, size: int, series: list | None = None) -> dict:
    return make_record(result(name, psnr, latency, size, series), SUITE.model_dump(mode="json"))
