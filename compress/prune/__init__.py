"""Structured pruning of the S2V DiT by measured importance: depth (whole blocks), width (FFN channels,
attention heads) and 2:4 magnitude sparsity. Usable without a recipe:

    calibration = random_dit_inputs(model, 4)  # compress.reference.calibration
    plan = plan_prune(model, PruneConfig(method="depth", target={"blocks": 32}), calibration)
    print(plan.summary())
    pruned, masks = apply_plan(model, plan)   # masks: only for sparse_2_4
"""

from compress.prune.config import PruneConfig, PruneMethod, PruneTarget
from compress.prune.importance import block_importance, width_importance
from compress.prune.plan import SPARSE_NOTE, PrunePlan, PruneTargetError, apply_plan, plan_prune
from compress.prune.sparsity import MASKS_FILE, apply_masks, load_masks, mask_2_4, save_masks, sparsify_2_4
from compress.prune.surgery import count_parameters, drop_blocks, prune_width, remap_injectors

__all__ = [
    "MASKS_FILE", "SPARSE_NOTE", "PruneConfig", "PruneMethod", "PrunePlan", "PruneTarget", "PruneTargetError",
    "apply_masks", "apply_plan", "block_importance", "count_parameters", "drop_blocks",
    "load_masks", "mask_2_4", "plan_prune", "prune_width", "remap_injectors", "save_masks", "sparsify_2_4",
    "width_importance",
]
