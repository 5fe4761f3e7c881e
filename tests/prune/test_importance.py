"""Depth importance on calibration inputs: both measures see what a block adds, and ablation picks the block whose
loss costs least (tiny models)."""

import pytest
import torch

from compress.prune import PruneConfig, plan_prune
from compress.prune.importance import block_ablation, block_importance
from tests.prune.test_surgery import five_blocks, make_identity, output


@pytest.fixture
def model_with_identity_block():
    model = five_blocks([0, 2, 4])
    make_identity(model.blocks[2])
    return model


def calibration(model, count=2):
    return [model.example_inputs(seed=seed) for seed in range(count)]


def test_cosine_scores_see_each_blocks_residual_although_blocks_add_in_place(model_with_identity_block):
    scores = block_importance(model_with_identity_block, calibration(model_with_identity_block))
    assert scores[2] < 1e-6
    assert min(s for i, s in enumerate(scores) if i != 2) > 1e-3


@pytest.mark.parametrize("mode", ["drop", "nearest"])
def test_ablation_scores_the_output_error_without_each_block(model_with_identity_block, mode):
    model = model_with_identity_block
    before = output(model)
    scores = block_ablation(model, calibration(model), mode)
    torch.testing.assert_close(output(model), before, rtol=0, atol=0)  # the model is left as it was
    assert min(scores) > 0 if mode == "drop" else scores[2] < 1e-5  # "drop" loses the injector after block 2
    assert min(s for i, s in enumerate(scores) if i != 2) > 1e-3


def test_depth_plan_by_ablation_drops_the_block_that_costs_least(model_with_identity_block):
    model = model_with_identity_block
    config = PruneConfig(method="depth", target={"drop_blocks": 1}, injectors_on_dropped_blocks="nearest")
    plan = plan_prune(model, config, calibration(model))
    assert plan.dropped_blocks == [2] and "without the block" in plan.scores_source
    cosine = plan_prune(model, config.model_copy(update={"depth_importance": "cosine"}), calibration(model))
    assert cosine.dropped_blocks == [2] and "cos" in cosine.scores_source
