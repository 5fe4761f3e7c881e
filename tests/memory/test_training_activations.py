"""The analytic training activations against a fake-tensor DMD-like step of the real model code with LoRA.

The simulated step (compress.memory.training_simulate): a forward with grad through float32 adapters under
bf16 autocast, a no-grad forward with the adapters disabled while that graph is held, the backward.
Tolerances: 5% at a size where the tokens dominate (mid model, 6,496 tokens: saved and score-forward terms
agree to 0.5-1% today, the backward to 0.5% without and 3.6% with checkpointing, whose gradient buffers and
recomputed block are the coarsest terms); 8% at the tiny preset, where the fixed-size conditioning, a few
percent of the total, is counted more coarsely. At the 14B's 480*832 x 48 frames with checkpointing (one run
of 15 minutes, not a test): saved 39.87 GB analytic vs 39.92 simulated, backward peak 47.91 vs 46.22.
"""

import pytest

from compress.distill.config import DEFAULT_TARGETS
from compress.memory.analytic import dit_activations
from compress.memory.training_activations import (
    adapted_linears,
    lora_parameters,
    training_activations,
    without_inputs,
)
from compress.memory.training_simulate import simulate_training_step


def total(items):
    return sum(item.bytes for item in items)


def compare(spec, frames, hw, rank, checkpointing, tolerance):
    simulated = simulate_training_step(spec, DEFAULT_TARGETS, rank, 1, frames, hw, True, checkpointing)
    saved, backward = training_activations(spec, adapted_linears(spec, DEFAULT_TARGETS), rank, 1, frames, hw, True,
                                           checkpointing)
    score = total(without_inputs(dit_activations(spec, 1, frames, hw, True)))
    assert total(saved) == pytest.approx(simulated.saved, rel=tolerance)
    assert total(saved) + score == pytest.approx(simulated.score_forward, rel=tolerance)
    assert total(saved) + total(backward) == pytest.approx(simulated.backward, rel=tolerance)
    return simulated


@pytest.mark.parametrize("checkpointing", [False, True])
def test_tiny_training_step_agrees(tiny_spec, checkpointing):
    simulated = compare(tiny_spec, 4, (16, 16), 4, checkpointing, 0.08)
    assert simulated.backward > simulated.saved > 0


@pytest.mark.slow
@pytest.mark.parametrize("checkpointing", [False, True])
def test_mid_training_step_agrees(mid_spec, checkpointing):
    """~11 s each."""
    compare(mid_spec, 12, (32, 56), 8, checkpointing, 0.05)


def test_checkpointing_keeps_block_inputs_only(mid_spec):
    adapted = adapted_linears(mid_spec, DEFAULT_TARGETS)
    plain, _ = training_activations(mid_spec, adapted, 8, 1, 12, (32, 56), True, checkpointing=False)
    kept, backward = training_activations(mid_spec, adapted, 8, 1, 12, (32, 56), True, checkpointing=True)
    assert total(kept) < 0.25 * total(plain)
    assert any(item.name.startswith("one block recomputed") for item in backward)


def test_lora_targets_of_liveavatar(teacher_spec):
    """Rank 128 on q, k, v, o (self, text and audio cross-attention) and both FFN Linears: 676M parameters,
    of which the 40 blocks' 613M (teacher.md's ~0.61B) and the 12 audio injectors' 63M."""
    adapted = adapted_linears(teacher_spec, DEFAULT_TARGETS)
    blocks = {name: shape for name, shape in adapted.items() if name.startswith("blocks.")}
    assert len(adapted) == 40 * 10 + 12 * 4
    assert lora_parameters(blocks, 128) == 40 * 128 * (8 * 2 * 5120 + 2 * (5120 + 13824))
    assert lora_parameters(adapted, 128) == pytest.approx(676e6, rel=1e-3)
