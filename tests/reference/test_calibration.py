"""The calibration sampler: an even spread over the reference's clips (DiT inputs at spread noise levels) or over
derived pools (static-shape exports), random values with the example's statistics where nothing is derived."""

import pytest
import torch

from compress.reference import ReferenceArtifact
from compress.reference.calibration import dit_calibration_inputs, shaped_calibration, spread
from compress.reference.samples import noised_dit_inputs
from compress.utils.arrays import decode_tensor


def test_spread_strides_over_many_items_and_cycles_over_few():
    assert spread(list(range(10)), 3) == [0, 3, 6]
    assert spread(list(range(3)), 5) == [0, 1, 2, 0, 1]
    assert spread(list(range(5)), 3) == [0, 1, 2]


def test_dit_inputs_are_noised_reference_clips_at_spread_levels(run):
    _, result = run
    reference = ReferenceArtifact(result["ref"])
    batches = dit_calibration_inputs(reference, 4, seed=3)
    assert [float(b["timestep"]) for b in batches] == pytest.approx([125, 375, 625, 875])
    assert [b["drop_motion_frames"] for b in batches] == [True] * 4  # every input is one clip: clip 0
    row = reference.rows[1]
    assert torch.equal(batches[1]["ref_latents"], decode_tensor(row, "ref_latents")[None].float())
    generator = torch.Generator().manual_seed(3)
    noised_dit_inputs(reference.rows[0], 0, 0.125, generator)  # the first batch's draw
    again, _ = noised_dit_inputs(row, 0, 0.375, generator)
    assert torch.equal(batches[1]["hidden_states"], again["hidden_states"])


def test_shaped_batches_take_pools_where_given_and_example_statistics_elsewhere():
    example = {"a": torch.zeros(1, 2), "b": torch.tensor([[1.0, 2.0, 6.0]]), "flag": True}
    pool = torch.arange(8.0).reshape(4, 2)
    batches = shaped_calibration(example, {"a": pool}, count=2, seed=0)
    assert [b["a"].tolist() for b in batches] == [[[0.0, 1.0]], [[4.0, 5.0]]]
    assert all(b["b"].shape == (1, 3) and b["flag"] is True for b in batches)
    random = shaped_calibration(example, {}, 2, seed=1)
    assert torch.equal(random[1]["b"], shaped_calibration(example, {}, 2, seed=1)[1]["b"])
    assert not torch.equal(random[0]["b"], random[1]["b"]) and random[0]["a"].shape == (1, 2)
