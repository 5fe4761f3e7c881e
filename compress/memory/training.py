"""plan_dmd: can I DMD-train the DiT on N GPUs? The per-GPU peak of one distribution-matching step.

DMD (as LiveAvatar distils Wan2.2-S2V to 4 steps) trains two LoRA adapter sets on frozen bases:
- the generator: adapters on the teacher's base, or on a base of its own (pruned, or quantized: our LoRA
  trains over its dequantized view, compress.distill.lora_adapters), rolled out for `steps` steps, the last
  one with grad;
- the fake score: adapters on the teacher's base, trained on the generator's samples;
- the real score: the teacher itself (adapters disabled), with classifier-free guidance, no grad.
Real and fake score share one frozen teacher base; the generator shares it too when its base is the teacher's
(`generator_base` None: LiveAvatar's layout). compress's own DMD stage (`compress.distill.dmd_training`) runs the
layout planned here, one to one: a generator input that is the teacher itself shares its base (else its own),
`train.sharding` is `fsdp` or `ddp` and `dmd.checkpointing` the block checkpointing; a plan's last note names them.

One step's phases, each with its peak: the no-grad rollout; the DMD loss (real and fake score forwards while
the generator's graph is held); the generator's backward; the fake score's update (forward with grad and
backward). The optimizer step holds no activations and stays below them. The whole clip is denoised at once
(bidirectional attention), as compress trains it; LiveAvatar's block-causal rollout with a KV cache is not
modelled. The bases are replicated (ddp, zero2) or fully sharded over the GPUs (fsdp:
FSDP2 over DiT blocks, one block gathered at a time); LoRA weights are float32 with AdamW's two float32
moments, sharded by fsdp (weights, gradients, moments) and zero2 (gradients, moments); their gradients and
moments are kind "optimizer" (persistent: no allocator slack is charged on them).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch

from compress.errors import UserInputError

from .analytic import dit_activations
from .catalog import Catalog, Target, load_catalog
from .overheads import Overheads
from .planner import GpuPlan, MemoryPlan, dit_weight_items, gpu_plan
from .simulate import simulate_dit
from .spec import ModelSpec
from .suggest import Suggestion, training_suggestions
from .training_activations import (
    adapted_linears,
    lora_parameters,
    lora_weight_copies,
    training_activations,
    without_inputs,
)
from .training_simulate import simulate_training_step
from .workload import MAX_GPUS, Item, Layout, Workload

SHARDINGS = ("fsdp", "zero2", "ddp")
TRAINING_SOURCES = ("analytic", "simulated")
MAX_RANK, MAX_STEPS = 4096, 1000
_LORA_BYTES, _ADAM_BYTES = 4, 8  # float32 adapters; AdamW's exp_avg and exp_avg_sq


@dataclass(frozen=True)
class DmdSetup:
    """How the DMD step runs: GPUs and sharding, LoRA, generator rollout steps, block checkpointing."""

    lora_targets: tuple[str, ...]
    gpus: int = 1
    sharding: str = "fsdp"
    lora_rank: int = 128
    steps: int = 4
    checkpointing: bool = True

    def __post_init__(self):
        if self.sharding not in SHARDINGS:
            raise UserInputError(f"sharding: expected one of {', '.join(SHARDINGS)}; found {self.sharding!r}")
        for name, value, high in (("gpus", self.gpus, MAX_GPUS), ("lora rank", self.lora_rank, MAX_RANK),
                                  ("steps", self.steps, MAX_STEPS)):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
                raise UserInputError(f"{name}: expected a whole number from 1 to {high}; found {value!r}")
        if not self.lora_targets:
            raise UserInputError("lora targets: give at least one Linear name pattern")

    @property
    def label(self) -> str:
        return f"{self.gpus} GPU{'s' if self.gpus > 1 else ''}, {self.sharding}"

    def to_dict(self) -> dict:
        return {**asdict(self), "lora_targets": list(self.lora_targets)}


@dataclass
class TrainingPlan:
    model: str
    generator: str  # "same" (the teacher's base) or the generator base's name
    target: Target
    workload: Workload
    setup: DmdSetup
    source: str  # of the activations
    overheads: Overheads
    lora_parameters: dict[str, int]  # per adapter set
    gpus: list[GpuPlan]
    suggestions: list[Suggestion] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    worst, peak_bytes, breakdown = MemoryPlan.worst, MemoryPlan.peak_bytes, MemoryPlan.breakdown
    margin_bytes, fits = MemoryPlan.margin_bytes, MemoryPlan.fits

    def to_dict(self) -> dict:
        return {"task": "dmd-train", "model": self.model, "generator_base": self.generator,
                "target": self.target.to_dict(), "workload": self.workload.to_dict(), "setup": self.setup.to_dict(),
                "source": self.source, "overheads": dict(self.overheads.__dict__),
                "lora_parameters": self.lora_parameters,
                "fits": self.fits, "peak_bytes": self.peak_bytes, "margin_bytes": self.margin_bytes,
                "gpus": [g.to_dict() for g in self.gpus], "suggestions": [s.to_dict() for s in self.suggestions],
                "notes": self.notes}


def dequantized_view(spec: ModelSpec) -> ModelSpec:
    """What LoRA trains over for a quantized base: every quantized Linear a frozen Linear holding its weight
    dequantized to its bias's dtype (else float32), as compress.distill.lora_adapters.dequantize_view does."""
    if spec.quant is None:
        return spec
    quantized, tensors = set(spec.quant.quantized_modules), {}
    for key, (shape, dtype) in spec.tensors.items():
        module, _, leaf = key.rpartition(".")
        if module not in quantized or leaf == "bias":
            tensors[key] = (shape, dtype)
        elif leaf == "weight":  # its scales are dropped
            tensors[key] = (shape, spec.tensors.get(f"{module}.bias", (None, torch.float32))[1])
    return ModelSpec(f"{spec.name}, dequantized view", spec.model_class, spec.config, tensors)


