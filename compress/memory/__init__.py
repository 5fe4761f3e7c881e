"""VRAM planner: does a model fit on a GPU, for a workload and a multi-GPU layout?

    plan = plan_memory("wan2.2-s2v-14b", "rtx4090", Workload(480, 832, frames=48), "fsdp:5")
    plan.fits, plan.margin_bytes, plan.breakdown, plan.suggestions, plan.to_dict()
    plan_dmd("wan2.2-s2v-14b", "h800", Workload(480, 832, frames=48), DmdSetup(targets, gpus=8))  # DMD training

Every number is labelled `analytic` (config and shapes), `simulated` (the real model code on fake
tensors) or `measured` (CUDA allocator statistics around a real forward). Names are imported on first use.
"""

from compress.utils.lazy import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    "Catalog": "catalog", "Component": "catalog", "Target": "catalog", "load_catalog": "catalog",
    "GpuPlan": "planner", "MemoryPlan": "planner", "plan_memory": "planner", "Suggestion": "suggest",
    "Overheads": "overheads", "ModelSpec": "spec",
    "Item": "workload", "Layout": "workload", "Workload": "workload", "parse_size": "workload",
    "DmdSetup": "training", "TrainingPlan": "training", "plan_dmd": "training",
})
