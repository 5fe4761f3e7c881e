"""`prune`: remove structure from the S2V DiT by measured importance (depth, width) or zero 2 of every 4
weights (sparse_2_4), producing a model that reloads with `from_pretrained`, ready for distillation.

    - kind: prune
      method: depth                      # depth | width | sparse_2_4
      target: {blocks: 32}               # or {drop_blocks: 8}, {ratio: 0.2}, {params: 8e9}
      injectors_on_dropped_blocks: nearest

The artifact holds the pruned weights, `prune_plan.json` (what was removed), `importance.json` and
`importance.png` (the scores), and for sparse_2_4 `sparsity/sparsity_masks.safetensors` (packed bit masks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from compress.prune.config import PruneConfig
from compress.stages.base import Stage
from compress.stages.calibration import Calibrated

if TYPE_CHECKING:
    from torch import nn


def _size(model: "nn.Module") -> tuple[int, int]:
    params = list(model.parameters())
    return sum(p.numel() for p in params), sum(p.numel() * p.element_size() for p in params)


class PruneStage(Calibrated, Stage, PruneConfig):
    kind = "prune"
    key_metrics = ("params_removed_fraction", "velocity_rel_error")
    summary = "prune the S2V DiT: drop blocks (depth), FFN channels and heads (width), or 2:4 sparsity"

    def run(self, source, out, ctx) -> dict:
        import torch

        from compress.prune import MASKS_FILE, apply_plan, plan_prune, save_masks
        from compress.prune.report import plot_importance
        from compress.quant import relative_error
        from compress.reference.seen import SEEN_FIELD, inputs_seen

        model = source.load_model(device=ctx.device).eval()
        calibration = self.calibration_inputs(model, ctx)
        plan = plan_prune(model, self, calibration, ctx.track)
        if self.reference is not None:  # depth and width choose what goes by importance measured on its clips
            role = "calibration" if self.method in ("depth", "width") else "measured"
            out.extra[SEEN_FIELD] = inputs_seen(ctx.reference(self.reference), role)
        with torch.no_grad():
            reference = [model(**x).sample for x in calibration]
        params_before, bytes_before = _size(model)
        model, masks = apply_plan(model, plan)
        with torch.no_grad():
            errors = [relative_error(model(**x).sample, ref) for x, ref in zip(calibration, reference)]
        params_after, bytes_after = _size(model)

        out.save_model(model)
        if masks:
            save_masks(out.path / MASKS_FILE, masks)
        out.write_json("prune_plan.json", {k: v for k, v in plan.to_dict().items() if k != "scores"})
        out.write_json("importance.json", {"method": plan.method, "source": plan.scores_source,
                                           "scores": plan.scores})
        plot_importance(plan, out.path / "importance.png")
        out.extra["figures"] = ["importance.png"]
        facts = plan.summary()
        ctx.log(f"  prune {plan.method}: {params_before:,} -> {params_after:,} parameters")
        return {**facts, "params_before": params_before, "params_after": params_after,
                "bytes_before": bytes_before, "bytes_after": bytes_after,
                "params_removed_fraction": 1 - params_after / params_before,
                "velocity_rel_error": sum(errors) / len(errors), "velocity_rel_error_max": max(errors)}