def _base_items(role: str, spec: ModelSpec, layout: Layout, running: bool) -> list[Item]:
    """A frozen base's weights on one GPU; under FSDP the gathered units only while it runs."""
    items = dit_weight_items(spec, spec.bytes_by_dtype(), "analytic", layout, denoising=running)
    return [Item(f"{role}: {item.name}", item.bytes, item.source, item.kind, item.note) for item in items]


def _lora_items(lora: dict[str, int], setup: DmdSetup, training: str | None) -> list[Item]:
    """Adapter weights and AdamW moments of both sets, the gradients of the set `training`."""
    n = setup.gpus
    share = lambda sharded: (lambda size: math.ceil(size / n) if sharded and n > 1 else size)  # noqa: E731
    weights, state = share(setup.sharding == "fsdp"), share(setup.sharding in ("fsdp", "zero2"))
    where = lambda sharded: f"1/{n} per GPU ({setup.sharding})" if sharded and n > 1 else "replicated"  # noqa: E731
    items = []
    for name, count in lora.items():
        items.append(Item(f"{name} LoRA weights [float32]", weights(_LORA_BYTES * count), "analytic", "weights",
                          note=f"{count / 1e6:.0f}M parameters, {where(setup.sharding == 'fsdp')}"))
        items.append(Item(f"{name} AdamW moments [float32]", state(_ADAM_BYTES * count), "analytic", "optimizer",
                          note=where(setup.sharding != "ddp")))
    if training is not None:
        items.append(Item(f"{training} LoRA gradients [float32]", state(_LORA_BYTES * lora[training]), "analytic",
                          "optimizer", note=where(setup.sharding != "ddp")))
    return items


def _named(prefix: str, items: list[Item]) -> list[Item]:
    return [Item(f"{prefix}: {i.name}", i.bytes, i.source, i.kind, i.note) for i in items]


@dataclass
class _Passes:
    """Activations of one network: saved by its forward with grad, added by its backward, of a no-grad forward."""

    saved: list[Item]
    backward: list[Item]
    no_grad: list[Item]


def _network_passes(spec: ModelSpec, adapted, setup: DmdSetup, workload: Workload, source: str) -> _Passes:
    args = (workload.batch, workload.latent_frames, workload.latent_hw, workload.motion)
    if source == "analytic":
        saved, backward = training_activations(spec, adapted, setup.lora_rank, *args, setup.checkpointing)
        no_grad = [*dit_activations(spec, *args), lora_weight_copies(spec, adapted, setup.lora_rank)]
        return _Passes(saved, backward, no_grad)
    step = simulate_training_step(spec, setup.lora_targets, setup.lora_rank, *args, setup.checkpointing)
    item = lambda name, size: [Item(name, size, "simulated", "activations")]  # noqa: E731
    return _Passes(item("saved for the backward", step.saved),
                   item("backward working set", step.backward - step.saved),
                   item("forward peak (LoRA on)", step.no_grad_forward))


def _score_forward(teacher: ModelSpec, workload: Workload, source: str) -> list[Item]:
    """One real-score forward (the teacher without adapters), batch x 2 when CFG is batched; analytic without
    its inputs (the generator's text and audio, held by its graph)."""
    args = (workload.dit_batch, workload.latent_frames, workload.latent_hw, workload.motion)
    if source == "analytic":
        return without_inputs(dit_activations(teacher, *args))
    return [Item("forward peak", simulate_dit(teacher, *args).activations, "simulated", "activations")]


