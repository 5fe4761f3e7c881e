"""`compress vram`: will it fit? Per-GPU peak memory, verdict and the cheapest fixes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from compress.cli.common import bounded, one_of, stdout
from compress.errors import UserInputError
from compress.memory.overheads import MAX_CONTEXT_GIB, Overheads
from compress.pipelines.sampling import SAMPLERS, UPSTREAM

GIB = 2**30
TASKS = ("inference", "dmd-train")
DMD_STEPS = 4  # LiveAvatar's distilled generator


def _placement(entries: list[str]) -> dict[str, str]:
    """['text_encoder', 'vae=sequential'] -> {'text_encoder': 'cpu', 'vae': 'sequential'}."""
    from compress.memory.workload import COMPONENTS  # torch

    placement = {}
    for entry in entries:
        name, _, where = entry.partition("=")
        if name == "all":
            placement.update(dict.fromkeys(COMPONENTS, where or "cpu"))
        else:
            placement[name] = where or "cpu"
    return placement


def _guided(cfg: bool | None, guidance: float | None) -> bool:
    """Whether the workload runs classifier-free guidance: --cfg/--no-cfg, or --guidance above 1 (default: on)."""
    if guidance is None:
        return True if cfg is None else cfg
    if cfg is not None and cfg != (guidance > 1):
        raise UserInputError(f"--{'' if cfg else 'no-'}cfg contradicts --guidance {guidance:g} (CFG runs when the "
                             f"scale is above 1); give one of them")
    return guidance > 1


def vram(
    model: Optional[str] = typer.Argument(None, help="a preset name, an artifact or a model directory"),
    preset: Optional[str] = typer.Option(None, "--preset", help="a preset name (instead of MODEL)"),
    target: str = typer.Option(..., "--target", "-t", help="GPU from the catalog, e.g. rtx4090, l40s, h100"),
    size: str = typer.Option("480*832", "--size", help="WIDTH*HEIGHT in pixels (upstream's --size)"),
    frames: int = typer.Option(80, "--frames", help="pixel frames per clip (multiple of 4)"),
    batch: int = typer.Option(1, "--batch"),
    cfg: Optional[bool] = typer.Option(None, "--cfg/--no-cfg", help="classifier-free guidance (two forwards per "
                                       "step); default: on, or as --guidance says"),
    cfg_batched: bool = typer.Option(False, "--cfg-batched", help="run the two CFG forwards as one of batch x 2"),
    sampler: str = typer.Option("unipc", "--sampler", callback=one_of(SAMPLERS), help="unipc (upstream) or euler "
                                "(LiveAvatar's few-step sampler)"),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="sampling steps (DiT forwards per clip, not "
                                        "memory); default 40, and 4 for dmd-train (the generator's rollout, the "
                                        "last step with grad)"),
    guidance: Optional[float] = typer.Option(None, "--guidance", callback=bounded(0, 1e6), help="guidance scale: "
                                             "above 1 is CFG, 0 or 1 none (a distilled 4-step model: --sampler "
                                             "euler --steps 4 --guidance 0)"),
    layout: str = typer.Option("single", "--layout",
                               help="single | offload | block-offload | fsdp:N | pipeline:N"),
    offload: list[str] = typer.Option([], "--offload", help="COMPONENT[=cpu|sequential|gpu] (text_encoder, "
                                      "audio_encoder, vae or all; repeatable); default cpu"),
    wrap: Optional[str] = typer.Option(None, "--wrap", help="fsdp / block-offload unit: block | module | model"),
    units: Optional[int] = typer.Option(None, "--units", help="units gathered (fsdp) or resident (block-offload)"),
    sequence_parallel: bool = typer.Option(False, "--sequence-parallel", help="fsdp: Ulysses splits the tokens"),
    quantize: Optional[str] = typer.Option(None, "--quantize", help="plan the model as a default quantize "
                                           "stage would produce it: fp8_dynamic, fp8_weight_only, int8_..."),
    source: str = typer.Option("analytic", "--source", help="analytic | simulated | measured (needs a GPU)"),
    upstream: bool = typer.Option(False, "--upstream-activations", help="upstream's forward (~58 x L x D bytes)"),
    memory_mode: str = typer.Option("lean", "--memory-mode", help="our DiT forward: lean | plain (upstream's "
                                    "memory behaviour; simulated or measured)"),
    catalog: list[Path] = typer.Option([], "--catalog", help="extra catalog YAML (GPUs, components); repeatable"),
    context_gib: float = typer.Option(Overheads.cuda_context_bytes / GIB, "--context-gib", help="CUDA context per GPU",
                                      callback=bounded(0, MAX_CONTEXT_GIB)),
    fragmentation: float = typer.Option(Overheads.fragmentation, "--fragmentation", callback=bounded(0, 1),
                                        help="allocator slack, fraction of the non-weight bytes"),
    as_json: bool = typer.Option(False, "--json", help="print the plan as JSON"),
    task: str = typer.Option("inference", "--task", help="inference | dmd-train (LoRA DMD distillation: "
                             "generator, fake score and real score)"),
    gpus: int = typer.Option(1, "--gpus", help="dmd-train: GPUs (data parallel)"),
    sharding: str = typer.Option("fsdp", "--sharding", help="dmd-train: fsdp (bases, adapters and optimizer "
                                 "state sharded) | ddp (replicated): the DMD stage's train.sharding | zero2 "
                                 "(gradients and optimizer state sharded; planned only, no stage option)"),
    lora_rank: int = typer.Option(128, "--lora-rank", help="dmd-train: LoRA rank of generator and fake score"),
    generator_base: str = typer.Option("same", "--generator-base", help="dmd-train: the DMD stage's input: same "
                                       "(or MODEL itself: the teacher's one shared base), a quantization scheme "
                                       "(fp8_weight_only, int8_weight_only, ...), or a pruned or quantized artifact "
                                       "/ model directory (its own base)"),
    checkpointing: bool = typer.Option(True, "--checkpointing/--no-checkpointing",
                                       help="dmd-train: activation checkpointing of the DiT blocks (the DMD stage's "
                                            "dmd.checkpointing)"),
) -> None:
    """Per-GPU peak memory of a model on a GPU: breakdown, verdict, and the cheapest changes that fit.
    `--task dmd-train` plans DMD training instead (can I DMD-train the 14B on N GPUs?)."""
    from compress.memory import Layout, ModelSpec, Workload, load_catalog, parse_size, plan_memory  # torch
    from compress.memory.catalog import MIB
    from compress.memory.render import render

    if (model is None) == (preset is None):
        raise UserInputError("give a MODEL (preset, artifact or model directory) or --preset, not both")
    width, height = parse_size(size)
    cfg = _guided(cfg, guidance)
    if task not in TASKS:
        raise UserInputError(f"--task: expected one of {', '.join(TASKS)}; found {task!r}")
    if task == "dmd-train":  # the generator samples with LiveAvatar's Euler sampler
        steps = steps or DMD_STEPS
        return _dmd_train(model or preset, target,
                          Workload(width, height, frames, batch, cfg, cfg_batched, sampler="euler", steps=steps),
                          Overheads(int(context_gib * GIB) // MIB * MIB, fragmentation), load_catalog(*catalog),
                          as_json, gpus=gpus, sharding=sharding, lora_rank=lora_rank, steps=steps,
                          source=source, generator_base=generator_base, checkpointing=checkpointing,
                          inference_only={"--layout": layout != "single", "--quantize": quantize is not None,
                                          "--offload": bool(offload), "--sampler": sampler != "unipc"})
    training_only = {"--gpus": gpus != 1, "--sharding": sharding != "fsdp", "--lora-rank": lora_rank != 128,
                     "--generator-base": generator_base != "same", "--no-checkpointing": not checkpointing}
    given = [name for name, used in training_only.items() if used]
    if given:
        raise UserInputError(f"{', '.join(given)}: options of --task dmd-train, not of an inference plan (inference "
                             f"on several GPUs: --layout fsdp:N or pipeline:N)")
    options = {k: v for k, v in {"wrap": wrap, "units": units}.items() if v is not None}
    spec = ModelSpec.load(model or preset)
    if quantize:
        spec = spec.quantized(quantize)
    plan = plan_memory(
        spec, target,
        Workload(width, height, frames, batch, cfg, cfg_batched, sampler=sampler,
                 steps=steps or UPSTREAM.num_inference_steps),
        Layout.parse(layout, placement=_placement(offload), sequence_parallel=sequence_parallel, **options),
        source, overheads=Overheads(int(context_gib * GIB) // MIB * MIB, fragmentation),
        catalog=load_catalog(*catalog), activation_model="upstream" if upstream else "ours", memory_mode=memory_mode)
    if as_json:
        print(json.dumps(plan.to_dict(), indent=2, default=str))
    else:
        stdout().print(render(plan))


def _generator_spec(generator_base: str, model: str, teacher):
    """None for the teacher's base (`same`, or the teacher itself: the DMD stage shares it); the teacher quantized
    by a scheme; or a pruned / quantized model."""
    from compress.memory import ModelSpec  # torch
    from compress.quant.schemes import SCHEMES

    if generator_base == "same" or _same_model(generator_base, model):
        return None
    if generator_base in SCHEMES:
        return teacher.quantized(generator_base)
    return ModelSpec.load(generator_base)


def _same_model(a: str, b: str) -> bool:
    return a == b or (Path(a).exists() and Path(b).exists() and Path(a).resolve() == Path(b).resolve())


def _dmd_train(model: str, target: str, workload, overheads, catalog, as_json: bool, *, source: str,
               generator_base: str, inference_only: dict[str, bool], **setup) -> None:
    from compress.distill.config import DEFAULT_TARGETS
    from compress.memory import ModelSpec
    from compress.memory.render import render_training
    from compress.memory.training import DmdSetup, plan_dmd

    given = [name for name, used in inference_only.items() if used]
    if given:
        raise UserInputError(f"--task dmd-train: {', '.join(given)} apply to inference plans only; use --gpus, "
                             "--sharding and --generator-base (the generator samples with euler)")
    teacher = ModelSpec.load(model)
    plan = plan_dmd(teacher, target, workload, DmdSetup(tuple(DEFAULT_TARGETS), **setup),
                    _generator_spec(generator_base, model, teacher), source, overheads=overheads, catalog=catalog)
    if as_json:
        print(json.dumps(plan.to_dict(), indent=2, default=str))
    else:
        stdout().print(render_training(plan))
