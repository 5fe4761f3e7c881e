"""Simulated memory of one DMD-like training step: the real model code with LoRA adapters on fake tensors.

The step, as a distribution-matching generator update runs it on one base: a forward with grad through the
adapters (the generator's last rollout step), a no-grad forward with the adapters disabled (a score
evaluation) while that graph is held, then the backward of a loss on the generator's output. Under bf16
autocast with float32 adapters, as the trainer runs on a GPU. Bytes are above the weights (adapters
included), inputs included, as simulate.py counts a forward.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from compress.models.s2v.motion import MOTION_FRAMES

from .simulate import MemoryTracker, _cuda_kernel_paths, materialize


@dataclass
class TrainingStepMemory:
    no_grad_forward: int  # peak of a forward without grad
    saved: int  # live after the forward with grad: what it keeps for the backward
    score_forward: int  # peak of the no-grad forward while the graph is held
    backward: int  # peak during the backward


def _lora_model(spec, targets, rank: int):
    """The meta-device model of `spec` with LoRA adapters (peft cannot move fake tensors: attach first)."""
    from compress.distill.lora_adapters import attach_adapters  # peft

    model = spec.meta_model(fresh=True)
    attach_adapters(model, list(targets), rank=rank, alpha=rank)
    return model


def _materialize(model, spec, checkpointing: bool):
    """Fake tensors in the stored dtypes, adapters float32 and trainable; call under FakeTensorMode."""
    stored = {k: dtype for k, (_, dtype) in spec.tensors.items()}
    dtypes = {k: torch.float32 if "lora_" in k else stored[k.replace(".base_layer", "")]
              for k, _ in model.named_parameters()}
    materialize(model, dtypes)
    for name, param in model.named_parameters():
        param.requires_grad_("lora_" in name)
    if checkpointing:
        model.enable_gradient_checkpointing()
    return model


def simulate_training_step(spec, targets, rank: int, batch: int, latent_frames: int, latent_hw: tuple[int, int],
                           motion: bool, checkpointing: bool) -> TrainingStepMemory:
    from compress.distill.lora_adapters import adapters_disabled  # peft

    model = _lora_model(spec, targets, rank)
    with _cuda_kernel_paths(), FakeTensorMode():
        _materialize(model, spec, checkpointing)
        inputs = model.example_inputs(batch=batch, frames=latent_frames, height=latent_hw[0], width=latent_hw[1],
                                      text_tokens=spec.config["text_len"], motion_frames=MOTION_FRAMES,
                                      dtype=spec.compute_dtype)
        if not motion:
            del inputs["motion_latents"]
        tracker = MemoryTracker()
        weights = sum(tracker.track(t) for t in [*model.parameters(), *model.buffers()])
        for tensor in inputs.values():
            tracker.track(tensor)

        def forward():
            return model(**inputs, drop_motion_frames=not motion).sample

        def peak_of(run):
            tracker.peak = tracker.live
            result = run()
            return tracker.peak - weights, result

        with tracker, torch.autocast("cpu", dtype=torch.bfloat16):
            with torch.no_grad():
                no_grad, _ = peak_of(forward)
            prediction = forward()
            saved = tracker.live - weights
            with torch.no_grad(), adapters_disabled(model):
                score, target = peak_of(forward)
            loss = (prediction.float() * target.float()).mean()
            backward, _ = peak_of(loss.backward)
    return TrainingStepMemory(no_grad, saved, score, backward)
