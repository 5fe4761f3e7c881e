"""plan_memory: the per-GPU peak of a model, workload and layout on a target GPU, every number labelled.

A GPU's peak is the largest of its phases (encode text, encode audio, denoise, decode): the weights
resident during the phase, the phase's activations, and the overheads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from compress.errors import UserInputError

from . import analytic
from .catalog import Catalog, Target, load_catalog
from .measure import measure_dit
from .overheads import Overheads
from .simulate import simulate_dit, simulate_vae_decode
from .spec import ModelSpec, dtype_name
from .suggest import Suggestion, suggestions
from .workload import COMPONENTS, SOURCES, Item, Layout, Workload, tokens_per_frame

ACTIVATION_MODELS = ("ours", "upstream")
MEMORY_MODES = ("lean", "plain")  # WanS2VTransformer3DModel.set_memory_mode
_PHASES = (("encode text", "text_encoder"), ("encode audio", "audio_encoder"), ("denoise", None), ("decode", "vae"))


@dataclass
class GpuPlan:
    role: str
    count: int
    phase: str  # the phase at the peak
    breakdown: list[Item]  # of that phase
    phases: dict[str, int]  # peak bytes of every phase

    @property
    def peak_bytes(self) -> int:
        return sum(item.bytes for item in self.breakdown)

    def to_dict(self) -> dict:
        return {"role": self.role, "count": self.count, "phase": self.phase, "peak_bytes": self.peak_bytes,
                "phases": self.phases, "breakdown": [item.to_dict() for item in self.breakdown]}


@dataclass
class MemoryPlan:
    model: str
    parameters: int
    target: Target
    workload: Workload
    layout: Layout
    source: str
    activation_model: str
    overheads: Overheads
    memory_mode: str
    gpus: list[GpuPlan]
    suggestions: list[Suggestion] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def worst(self) -> GpuPlan:
        return max(self.gpus, key=lambda g: g.peak_bytes)

    peak_bytes = property(lambda self: self.worst.peak_bytes)
    breakdown = property(lambda self: self.worst.breakdown)
    margin_bytes = property(lambda self: self.target.memory_bytes - self.peak_bytes)
    fits = property(lambda self: self.margin_bytes >= 0)

    def to_dict(self) -> dict:
        return {"model": self.model, "parameters": self.parameters, "target": self.target.to_dict(),
                "workload": self.workload.to_dict(), "layout": self.layout.to_dict(), "source": self.source,
                "activation_model": self.activation_model, "memory_mode": self.memory_mode,
                "overheads": dict(self.overheads.__dict__),
                "fits": self.fits, "peak_bytes": self.peak_bytes, "margin_bytes": self.margin_bytes,
                "gpus": [g.to_dict() for g in self.gpus], "suggestions": [s.to_dict() for s in self.suggestions],
                "notes": self.notes}


def _dit_forward(spec: ModelSpec, workload: Workload, layout: Layout, source: str, activation_model: str,
                 memory_mode: str):
    """(weights by dtype, activation items, weight source) of one DiT forward."""
    pipeline = layout.kind == "pipeline"
    args = (workload.dit_batch, layout.frames_per_block if pipeline else workload.latent_frames,
            workload.latent_hw, workload.motion and not pipeline)
    if source == "analytic":
        model = analytic.dit_activations if activation_model == "ours" else analytic.upstream_activations
        return spec.bytes_by_dtype(), model(spec, *args), "analytic"
    run = simulate_dit if source == "simulated" else measure_dit
    result = run(spec, *args, memory_mode=memory_mode)
    note = f"peak in {result.where}" if result.where else ""
    name = f"DiT forward, {memory_mode} (peak above weights)"
    return result.weights_by_dtype, [Item(name, result.activations, source, "activations", note)], source


def _vae_decode(workload: Workload, latent_frames: int, dtype, source: str) -> Item:
    if source == "simulated":
        size = simulate_vae_decode(workload.width, workload.height, latent_frames, dtype).activations
    else:
        source, size = "analytic", analytic.vae_decode_bytes(workload.width, workload.height, latent_frames, dtype)
    return Item("VAE decode", size, source, "activations", note=f"{latent_frames} latent frames")


def dit_weight_items(spec: ModelSpec, by_dtype: dict[str, int], source: str, layout: Layout,
                     denoising: bool) -> list[Item]:
    """The DiT weights one GPU holds in a phase."""
    if layout.kind == "fsdp":
        items = [Item(f"DiT shard 1/{layout.gpus} [{dtype}]", math.ceil(size / layout.gpus), source, "weights")
                 for dtype, size in by_dtype.items()]
        root, units = spec.units(layout.wrap)
        if denoising:
            items.append(Item("FSDP unshard: root unit", root, "analytic", "weights",
                              note=f"everything outside the {layout.wrap} units, gathered for the whole forward"))
        if denoising and units:
            largest = max(units, key=units.get)
            items.append(Item(f"FSDP unshard: {layout.units} x largest {layout.wrap} unit",
                              layout.units * units[largest], "analytic", "weights", note=largest))
        return items
    if not denoising and layout.dit_sequential:
        return []
    if layout.kind == "block-offload":
        root, units = spec.units(layout.wrap)
        return [Item("DiT resident weights", root, "analytic", "weights", note=f"outside the {layout.wrap} units"),
                Item(f"DiT streamed: {layout.units} x largest {layout.wrap} unit",
                     layout.units * max(units.values(), default=0), "analytic", "weights", note="copied from CPU")]
    return [Item(f"DiT weights [{dtype}]", size, source, "weights") for dtype, size in by_dtype.items()]


def _with_overheads(items: list[Item], overheads: Overheads) -> list[Item]:
    transient = sum(item.bytes for item in items if item.kind not in ("weights", "optimizer"))
    return [*items, Item("CUDA context", overheads.cuda_context_bytes, "analytic", "overhead", note="parameter"),
            Item("allocator slack", int(overheads.fragmentation * transient), "analytic", "overhead",
                 note=f"parameter: {overheads.fragmentation:.0%} of non-weight bytes")]


def gpu_plan(role: str, count: int, phases: dict[str, list[Item]], overheads: Overheads) -> GpuPlan:
    phases = {name: _with_overheads(items, overheads) for name, items in phases.items()}
    totals = {name: sum(item.bytes for item in items) for name, items in phases.items()}
    peak = max(totals, key=totals.get)
    return GpuPlan(role, count, peak, phases[peak], totals)


def plan_memory(model: ModelSpec | str, target: Target | str, workload: Workload | None = None,
                layout: Layout | str = "single", source: str = "analytic", *, overheads: Overheads = Overheads(),
                catalog: Catalog | None = None, activation_model: str = "ours", memory_mode: str = "lean",
                suggest: bool = True) -> MemoryPlan:
    """Per-GPU peak memory of running `model` (a ModelSpec, preset name, artifact or model directory).
    `memory_mode` picks our DiT forward: "lean" (the default) or "plain" (upstream's memory behaviour,
    simulated or measured only)."""
    catalog = catalog or load_catalog()
    spec = model if isinstance(model, ModelSpec) else ModelSpec.load(model)
    target = catalog.target(target) if isinstance(target, str) else target
    workload = workload or Workload()
    layout = Layout.parse(layout) if isinstance(layout, str) else layout
    if source not in SOURCES:
        raise UserInputError(f"unknown source '{source}'; known: {', '.join(SOURCES)}")
    if activation_model not in ACTIVATION_MODELS or (activation_model == "upstream" and source != "analytic"):
        raise UserInputError(f"activation model must be one of {ACTIVATION_MODELS}; 'upstream' is analytic only")
    if memory_mode not in MEMORY_MODES:
        raise UserInputError(f"memory mode: expected one of {', '.join(MEMORY_MODES)}; found {memory_mode!r}")
    if memory_mode == "plain" and source == "analytic" and activation_model == "ours":
        raise UserInputError("memory mode 'plain' is simulated or measured only: use source 'simulated' "
                             "(or the upstream activation model for upstream's analytic figure)")
    if "patch_embedding.weight" not in spec.tensors:
        raise UserInputError(f"{spec.name}: memory planning knows the Wan S2V DiT only ({spec.model_class.__name__})")

    by_dtype, dit_acts, weight_source = _dit_forward(spec, workload, layout, source, activation_model, memory_mode)
    pipeline = layout.kind == "pipeline"
    if layout.kind == "fsdp" and layout.sequence_parallel:
        ulysses = f"1/{layout.gpus} of the tokens per GPU (Ulysses)"
        dit_acts = [Item(i.name, math.ceil(i.bytes / layout.gpus), i.source, i.kind,
                         f"{i.note}; {ulysses}".lstrip("; ")) for i in dit_acts]
    if pipeline:
        frames = layout.kv_blocks * layout.frames_per_block + layout.sink_frames
        cached = frames * tokens_per_frame(*workload.latent_hw)
        dit_acts.append(Item("KV cache", analytic.kv_cache_bytes(spec, workload.dit_batch, cached), "analytic",
                             "cache", note=f"{cached:,} tokens x {spec.config['num_layers']} blocks"))
    comps = catalog.components
    phase_acts = {  # built when a phase runs on a GPU (the VAE decode may be simulated)
        "text_encoder": lambda: Item("text encoder forward", analytic.text_encoder_bytes(comps["text_encoder"].dtype),
                                     "analytic", "activations"),
        "audio_encoder": lambda: Item("audio encoder forward", analytic.audio_encoder_bytes(workload.audio_seconds),
                                      "analytic", "activations", note=f"{workload.audio_seconds:g} s of audio"),
        "vae": lambda: _vae_decode(workload, layout.frames_per_block if pipeline else workload.latent_frames,
                                   comps["vae"].dtype, source),
    }
    weights = {name: Item(f"{comps[name].name} weights [{dtype_name(comps[name].dtype)}]", comps[name].bytes,
                          "analytic", "weights", note="catalog") for name in COMPONENTS}
    placement = {**layout.placement, **({"vae": "cpu"} if pipeline else {})}  # TPP decodes on its own GPU

    phases = {}
    for phase, runs in _PHASES:
        if runs is not None and placement[runs] == "cpu":
            continue  # runs on the CPU (or elsewhere): nothing of it on this GPU
        items = dit_weight_items(spec, by_dtype, weight_source, layout, denoising=runs is None)
        items += [weights[name] for name, place in placement.items()
                  if place == "gpu" or (place == "sequential" and name == runs)]
        phases[phase] = items + (dit_acts if runs is None else [phase_acts[runs]()])
    gpus = [gpu_plan("DiT GPU" if pipeline else "each GPU", layout.gpus - pipeline, phases, overheads)]
    if pipeline:
        gpus.append(gpu_plan("decode GPU", 1, {"decode": [weights["vae"], phase_acts["vae"]()]}, overheads))

    notes = [f"DiT activations are those of our {memory_mode} forward (compress.models.s2v), not upstream's; "
             "activation_model='upstream' gives upstream's ~58 x L x D bytes"] if activation_model == "ours" else []
    if pipeline:
        notes.append("pipeline: the DiT forward covers one block's queries (noisy + reference tokens); attention "
                     "over the cached keys is a read of the KV cache, not simulated")
    plan = MemoryPlan(spec.name, spec.parameters, target, workload, layout, source, activation_model, overheads,
                      memory_mode, gpus, notes=notes)
    if suggest and not plan.fits:
        def plan_candidate(spec_, workload_, layout_):
            return plan_memory(spec_, target, workload_, layout_, "analytic", overheads=overheads, catalog=catalog,
                               activation_model=activation_model, suggest=False)

        plan.suggestions = suggestions(spec, target, workload, layout, plan_candidate)
    return plan
