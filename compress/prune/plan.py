"""Planning (what goes, the size after) and applying a prune of the S2V DiT.

    plan = plan_prune(model, PruneConfig(method="depth", target={"blocks": 32}), calibration)
    pruned, masks = apply_plan(model, plan)

Counts never depend on the scores (except which audio injectors go with dropped blocks), so a plan for a
model on the meta device uses a stated placeholder order instead of measured importance.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from compress.errors import UserInputError
from compress.prune.config import PruneConfig
from compress.prune.importance import (
    DEPTH_MEASURES,
    PLACEHOLDER_DEPTH,
    PLACEHOLDER_WIDTH,
    block_ablation,
    block_importance,
    placeholder_block_scores,
    placeholder_width_scores,
    top_indices,
    width_importance,
)
from compress.prune.sparsity import mask_2_4, sparse_layers, sparsify_2_4
from compress.prune.surgery import count_parameters, depth_config, drop_blocks, model_config, prune_width
from compress.utils.console import untracked

SPARSE_NOTE = "sparse, not smaller: dense weights with zeros, no speed-up without 2:4 sparse kernels"
_CONFIG_KEY = {"ffn": "ffn_dim", "heads": "attention_heads", "audio_heads": "audio_attention_heads"}
_TARGET_FIELD = {"ffn": "ffn_dim", "heads": "heads", "audio_heads": "audio_heads"}


class PruneTargetError(UserInputError, ValueError):
    """A target this model cannot meet; the message names the target field."""


@dataclass
class PrunePlan:
    method: str
    scores_source: str
    config_before: dict
    config_after: dict
    params_before: int
    params_after: int
    #: depth {"blocks": [...]}; width {unit: [per channel / head]}; sparse_2_4 {layer: squared magnitude kept}
    scores: dict[str, list[float] | float] = field(default_factory=dict)
    injectors_on_dropped_blocks: str = "drop"
    dropped_blocks: list[int] = field(default_factory=list)
    #: depth: per injector, the block it followed and the surviving block it follows now (old numbering) or None
    injectors: list[dict] = field(default_factory=list)
    #: width: per unit ('blocks.i.ffn', 'blocks.i.attn1', 'audio_injectors.k.attn') the kept channels / heads
    keep: dict[str, list[int]] = field(default_factory=dict)
    sparse_layers: list[str] = field(default_factory=list)
    skipped_layers: list[str] = field(default_factory=list)
    zeroed_weights: int = 0

    def summary(self) -> dict:
        """The plan's facts without the per-unit lists: for the CLI and the stage's metrics."""
        before, after = self.config_before, self.config_after
        facts = {"method": self.method, "params_before": self.params_before, "params_after": self.params_after,
                 "params_removed": self.params_before - self.params_after, "scores": self.scores_source}
        if self.method == "depth":
            facts.update(blocks_before=before["num_layers"], blocks_after=after["num_layers"],
                         dropped_blocks=self.dropped_blocks, audio_inject_layers=after["audio_inject_layers"],
                         dropped_injectors=[i["block"] for i in self.injectors if i["after_block"] is None],
                         moved_injectors=[[i["block"], i["after_block"]] for i in self.injectors
                                          if i["after_block"] not in (None, i["block"])])
        elif self.method == "width":
            heads = before["num_attention_heads"]
            for key in _CONFIG_KEY.values():
                old, new = before[key] or heads, after[key] or heads
                if old != new:
                    facts[key] = {"before": old, "after": new}
        else:
            facts.update(sparse_layers=len(self.sparse_layers), skipped_layers=self.skipped_layers,
                         zeroed_weights=self.zeroed_weights, note=SPARSE_NOTE)
        return facts

    def to_dict(self) -> dict:
        return asdict(self)


def _fail(field_name: str, message: str) -> PruneTargetError:
    return PruneTargetError(f"prune target.{field_name}: {message}")


def plan_prune(model: nn.Module, config: PruneConfig, calibration: list[dict] | None = None,
               track=untracked) -> PrunePlan:
    """What `config` removes from `model` (an S2V DiT) and the parameter count after, without changing it.
    With calibration inputs (forward kwargs) measured importance chooses what goes; without them (required
    for a model on the meta device) a placeholder order does, and the plan says so. `track(iterable,
    description, total)` may wrap the calibration loop in a progress bar."""
    from compress.models.s2v import WanS2VTransformer3DModel
    from compress.quant import QuantizedLinear

    if not isinstance(model, WanS2VTransformer3DModel):
        raise UserInputError(f"prune supports WanS2VTransformer3DModel, not {type(model).__name__}")
    if any(isinstance(m, QuantizedLinear) for m in model.modules()):
        raise UserInputError("prune needs an unquantized model: prune first, then quantize")
    if calibration is not None and any(p.is_meta for p in model.parameters()):
        raise ValueError("calibration needs real weights; plan a meta-device model without calibration")
    planner = {"depth": _plan_depth, "width": _plan_width, "sparse_2_4": _plan_sparse}[config.method]
    return planner(model, config, calibration, track)


def _plan_depth(model, config: PruneConfig, calibration, track) -> PrunePlan:
    cfg, target, mode = model_config(model), config.target, config.injectors_on_dropped_blocks
    n = cfg["num_layers"]
    if calibration:
        measure = config.depth_importance
        scores = (block_ablation(model, calibration, mode, track) if measure == "ablation"
                  else block_importance(model, calibration, track))
        source = DEPTH_MEASURES[measure][0]
    else:
        scores, source = placeholder_block_scores(n), PLACEHOLDER_DEPTH
    order = sorted(range(n), key=lambda i: (scores[i], -i))  # least important first

    def size(drop: int) -> int:
        return count_parameters(type(model), depth_config(cfg, order[:drop], mode)[0])

    if target.blocks is not None:
        if target.blocks >= n:
            raise _fail("blocks", f"{target.blocks} blocks to keep, but the model has {n}: at most {n - 1}")
        drop = n - target.blocks
    elif target.drop_blocks is not None:
        if target.drop_blocks >= n:
            raise _fail("drop_blocks", f"cannot remove {target.drop_blocks} of the model's {n} blocks (one must stay)")
        drop = target.drop_blocks
    elif target.ratio is not None:
        drop = round(target.ratio * n)
        if not 0 < drop < n:
            raise _fail("ratio", f"{target.ratio} of {n} blocks rounds to {drop} blocks; choose a ratio that "
                                 f"removes between 1 and {n - 1}")
    else:
        drop = _smallest_step(size, n - 1, target.params)
    dropped = sorted(order[:drop])
    config_after, moved = depth_config(cfg, dropped, mode)
    injectors = [{"block": b, "after_block": t} for b, t in zip(cfg["audio_inject_layers"], moved)]
    return PrunePlan("depth", source, cfg, config_after, size(0), size(drop), {"blocks": scores},
                     injectors_on_dropped_blocks=mode, dropped_blocks=dropped, injectors=injectors)


def _smallest_step(size, last: int, budget: float) -> int:
    """The smallest step s in [1, last] with size(s) <= budget (size decreases with s): binary search."""
    if size(0) <= budget:
        raise _fail("params", f"the model already has {size(0):,} <= {budget:,.0f} parameters; nothing to remove")
    if size(last) > budget:
        raise _fail("params", f"{budget:,.0f} is below the smallest structure this method reaches ({size(last):,})")
    lo, hi = 1, last
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if size(mid) <= budget else (mid + 1, hi)
    return lo


def _plan_width(model, config: PruneConfig, calibration, track) -> PrunePlan:
    cfg, target = model_config(model), config.target
    current = {p: cfg[k] or cfg["num_attention_heads"] for p, k in _CONFIG_KEY.items()}

    def config_for(new: dict) -> dict:
        return {**cfg, **{_CONFIG_KEY[p]: v for p, v in new.items()}}

    if target.ratio is None and target.params is None:
        new = {p: getattr(target, f) for p, f in _TARGET_FIELD.items() if getattr(target, f) is not None}
        for part, value in new.items():
            if value >= current[part]:
                raise _fail(_TARGET_FIELD[part], f"{value} must be below the model's current {current[part]}")
    elif target.ratio is not None:
        new = {p: max(1, round(current[p] * (1 - target.ratio))) for p in config.parts}
        if new == {p: current[p] for p in new}:
            raise _fail("ratio", f"{target.ratio} removes nothing from {', '.join(config.parts)} (rounding)")
    else:
        steps = max(current[p] for p in config.parts)

        def shape(step: int) -> dict:
            return {p: current[p] - step * current[p] // steps for p in config.parts}

        new = shape(_smallest_step(lambda s: count_parameters(type(model), config_for(shape(s))), steps - 1,
                                   target.params))
    parts = list(new)
    if calibration:
        scores, source = width_importance(model, calibration, parts, track), \
            "calibration: mean |activation| per FFN channel, mean output-projection norm per head"
    else:
        scores, source = placeholder_width_scores(model, parts), PLACEHOLDER_WIDTH
    part_of = {"ffn": "ffn", "attn": "audio_heads", "attn1": "heads", "attn2": "heads"}
    keep = {unit: top_indices(s, new[part_of[unit.rsplit(".", 1)[1]]]).tolist() for unit, s in scores.items()}
    after = config_for(new)
    return PrunePlan("width", source, cfg, after, count_parameters(type(model), cfg),
                     count_parameters(type(model), after), {u: s.tolist() for u, s in scores.items()}, keep=keep)


def _plan_sparse(model, config: PruneConfig, _calibration, _track) -> PrunePlan:
    layers, skipped = sparse_layers(model, config.targets, config.ignore)
    if not layers:
        raise PruneTargetError(f"prune targets: no Linear module with in_features divisible by 4 matches "
                               f"{config.targets} (ignoring {config.ignore})")
    weights = [model.get_submodule(name).weight for name in layers]
    scores = {} if weights[0].is_meta else {
        name: ((w * mask_2_4(w)).float().square().sum() / w.float().square().sum().clamp_min(1e-30)).item()
        for name, w in zip(layers, weights)}
    params = sum(p.numel() for p in model.parameters())
    return PrunePlan("sparse_2_4", "weight magnitude (no calibration needed)", model_config(model),
                     model_config(model), params, params, scores, sparse_layers=layers, skipped_layers=skipped,
                     zeroed_weights=sum(w.numel() // 2 for w in weights))


def apply_plan(model: nn.Module, plan: PrunePlan) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """(pruned model, 2:4 masks by parameter name, empty for depth and width). Depth and width build a new
    model and leave `model` as it was (sharing unpruned tensors); sparse_2_4 zeroes `model`'s weights in place."""
    if model_config(model) != plan.config_before:
        raise ValueError("the plan was made for a model of another config")
    if plan.method == "depth":
        return drop_blocks(model, plan.dropped_blocks, plan.injectors_on_dropped_blocks), {}
    if plan.method == "width":
        return prune_width(model, {u: torch.tensor(k) for u, k in plan.keep.items()}, plan.config_after), {}
    return model, sparsify_2_4(model, plan.sparse_layers)
