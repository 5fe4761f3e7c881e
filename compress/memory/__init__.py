"""VRAM planner: does a model fit on a GPU, for a workload and a multi-GPU layout?

    plan = plan_memory("wan2.2-s2v-14b", "rtx4090", Workload(480, 832, frames=48), "fsdp:5")
    plan.fits, plan.margin_bytes, plan.breakdown, plan.suggestions, plan.to_dict()

Every number is labelled `analytic` (config and shapes), `simulated` (the real model code on fake
tensors) or `measured` (CUDA allocator statistics around a real forward).
"""

from .catalog import Catalog, Component, Target, load_catalog
from .planner import GpuPlan, MemoryPlan, Overheads, plan_memory
from .spec import ModelSpec
from .suggest import Suggestion
from .workload import Item, Layout, Workload, parse_size

__all__ = [
    "Catalog", "Component", "GpuPlan", "Item", "Layout", "MemoryPlan", "ModelSpec", "Overheads", "Suggestion",
    "Target", "Workload", "load_catalog", "parse_size", "plan_memory",
]
