"""`quantize`: FP8 / INT8 weights (weight-only or dynamic), saved as plain safetensors that reload anywhere.

In memory by default; `streaming: true` quantizes the checkpoint tensor by tensor so that a model
larger than RAM (the 16.3B S2V DiT on a 24 GB machine) never has to be loaded.
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

from pydantic import Field

from compress.errors import UserInputError
from compress.models.auto import checkpoint_layout, meta_model
from compress.quant.config import Granularity, QuantConfig, default_ignore
from compress.quant.schemes import Scheme, get_scheme
from compress.stages.base import Stage
from compress.stages.calibration import Calibrated
from compress.utils.weights import weight_files

if TYPE_CHECKING:
    from torch import nn


class QuantizeStage(Calibrated, Stage):
    kind = "quantize"
    artifact_version = 2  # 2: records the reference clips it saw (inputs_seen), which evaluation reads
    summary = "FP8 / INT8 quantization of Linear weights (and activations for *_dynamic schemes)"
    key_metrics = ("velocity_rel_error", "final_latent_rel_error", "quantized_layers")

    scheme: Scheme
    granularity: Granularity = "per_channel"
    targets: list[str] = Field(default_factory=lambda: ["*"], description="Linear modules to quantize (globs)")
    ignore: list[str] | None = Field(
        default=None, description="Linear modules kept in high precision (globs); default: the model's own list")
    keep_first_last_blocks: bool = Field(default=True, description="keep blocks.0 and the last block unquantized")
    keep_most_sensitive: int = Field(default=0, ge=0, description="mixed precision: keep the worst N layers")
    streaming: bool = Field(default=False, description="quantize the checkpoint tensor by tensor (larger than RAM)")
    shard_size_gb: float = Field(default=2.0, gt=0)

    def quant_config(self, model: "nn.Module") -> QuantConfig:
        ignore = default_ignore(model, self.ignore, self.keep_first_last_blocks)
        return QuantConfig(scheme=self.scheme, granularity=self.granularity, targets=self.targets, ignore=ignore)

    def run(self, source, out, ctx) -> dict:
        import torch

        from compress.quant import layer_sensitivity, most_sensitive, quantize_, save_quantized
        from compress.reference.seen import SEEN_FIELD, inputs_seen

        if self.streaming:
            out.extra[SEEN_FIELD] = {"clips": []}  # tensor by tensor: no reference is read
            return self._run_streaming(source, out, ctx)
        model = source.load_model(device=ctx.device).eval()
        config = self.quant_config(model)
        inputs = self.calibration_inputs(model, ctx)
        if self.reference is not None:  # with keep_most_sensitive, which layers stay float is measured on it
            role = "calibration" if self.keep_most_sensitive else "measured"
            out.extra[SEEN_FIELD] = inputs_seen(ctx.reference(self.reference), role)
        with torch.no_grad():
            reference = [model(**x).sample for x in inputs]
            if self.keep_most_sensitive:
                scores = layer_sensitivity(model, config, lambda m: torch.cat([m(**x).sample for x in inputs]),
                                           ctx.track)
                config = config.with_ignore(*most_sensitive(scores, self.keep_most_sensitive))
                out.write_json("sensitivity.json", scores)
            report = quantize_(model, config)
            errors = self._output_errors(model, inputs, reference, ctx.device)
            if self.reference is not None:
                errors["final_latent_rel_error"] = self._final_latent_error(model, ctx)
        model.save_config(out.path)
        save_quantized(model, out.path, config)
        out.write_json("quant_report.json", report.to_dict())
        ctx.log(f"  {report.summary().splitlines()[0]} (quant_report.json lists every layer)")
        return {"scheme": self.scheme, "quantized_layers": len(report.quantized), "kept_layers": len(report.kept),
                "weight_bytes_before": report.bytes_before, "weight_bytes_after": report.bytes_after, **errors}

    def _output_errors(self, model, inputs, reference, device) -> dict:
        """Relative error of the DiT output (velocity) against the unquantized model on the same inputs."""
        from compress.quant import QuantizedLinear, fp8_kernels_available, relative_error

        emulated = get_scheme(self.scheme).needs_fp8_kernels and not fp8_kernels_available(device)
        if emulated:  # producing FP8 works anywhere; checking it here needs the emulated matmul
            for module in model.modules():
                if isinstance(module, QuantizedLinear):
                    module.allow_emulation = True
        errors = [relative_error(model(**x).sample, ref) for x, ref in zip(inputs, reference)]
        result = {"velocity_rel_error": sum(errors) / len(errors), "velocity_rel_error_max": max(errors)}
        if emulated:
            result["evaluated_with"] = "fp8 emulation (no FP8 kernels on this machine)"
        return result

    def _final_latent_error(self, model, ctx) -> float:
        """Relative error of the final latents: the reference's first input generated again with this model."""
        from compress.quant import relative_error

        reference = ctx.reference(self.reference)
        return relative_error(reference.regenerate(model)(0).latents, reference.teacher(0)["latents"])

    def _run_streaming(self, source, out, ctx) -> dict:
        from compress.quant import linear_module_names, quantize_checkpoint

        model_dir = source.model_dir
        if model_dir is None or not weight_files(model_dir):
            raise UserInputError(f"quantize: streaming needs a model directory with safetensors; {source.path} has none")
        cls, config, rename = checkpoint_layout(model_dir)
        structure = meta_model(cls, config)
        report = quantize_checkpoint(model_dir, out.path / "_stream", self.quant_config(structure),
                                     shard_bytes=int(self.shard_size_gb * 1e9),
                                     linear_names=linear_module_names(structure), rename=rename, track=ctx.track)
        for path in (out.path / "_stream").iterdir():
            shutil.move(path, out.path / path.name)
        (out.path / "_stream").rmdir()
        structure.save_config(out.path)
        out.write_json("quant_report.json", report.to_dict())
        return {"scheme": self.scheme, "quantized_layers": len(report.quantized), "kept_layers": len(report.kept),
                "weight_bytes_before": report.bytes_before, "weight_bytes_after": report.bytes_after}
