"""The analytic memory model against the fake-tensor simulation of the real model code.

Tolerance 2%: the analytic model follows our forward tensor by tensor and agrees to the byte today.
The slack lets harmless changes pass (a small temporary, a conditioning tensor resized), while a missed
full-sequence tensor cannot: the smallest one (a bf16 copy, 2 x L x D bytes) is ~6% of the ~32 x L x D
peak, the smallest FFN-sized one more.
"""

import pytest
import torch

from compress.memory.analytic import dit_activations, vae_decode_bytes
from compress.memory.simulate import simulate_dit, simulate_vae_decode

TOLERANCE = 0.02


def activations(items):
    return sum(item.bytes for item in items)


@pytest.mark.parametrize("spec_name, batch, frames, hw, motion", [
    ("tiny_spec", 1, 2, (8, 8), True),  # minimum size: the audio encoder's working set is the peak
    ("tiny_spec", 2, 4, (16, 16), True),
    ("mid_spec", 1, 12, (32, 56), True),
    ("mid_spec", 2, 3, (32, 56), False),  # CFG batched; no motion tokens (first clip, pipeline blocks)
])
def test_dit_activations_agree(request, spec_name, batch, frames, hw, motion):
    spec = request.getfixturevalue(spec_name)
    simulated = simulate_dit(spec, batch, frames, hw, motion)
    assert simulated.weights_by_dtype == spec.bytes_by_dtype()
    assert activations(dit_activations(spec, batch, frames, hw, motion)) == pytest.approx(
        simulated.activations, rel=TOLERANCE)


@pytest.mark.parametrize("scheme, hw", [("fp8_weight_only", (16, 16)), ("fp8_dynamic", (32, 56)),
                                        ("int8_dynamic", (32, 56))])
def test_quantized_dit_activations_agree(mid_spec, scheme, hw):
    """Dequantisation and activation-quantisation transients (at small sizes they set the peak)."""
    spec = mid_spec.quantized(scheme)
    simulated = simulate_dit(spec, 1, 3, hw, False)
    assert simulated.weights_by_dtype == spec.bytes_by_dtype()
    assert activations(dit_activations(spec, 1, 3, hw, False)) == pytest.approx(simulated.activations, rel=TOLERANCE)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_vae_decode_agrees(dtype):
    simulated = simulate_vae_decode(256, 192, 4, dtype)
    assert vae_decode_bytes(256, 192, 4, dtype) == pytest.approx(simulated.activations, rel=TOLERANCE)


@pytest.mark.slow
def test_teacher_simulation_matches_reference_sheet(teacher_spec):
    """The 14B on fake tensors: weights exactly the release's 16,295,755,609 bf16 parameters (32.59 GB), and
    activations at 480*832, 48 frames as the analytic model says. Runs in ~10 s."""
    simulated = simulate_dit(teacher_spec, 1, 12, (104, 60), True)
    assert simulated.weights_by_dtype == {"bfloat16": 16_295_755_609 * 2}
    assert simulated.seconds < 120
    analytic = activations(dit_activations(teacher_spec, 1, 12, (104, 60), True))
    assert analytic == pytest.approx(simulated.activations, rel=TOLERANCE)
    assert simulated.where.startswith("blocks.")
