"""Structured pruning of the S2V DiT by measured importance: depth (whole blocks), width (FFN channels,
attention heads) and 2:4 magnitude sparsity. Usable without a recipe:

    calibration = random_dit_inputs(model, 4)  # compress.reference.calibration
    plan = plan_prune(model, PruneConfig(method="depth", target={"blocks": 32}), calibration)
    print(plan.summary())
    pruned, masks = apply_plan(model, plan)   # masks: only for sparse_2_4

Names are imported on first use, so `compress.prune.config` stays light.
"""

from compress.utils.lazy import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    "PruneConfig": "config", "PruneMethod": "config", "PruneTarget": "config",
    "block_importance": "importance", "width_importance": "importance",
    "SPARSE_NOTE": "plan", "PrunePlan": "plan", "PruneTargetError": "plan", "apply_plan": "plan",
    "plan_prune": "plan",
    "MASKS_FILE": "sparsity", "apply_masks": "sparsity", "load_masks": "sparsity", "mask_2_4": "sparsity",
    "save_masks": "sparsity", "sparsify_2_4": "sparsity",
    "count_parameters": "surgery", "drop_blocks": "surgery", "prune_width": "surgery", "remap_injectors": "surgery",
})
