"""The row every export report shares, whatever the target (QNN HTP, Core ML, LiteRT, CPU): what the export
command, the export stage's metrics and the leaderboard show side by side. Plain dicts only (no torch, no onnx)."""

from __future__ import annotations

from compress.export.targets import VERIFIED_ON


def target_row(report: dict) -> dict:
    """The row every target shares: chain GMACs per frame, implied fps, the numeric error of what was verified
    (against torch or the float model) and what it was verified on."""
    chain = report.get("chain") or {}
    budget = chain.get("budget") or report.get("budget") or {}
    error, of, verified_on = _verified_error(report)
    return {"target": report["target"], "precision": report["precision"], "verified_on": verified_on,
            "chain_gmacs_per_frame": chain.get("gmacs_per_frame"), "implied_fps": budget.get("implied_fps"),
            "numeric_error": error, "numeric_error_of": of}


def _verified_error(report: dict) -> tuple[float | None, str, str]:
    """(rel L2, what it compares, verified on) for the most device-like run that happened here."""
    if "coreml" in report:
        part = report["coreml"]
        if "vs_torch" in part:
            return part["vs_torch"]["rel_l2"], "Core ML vs torch", part["verified_on"]
        return None, part["reason"], part["verified_on"]
    if "litert" in report:
        part = report["litert"]
        run = "quantized" if "quantized" in part else "float"
        return part[run]["vs_torch"]["rel_l2"], f"LiteRT {run} vs torch", part["verified_on"]
    if "numerics" in report.get("htp", {}):
        return report["htp"]["vs_float"]["rel_l2"], "HTP vs float ONNX", VERIFIED_ON["qnn-htp"]
    if "quantized" in report:
        return report["quantized"]["vs_float"]["rel_l2"], "onnxruntime QDQ vs float", VERIFIED_ON["cpu"]
    return report["float"]["parity_vs_torch"]["rel_l2"], "onnxruntime float vs torch", VERIFIED_ON["cpu"]
