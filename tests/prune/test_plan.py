"""Planning on the meta device (the 14B release), targets and their errors, the `compress prune plan` CLI."""

import json
import math
import re
import sys
from collections import Counter

import pytest
import torch

from compress import Recipe
from compress.cli import main
from compress.errors import RecipeError
from compress.models import WanS2VTransformer3DModel
from compress.prune import PruneConfig, PruneTargetError, count_parameters, plan_prune
from tests.helpers import release_keys

RELEASE_PARAMS = 16_295_755_609


@pytest.fixture(scope="module")
def release():
    return WanS2VTransformer3DModel.from_preset("wan2.2-s2v-14b", device="meta")


@pytest.fixture(scope="module")
def release_unit_params():
    """Parameters per block and per audio injector, from the release's key list."""
    blocks, injectors = Counter(), Counter()
    for key, shape in release_keys().items():
        count = math.prod(shape)
        if match := re.match(r"blocks\.(\d+)\.", key):
            blocks[int(match[1])] += count
        elif match := re.match(r"audio_injector\.(injector|injector_adain_layers)\.(\d+)\.", key):
            injectors[int(match[2])] += count
    return blocks, injectors


@pytest.mark.parametrize("mode", ["drop", "nearest"])
def test_release_depth_plan_on_meta_removes_eight_blocks_and_their_injectors(release, release_unit_params, mode):
    blocks, injectors = release_unit_params
    plan = plan_prune(release, PruneConfig(method="depth", target={"blocks": 32}, injectors_on_dropped_blocks=mode))
    assert len(plan.dropped_blocks) == 8 and plan.config_after["num_layers"] == 32
    assert "placeholder" in plan.scores_source
    inject = plan.config_before["audio_inject_layers"]
    gone = [k for k, i in enumerate(plan.injectors) if i["after_block"] is None]
    expected = RELEASE_PARAMS - sum(blocks[b] for b in plan.dropped_blocks) - sum(injectors[k] for k in gone)
    assert plan.params_after == expected
    # placeholder order: blocks 23-30 go; injectors after 24, 27, 30 go with them, or 24 -> 22 and 30 -> 31
    assert plan.dropped_blocks == list(range(23, 31))
    if mode == "drop":
        assert [inject[k] for k in gone] == [24, 27, 30]
        assert expected == RELEASE_PARAMS - 8 * 351_394_304 - 3 * 157_327_360 == 13_012_619_097
    else:
        assert [inject[k] for k in gone] == [27] and plan.summary()["moved_injectors"] == [[24, 22], [30, 31]]
        assert plan.config_after["audio_inject_layers"] == [0, 4, 8, 12, 16, 20, 22, 23, 25, 28, 31]


def test_release_width_and_budget_plans_on_meta(release):
    plan = plan_prune(release, PruneConfig(method="width", target={"ratio": 0.25}))
    assert plan.config_after["ffn_dim"] == 10368 and plan.config_after["attention_heads"] == 30
    with torch.device("meta"):
        pruned = WanS2VTransformer3DModel(**plan.config_after)
    assert plan.params_after == sum(p.numel() for p in pruned.parameters())
    assert [len(plan.keep["blocks.0.ffn"]), len(plan.keep["blocks.39.attn2"])] == [10368, 30]
    for method in ("depth", "width"):  # the largest structure within the budget
        plan = plan_prune(release, PruneConfig(method=method, target={"params": 8e9}))
        assert plan.params_after <= 8e9
        if method == "depth":
            assert plan.config_after["num_layers"] == 19
            bigger = count_parameters(WanS2VTransformer3DModel, {**plan.config_after, "num_layers": 20})
            assert bigger > 8e9


@pytest.mark.parametrize("target,field", [({"blocks": 41}, "target.blocks"), ({"drop_blocks": 40}, "target.drop_blocks"),
                                          ({"ratio": 0.01}, "target.ratio"), ({"params": 1e6}, "target.params"),
                                          ({"params": 2e10}, "target.params")])
def test_targets_the_model_cannot_meet_name_the_field(release, target, field):
    with pytest.raises(PruneTargetError, match=re.escape(field)):
        plan_prune(release, PruneConfig(method="depth", target=target))


def test_width_counts_above_the_model_name_the_field(release):
    with pytest.raises(PruneTargetError, match=r"target\.heads: 40 must be below the model's current 40"):
        plan_prune(release, PruneConfig(method="width", target={"heads": 40}))


@pytest.mark.parametrize("stage,where", [
    ({"method": "depth"}, "target: expected a target for method depth"),
    ({"method": "depth", "target": {"ffn_dim": 64}}, "ffn_dim belongs to the other method"),
    ({"method": "width", "target": {"ratio": 0.2, "heads": 2}}, "exactly one of"),
    ({"method": "sparse_2_4", "target": {"ratio": 0.5}}, "no target for sparse_2_4"),
    ({"method": "depth", "target": {"blocks": 0}}, "target.blocks"),
])
def test_bad_stage_configs_are_recipe_errors_naming_the_field(stage, where):
    with pytest.raises(RecipeError, match=re.escape(where)):
        Recipe(model="tiny", output="runs/x", stages=[{"kind": "prune", **stage}])


def test_plan_cli(monkeypatch, capsys):
    def cli(*args):
        monkeypatch.setattr(sys, "argv", ["compress", "prune", "plan", *args])
        try:
            main()
        except SystemExit as exit_:
            return exit_.code or 0, capsys.readouterr()
        return 0, capsys.readouterr()

    code, out = cli("wan2.2-s2v-14b", "--method", "depth", "--blocks", "32", "--json")
    assert code == 0 and json.loads(out.out)["params_after"] == 13_012_619_097
    code, out = cli("tiny", "--method", "width", "--ratio", "0.5", "--calibrate", "1")
    assert code == 0 and "ffn_dim" in out.out and "calibration" in out.out
    code, out = cli("tiny", "--method", "depth", "--blocks", "3")
    assert code == 2 and "target.blocks" in out.err
