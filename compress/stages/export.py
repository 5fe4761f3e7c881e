"""`export`: the input model for a device target, proven here (see `compress.export`).

    - kind: export
      target: snapdragon-8gen3         # or a17-pro, dimensity-9300 (-480x832), cpu, or a profile YAML file
      quantize: w8a16                  # w8a16 | w8a8 | none; default: the target's precision
      reference: reference             # calibration inputs drawn from this reference dataset
      shapes: {height: 96, width: 96}  # optional: overrides of the target's static shapes
      decoder: frame-decoder           # optional: a tiny-frame-decoder stage, exported beside a lip-sync student

The artifact holds `model.onnx` (float), `model.qdq.onnx`, the QNN context model and binary
(`model.qnn_ctx.onnx`, `model.qnn_ctx_qnn.bin`) when the HTP took the whole graph, and `report.json`. It holds
no torch weights, so later stages keep starting from the latest model-producing stage. With `decoder`, the
decoder's export (same files and checks) sits in `decoder/`, and the chain's frames are compared with torch's.
Core ML targets write `model.mlpackage` (conversion only off macOS), LiteRT targets `model.tflite` and the quantized
`model.w8a16.tflite` (run on LiteRT's CPU interpreter); every report has the same per-target row
(`compress.export.rows`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from compress.errors import StageError
from compress.stages.base import Stage
from compress.stages.refs import MODEL, StageRef


class ExportStage(Stage):
    kind = "export"
    summary = "export for a phone NPU (QNN HTP, Core ML, LiteRT): parity, quantization, placement or op coverage"
    key_metrics = ("verified_on", "numeric_rel_error", "quant_rel_error", "htp_status", "htp_share", "htp_rel_l2",
                   "htp_numerics", "gmacs_per_frame", "implied_fps", "chain_implied_fps")
    produces_model = False

    target: str = Field(default="snapdragon-8gen3", description="a built-in target name or a profile YAML file")
    quantize: Literal["w8a16", "w8a8", "none"] | None = Field(default=None, description="default: the target's")
    reference: StageRef["reference"] | None = Field(default=None, description="a reference stage whose rows give "
                                                                            "calibration inputs")
    calibration_batches: int = Field(default=8, ge=1, le=256)
    latency_repeats: int = Field(default=20, ge=1)
    require_htp: bool = Field(default=False, description="fail unless the whole graph ran on the HTP")
    allow_wrong_htp: bool = Field(default=False, description="keep an export whose HTP output departs from "
                                  "onnxruntime's QDQ run (marked 'HTP output wrong') instead of failing")
    decoder: StageRef[MODEL] | None = Field(default=None, description="a tiny VAE decoder of image latents "
                                            "(tiny-frame-decoder) exported beside a lip-sync student (decoder/): the "
                                            "phone's chain, its frames vs torch")
    shapes: dict[str, int] = Field(default_factory=dict, description="overrides of the target's static shapes "
                                   "(batch_size, height, width, frames), e.g. {height: 96, width: 96}")

    @field_validator("target")
    @classmethod
    def _known_target(cls, value: str) -> str:
        from compress.export.targets import target_names

        if not Path(value).suffix and value not in target_names():
            raise ValueError(f"a built-in target ({', '.join(target_names())}) or a profile .yaml file")
        return value

    @field_validator("shapes")
    @classmethod
    def _static_shapes(cls, value: dict[str, int]) -> dict[str, int]:
        from compress.export.targets import StaticShapes

        unknown = sorted(set(value) - set(StaticShapes.model_fields))
        if unknown:
            known = ", ".join(StaticShapes.model_fields)
            raise ValueError(f"shape names among {known} (unknown: {', '.join(unknown)})")
        StaticShapes.model_validate(value)
        return value

    def paths(self) -> dict[str, str]:
        return {"target": self.target} if Path(self.target).suffix else {}

    def data_fingerprint(self, ctx) -> dict | None:
        if not Path(self.target).suffix:
            return None
        from compress.export.targets import load_target
        from compress.utils.hashing import sha256_json

        # the resolved profile, so a change in a profile it `extends` counts too
        return {"target": sha256_json(load_target(ctx.resolve_path(self.target)).model_dump())}

    def run(self, source, out, ctx) -> dict:
        from compress.export import ExportRequest, example_inputs, load_target, run_export
        from compress.export.calibration import export_inputs
        from compress.export.chain_frames import export_decoder
        from compress.models.students.chain import check_chain
        from compress.reference.seen import SEEN_FIELD, inputs_seen

        target = load_target(ctx.resolve_path(self.target) if Path(self.target).suffix else self.target)
        target = target.model_copy(update={"shapes": target.shapes.model_copy(update=self.shapes)})
        model = source.load_model(device="cpu").float().eval()
        decoder = ctx.artifact(self.decoder).load_model(device="cpu").float().eval() if self.decoder else None
        if decoder is not None:
            check_chain(model, decoder, "export with a decoder")
        example = example_inputs(model, target)
        reference = ctx.reference(self.reference) if self.reference else None
        inputs = export_inputs(model, example, reference, self.calibration_batches, ctx.seed)
        request = ExportRequest(model, target, self.quantize, **inputs, latency_repeats=self.latency_repeats,
                                allow_wrong_htp=self.allow_wrong_htp)
        report = run_export(request, out.path, log=ctx.log, track=ctx.track)
        if decoder is not None:
            report["decoder"] = export_decoder(request, decoder, out.path, ctx.log, ctx.track)
        metrics = stage_metrics(report)
        if reference is not None:  # the QDQ (LiteRT: quantization) scales are calibrated on its clips
            calibrated = "quantized" in report or "quantized" in report.get("litert", {})
            out.extra[SEEN_FIELD] = inputs_seen(reference, "calibration" if calibrated else "measured")
        if self.require_htp and metrics.get("htp_status") != "ran":
            raise StageError(f"export: the graph did not run wholly on the HTP: {report.get('htp', {})}")
        return metrics


def stage_metrics(report: dict) -> dict:
    """The report's headline numbers, flat (the whole report stays in report.json)."""
    from compress.export.rows import target_row

    row = target_row(report)
    metrics = {"target": report["target"], "precision": report["precision"], "verified_on": row["verified_on"],
               **({"numeric_rel_error": row["numeric_error"]} if row["numeric_error"] is not None else {})}
    if "coreml" in report:
        return {**metrics, **_coreml_metrics(report["coreml"]), **_cost_metrics(report)}
    if "litert" in report:
        return {**metrics, **_litert_metrics(report["litert"]), **_cost_metrics(report)}
    metrics.update(float_bytes=report["float"]["file_bytes"],
                   float_max_abs_error=report["float"]["parity_vs_torch"]["max_abs"],
                   float_rel_error=report["float"]["parity_vs_torch"]["rel_l2"])
    if "quantized" in report:
        quantized = report["quantized"]
        metrics.update(quant_bytes=quantized["file_bytes"], quant_rel_error=quantized["vs_float"]["rel_l2"],
                       quant_max_abs_error=quantized["vs_float"]["max_abs"],
                       cpu_latency_quant_over_float=report["cpu_latency"]["quantized_over_float"])
        if "vs_teacher" in quantized:
            metrics["quant_teacher_rel_error"] = quantized["vs_teacher"]["rel_l2"]
    if "htp" in report:
        metrics["htp_status"] = report["htp"]["status"]
        if "htp_share" in report["htp"]:
            metrics["htp_share"] = report["htp"]["htp_share"]
        if "numerics" in report["htp"]:
            metrics.update(htp_rel_l2=report["htp"]["vs_cpu_qdq"]["rel_l2"], htp_numerics=report["htp"]["numerics"],
                           htp_float_rel_error=report["htp"]["vs_float"]["rel_l2"])
    if "decoder" in report and "numerics" in report["decoder"].get("htp", {}):
        metrics.update(decoder_htp_rel_l2=report["decoder"]["htp"]["vs_cpu_qdq"]["rel_l2"],
                       decoder_htp_numerics=report["decoder"]["htp"]["numerics"])
    return {**metrics, **_cost_metrics(report)}