def _stage_settings(setup: DmdSetup, generator: ModelSpec | None) -> str:
    """The distill stage's settings that train in the planned layout."""
    if setup.sharding == "zero2":
        return "zero2 is planned only: the DMD stage shards its bases (train.sharding: fsdp) or replicates them (ddp)"
    base = ("input: the teacher itself (one shared base)" if generator is None
            else f"input: {generator.name} (the generator's own base)")
    launch = f"under torchrun --nproc_per_node {setup.gpus}" if setup.gpus > 1 else "in one process"
    return (f"the distill stage (method: dmd) trains this layout with {base}, train.sharding: {setup.sharding}, "
            f"dmd.checkpointing: {str(setup.checkpointing).lower()}, {launch}")


def plan_dmd(teacher: ModelSpec | str, target: Target | str, workload: Workload | None, setup: DmdSetup,
             generator: ModelSpec | None = None, source: str = "analytic", *, overheads: Overheads = Overheads(),
             catalog: Catalog | None = None, suggest: bool = True) -> TrainingPlan:
    """Per-GPU peak of one DMD step of `teacher` (generator on the teacher's base when `generator` is None,
    else on `generator`'s base: a pruned or quantized teacher). Activations `analytic`, or `simulated` (the
    model code's training step on fake tensors: minutes for the 14B); weights and optimizer state analytic."""
    if source not in TRAINING_SOURCES:
        raise UserInputError(f"training plans: source must be one of {', '.join(TRAINING_SOURCES)}; "
                             f"found {source!r}")
    catalog = catalog or load_catalog()
    teacher = teacher if isinstance(teacher, ModelSpec) else ModelSpec.load(teacher)
    target = catalog.target(target) if isinstance(target, str) else target
    workload = workload or Workload()
    for spec in (teacher, generator):
        if spec is not None and "patch_embedding.weight" not in spec.tensors:
            raise UserInputError(f"{spec.name}: memory planning knows the Wan S2V DiT only")
    if teacher.quant is not None:
        raise UserInputError(f"{teacher.name}: the teacher (real and fake score base) must be unquantized; "
                             "give a quantized base as the generator's")
    gen_base = dequantized_view(generator) if generator is not None else teacher
    adapted = {"generator": adapted_linears(gen_base, setup.lora_targets),
               "fake score": adapted_linears(teacher, setup.lora_targets)}
    lora = {name: lora_parameters(linears, setup.lora_rank) for name, linears in adapted.items()}
    layout = Layout("fsdp", setup.gpus) if setup.sharding == "fsdp" and setup.gpus > 1 else Layout("single")

    def weights(running: ModelSpec | None, training: str | None) -> list[Item]:
        items = _base_items("teacher base" if generator is None else "teacher base (scores)", teacher, layout,
                            running is teacher)
        if generator is not None:
            items += _base_items("generator base", gen_base, layout, running is gen_base)
        return items + _lora_items(lora, setup, training)

    gen = _network_passes(gen_base, adapted["generator"], setup, workload, source)
    fake = gen if generator is None else _network_passes(teacher, adapted["fake score"], setup, workload, source)
    score = _named("real / fake score forward, no grad", _score_forward(teacher, workload, source))
    phases = {
        "DMD loss (score forwards, generator graph held)":
            weights(teacher, None) + _named("generator", gen.saved) + score,
        "generator backward": weights(gen_base, "generator") + _named("generator", gen.saved + gen.backward),
        "fake score update": weights(teacher, "fake score") + _named("fake score", fake.saved + fake.backward),
    }
    if setup.steps > 1:
        phases = {f"generator rollout ({setup.steps - 1} no-grad steps)":
                  weights(gen_base, None) + _named("generator forward, no grad", gen.no_grad), **phases}
    gpu = gpu_plan("each GPU", setup.gpus, phases, overheads)
    notes = [
        f"activations {source}; the analytic training terms are held to a fake-tensor training step of the "
        "model code with LoRA (tests/memory/test_training_activations.py)",
        "the text and audio encoders and the VAE run before training (cached embeddings and latents, as "
        "LiveAvatar's t5_cpu): not on these GPUs; NCCL buffers are not counted",
    ]
    if generator is not None and generator.quant is not None:
        notes.append(f"generator base {generator.name}: LoRA trains over its dequantized view "
                     f"({gen_base.total_bytes / 1e9:.2f} GB, not the quantized {generator.total_bytes / 1e9:.2f} GB)")
    notes.append(_stage_settings(setup, generator))
    plan = TrainingPlan(teacher.name, "same" if generator is None else generator.name, target, workload, setup,
                        source, overheads, lora, [gpu], notes=notes)
    if suggest and not plan.fits:
        def plan_candidate(setup_, workload_, generator_):
            return plan_dmd(teacher, target, workload_, setup_, generator_, overheads=overheads, catalog=catalog,
                            suggest=False)  # analytic, to stay fast

        plan.suggestions = training_suggestions(setup, workload, generator, plan_candidate)
    return plan
