"""LoRA recovery: train peft LoRA adapters on a pruned and/or quantized S2V DiT so that it matches its teacher.

The loss is the flow-matching velocity MSE against the unpruned, unquantized teacher, run live (no grad) on the
same noised reference latents at sampled noise levels (`sigma_shift`: the sampler's shifted levels), plus optional
feature matching of chosen block outputs. With `guidance_scale` > 1 both models' velocities are the classifier-free
guided ones the pipeline samples with (the unconditional branch: negative prompt, silent audio), so the audio's
effect, which guidance amplifies, is what is matched; `unconditional_weight` adds the unconditional branch's own
error (left untrained, it drifts, and guidance amplifies the drift: on the demo teacher's depth prune, tier-A gain
1.23 without it, 0.91 with it); `mouth_weight` weights the error up inside each clip's mouth box (on the demo
teacher it lifts tier-A lip sync far more than it moves the velocity error).
A quantized base trains over a dequantized view and is merged back by merging, then quantizing again with its
own QuantConfig (`compress.distill.lora_adapters`).

    metrics = run_lora_recovery(source, teacher, reference, LoraRecoveryConfig(rank=16), train_config, out, ctx)

The artifact holds `adapters/` (peft: adapter_config.json + adapter_model.safetensors) and, with `merge`, the
merged model at its root (re-quantized when the base was quantized), loadable with `Artifact.load_model`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from compress.distill.config import LoraRecoveryConfig
from compress.distill.data import mouth_boxes, stream_seed
from compress.distill.lora_adapters import (
    attach_adapters,
    check_mergeable,
    lora_parameters,
    merge_adapters,
    save_adapters,
)
from compress.distill.losses import region_weights, weighted_error
from compress.errors import UserInputError
from compress.pipelines.components import NUM_TRAIN_TIMESTEPS
from compress.pipelines.sampling import guided, shifted_sigma
from compress.quant import QUANT_CONFIG_NAME, QuantizedStructure, relative_error, save_quantized
from compress.reference.calibration import dit_calibration_inputs, random_dit_inputs
from compress.reference.samples import latent_clips, noised_dit_inputs, unconditional

ADAPTERS_DIR = "adapters"
_TRAIN, _HOLDOUT = 0, 1  # seed streams: training batches and held-out validation inputs never share a seed
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


class DitInputs:
    """Deterministic DiT forward inputs: noised clips of a `ReferenceArtifact`, or random inputs without one."""

    def __init__(self, model: nn.Module, reference=None, device=None, sigma_shift: float = 1.0):
        self.model, self.reference, self.device, self.sigma_shift = model, reference, device, sigma_shift
        self.clips = latent_clips(reference.rows) if reference is not None else []

    def draw(self, seed: int) -> tuple[float, dict, dict | None]:
        """(sigma, input, its reference row or None): u uniform in (0, 1), sigma its shifted value."""
        generator = torch.Generator().manual_seed(seed)
        u = float(torch.rand((), generator=generator))
        sigma = min(max(shifted_sigma(u, self.sigma_shift), 1e-3), 1 - 1e-3)
        row = None
        if self.clips:
            row, clip = self.clips[int(torch.randint(len(self.clips), (), generator=generator))]
            inputs, _ = noised_dit_inputs(row, clip, sigma, generator)
        else:
            inputs = self.model.example_inputs(seed=seed)
            inputs["timestep"] = torch.full_like(inputs["timestep"], sigma * NUM_TRAIN_TIMESTEPS)
        return sigma, {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}, row

    def validation(self, count: int, seed: int) -> list[dict]:
        """`count` held-out inputs at evenly spaced noise levels (seeds no training batch uses)."""
        if self.reference is None:
            return random_dit_inputs(self.model, count, stream_seed(_HOLDOUT, seed), self.device)
        return dit_calibration_inputs(self.reference, count, stream_seed(_HOLDOUT, seed), self.device)


class LoraRecoveryTask:
    """The trainer's task: `model` (with adapters) learns the `teacher`'s velocity (and block outputs)."""

    def __init__(self, model: nn.Module, teacher: nn.Module, inputs: DitInputs, config: LoraRecoveryConfig,
                 batch_size: int = 1, teacher_blocks: list[int] | None = None):
        self.model, self.teacher, self.inputs, self.config = model, teacher.eval().requires_grad_(False), inputs, config
        self.batch_size = batch_size
        teacher_blocks = teacher_blocks if teacher_blocks is not None else list(range(len(model.blocks)))
        bad = [b for b in config.feature_blocks if not 0 <= b < len(model.blocks)]
        if bad:
            raise UserInputError(f"lora feature_blocks: {bad} out of range; the model has {len(model.blocks)} blocks")
        self.feature_pairs = [(b, teacher_blocks[b]) for b in config.feature_blocks]
        self.boxes = self._mouth_boxes() if config.mouth_weight else None

    def _mouth_boxes(self) -> dict[str, tuple[float, float, float, float]]:
        if self.inputs.reference is None:
            raise UserInputError("lora mouth_weight: needs a reference (its input set's mouth boxes)")
        return mouth_boxes(self.inputs.reference)

    def parameters_to_train(self) -> list[nn.Parameter]:
        return lora_parameters(self.model)

    def batches(self, rank: int = 0, world_size: int = 1, seed: int = 0) -> Iterator[dict]:
        """Endless: {"sigmas": [batch_size], "inputs": [one DiT input per example]} (clips may differ in shape),
        with guidance "unconditional" (each input's unconditional twin), with a mouth weight "weights" (each
        input's [1, 1, h, w] weights of the velocity error). Example j of global batch i is drawn with index
        (i * world_size + rank) * batch_size + j, so ranks never overlap."""
        step = rank
        while True:
            first = step * self.batch_size
            examples = [self.inputs.draw(stream_seed(_TRAIN, seed, first + j)) for j in range(self.batch_size)]
            batch = {"sigmas": torch.tensor([e[0] for e in examples]), "inputs": [e[1] for e in examples]}
            if self.config.guidance_scale > 1 or self.config.unconditional_weight:
                batch["unconditional"] = [unconditional(x, row) for _, x, row in examples]
            if self.boxes is not None:
                batch["weights"] = [self._weights(x, row) for _, x, row in examples]
            yield batch
            step += world_size

    def _weights(self, inputs: dict, row: dict) -> torch.Tensor:
        box = torch.tensor([self.boxes[str(row["id"])]], device=inputs["hidden_states"].device)
        return region_weights(box, *inputs["hidden_states"].shape[-2:], self.config.mouth_weight)

    def loss(self, model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        """Mean over the batch of the (guided, mouth-weighted) velocity MSE against the teacher (+ unconditional_weight
        x the unconditional branch's, + feature_weight x relative feature MSE of the conditional forward)."""
        count = len(batch["inputs"])
        parts = [self._example_loss(model, x, u, w) for x, u, w in
                 zip(batch["inputs"], batch.get("unconditional", [None] * count), batch.get("weights", [None] * count))]
        logs = {k: sum(p[1][k] for p in parts) / len(parts) for k in parts[0][1]}
        return torch.stack([p[0] for p in parts]).mean(), logs

    def _example_loss(self, model: nn.Module, batch: dict, unconditional: dict | None, weights: torch.Tensor | None
                      ) -> tuple[torch.Tensor, dict[str, float]]:
        num_noisy = batch["hidden_states"][0, 0].numel() // 4  # 1 x 2 x 2 patches
        with torch.no_grad(), _block_outputs(self.teacher, [t for _, t in self.feature_pairs], num_noisy) as wanted:
            target = self.teacher(**batch).sample
        with _block_outputs(self.model, [s for s, _ in self.feature_pairs], num_noisy) as got:
            prediction = model(**batch).sample  # `model` may be the DDP wrapper of self.model
        if unconditional is not None:
            with torch.no_grad():
                target_unconditional = self.teacher(**unconditional).sample
            prediction_unconditional = model(**unconditional).sample
            if self.config.guidance_scale > 1:
                target = guided(target_unconditional, target, self.config.guidance_scale)
                prediction = guided(prediction_unconditional, prediction, self.config.guidance_scale)
        velocity = weighted_error(prediction, target, weights, "mse")
        logs = {"velocity_mse": velocity.item()}
        if self.config.unconditional_weight:
            branch = weighted_error(prediction_unconditional, target_unconditional, weights, "mse")
            logs["unconditional_mse"] = branch.item()
            velocity = velocity + self.config.unconditional_weight * branch
        if not self.feature_pairs:
            return velocity, logs
        feature = torch.stack([F.mse_loss(got[s].float(), wanted[t].float()) / wanted[t].float().square().mean()
                               for s, t in self.feature_pairs]).mean()
        logs["feature_rel_mse"] = feature.item()
        return velocity + self.config.feature_weight * feature, logs


@torch.no_grad()
def velocity_error(model: nn.Module, inputs: list[dict], targets: list[torch.Tensor]) -> float:
    """Mean relative error of `model`'s velocity against the teacher's (`targets`) on `inputs`."""
    was_training = model.training
    model.eval()
    errors = [relative_error(model(**x).sample, t) for x, t in zip(inputs, targets)]
    model.train(was_training)
    return sum(errors) / len(errors)


@contextlib.contextmanager
def _block_outputs(model: nn.Module, blocks: list[int], num_noisy: int):
    """{block: noisy-token output} of `model.blocks[block]`, filled during forwards inside the context."""
    outputs: dict[int, torch.Tensor] = {}

    def hook(index):  # a copy: without autograd the lean forward updates the residual stream in place
        return lambda module, args, output: outputs.__setitem__(index, output[:, :num_noisy].clone())

    handles = [model.blocks[b].register_forward_hook(hook(b)) for b in blocks]
    try:
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def teacher_block_map(artifact, teacher_layers: int) -> list[int]:
    """For each block of `artifact`'s model, the teacher block it came from: composes the depth prunes recorded
    (prune_plan.json) along its lineage, followed through each manifest's `input`."""
    from compress.artifacts import Artifact

    plans = []
    while artifact is not None:
        plan = artifact.path / "prune_plan.json"
        if plan.is_file():
            plans.append(json.loads(plan.read_text()))
        parent = artifact.manifest.get("input")
        artifact = Artifact.open(parent["path"]) if parent and Artifact.is_artifact(parent["path"]) else None
    kept = list(range(teacher_layers))
    for plan in reversed(plans):
        if plan["method"] == "depth":
            dropped = set(plan["dropped_blocks"])
            kept = [b for i, b in enumerate(kept) if i not in dropped]
    return kept


def source_quant_config(artifact):
    """The QuantConfig the source artifact was quantized with, or None for an unquantized one."""
    model_dir = artifact.model_dir
    if model_dir is None or not (Path(model_dir) / QUANT_CONFIG_NAME).is_file():
        return None
    return QuantizedStructure.load(model_dir).config


def run_lora_recovery(source_artifact, teacher_model: nn.Module, reference_artifact, config: LoraRecoveryConfig,
                      train_config, out, ctx, checkpoint_dir: Path | None = None) -> dict:
    """Attach adapters to the source artifact's model, train them against the teacher with the shared trainer
    (resuming from `checkpoint_dir`, default `<output>/.checkpoints/<artifact dir name>`), write the adapters
    and the merged model (rank 0); returns the velocity errors against the teacher on held-out inputs."""
    from compress.distill.trainer import train

    quant_config = source_quant_config(source_artifact)
    if config.merge:
        check_mergeable(quant_config, config.requantize)  # fail before training, not after
    model = source_artifact.load_model(device=ctx.device)
    task, validation, targets = _recovery_task(model, teacher_model.to(ctx.device), source_artifact,
                                               reference_artifact, config, train_config.batch_size, ctx)
    before = velocity_error(model, validation, targets)
    view = attach_adapters(model, config.targets, config.rank, config.alpha or config.rank, config.dropout,
                           quant_config, None if config.base_dtype == "auto" else _DTYPES[config.base_dtype])
    lora_params = sum(p.numel() for p in task.parameters_to_train())
    base = f"a dequantized {quant_config.scheme} base" if view.dequantized else "the base"
    ctx.log(f"  lora: {len(view.adapted)} modules adapted, {lora_params:,} trainable parameters over {base}")
    checkpoint_dir = checkpoint_dir or Path(ctx.output_dir) / ".checkpoints" / out.final_path.name
    result = train(task, train_config, checkpoint_dir, ctx=ctx, log_prefix="lora")
    after = velocity_error(model, validation, targets)
    metrics = {"heldout_error_space": "velocity_rel_error", "heldout_error_before": before, "heldout_error": after,
               "heldout_improvement": 1 - after / before if before else None, "adapted_modules": len(view.adapted),
               "lora_params": lora_params, "base_quantization": quant_config.scheme if quant_config else None,
               "final_loss": result["final_loss"], "train_steps": result["steps"], "train_wall_s": result["wall_s"],
               "train_samples_per_s": result["samples_per_s"], "resumed_from_step": result["resumed_from"],
               "world_size": result["world_size"]}
    if ctx.rank == 0:
        save_adapters(model, out.path / ADAPTERS_DIR, base=str(source_artifact.path))
        out.write_json("train_history.json", {"losses": result["losses"], "config": train_config.model_dump()})
    if config.merge:
        merge_adapters(model, view, config.requantize)
        metrics["heldout_error_merged"] = velocity_error(model, validation, targets)
        if ctx.rank == 0:
            save_merged(model, out.path, view.quant_config)
    out.extra["description"] = (f"rank-{config.rank} LoRA adapters on {len(view.adapted)} modules of "
                                f"'{source_artifact.name}', trained for {result['steps']} steps to match the teacher"
                                + (", merged" + (" and re-quantized" if view.dequantized else "") if config.merge
                                   else " (adapters only)"))
    return metrics


def _recovery_task(model, teacher, source_artifact, reference_artifact, config, batch_size, ctx):
    """The task, the held-out inputs and the teacher's velocities on them."""
    blocks = teacher_block_map(source_artifact, len(teacher.blocks)) if config.feature_blocks else None
    if blocks is not None and len(blocks) != len(model.blocks):
        raise UserInputError(f"lora feature_blocks: cannot tell which teacher block each of the {len(model.blocks)} "
                             f"blocks of {source_artifact.path} came from (its lineage records {len(blocks)})")
    inputs = DitInputs(teacher, reference_artifact, ctx.device, config.sigma_shift)
    task = LoraRecoveryTask(model, teacher, inputs, config, batch_size, blocks)
    validation = inputs.validation(config.validation_batches, ctx.seed)
    with torch.no_grad():
        targets = [task.teacher(**x).sample for x in validation]
    return task, validation, targets


def save_merged(model: nn.Module, directory: Path, quant_config) -> None:
    """The merged model as a loadable model directory (quantized layout when `quant_config` is given)."""
    if quant_config is None:
        model.save_pretrained(directory, safe_serialization=True)
        return
    model.save_config(directory)
    save_quantized(model, directory, quant_config)