def _coreml_metrics(part: dict) -> dict:
    metrics = {"coreml_bytes": part["file_bytes"], "coreml_compressed_weights": part["compressed_weights"],
               "coreml_spec_ok": not part["spec_problems"], "coreml_may_leave_ane": len(part["may_leave_ane"])}
    if "float16_emulation" in part:
        metrics["float16_emulation_rel_error"] = part["float16_emulation"]["rel_l2"]
    return metrics


def _litert_metrics(part: dict) -> dict:
    metrics = {"float_bytes": part["float"]["file_bytes"], "float_rel_error": part["float"]["vs_torch"]["rel_l2"],
               "not_on_apu": len(part["float"]["not_on_apu"])}
    if "quantized" in part:
        metrics.update(quant_bytes=part["quantized"]["file_bytes"],
                       quant_rel_error=part["quantized"]["vs_torch"]["rel_l2"])
    return metrics


def _cost_metrics(report: dict) -> dict:
    """Budget and chain figures, and the chain's frame PSNRs when a decoder was exported beside the student."""
    metrics = {}
    if report.get("budget"):
        metrics.update(gmacs_per_frame=report["budget"]["gmacs_per_frame"],
                       implied_fps=report["budget"]["implied_fps"], budget_fps=report["budget"]["budget_fps"])
    if "decoder" in report:
        metrics.update({f"chain_{k}": v for k, v in report["decoder"]["chain_frames"].items() if k.endswith("_db")})
    if report.get("chain"):
        metrics["chain_gmacs_per_frame"] = report["chain"]["gmacs_per_frame"]
        if report["chain"]["budget"]:
            metrics["chain_implied_fps"] = report["chain"]["budget"]["implied_fps"]
    return metrics
