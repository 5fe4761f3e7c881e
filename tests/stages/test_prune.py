"""The prune stage on the tiny S2V teacher: depth, width and 2:4 from a recipe; sizes, reload, errors."""

import json

import pytest
import torch

from compress import Recipe
from compress.models import WanS2VTransformer3DModel
from compress.prune import MASKS_FILE, PruneTargetError, load_masks
from compress.stages.prune import PruneStage
from tests.helpers import assert_reloads_identically



def prune(name="p", **fields):
    recipe = Recipe(model="tiny", output="runs/p", stages=[PruneStage(name=name, calibration_batches=2, **fields)])
    result = recipe.run(quiet=True)
    return result["source"].load_model(), result[name]


def numel(module):
    return sum(p.numel() for p in module.parameters())


def check_artifact(artifact, method):
    metrics = artifact.metrics
    assert 0 < metrics["velocity_rel_error"] <= metrics["velocity_rel_error_max"] < 1
    assert metrics["params_after"] == artifact.manifest["model"]["parameters"] == numel(artifact.load_model())
    assert artifact.manifest["figures"] == ["importance.png"] and (artifact.path / "importance.png").stat().st_size
    importance = json.loads((artifact.path / "importance.json").read_text())
    assert importance["method"] == method
    assert importance["source"].startswith("weight magnitude" if method == "sparse_2_4" else "calibration")
    return metrics, importance["scores"]


@pytest.mark.slow
def test_depth_removes_exactly_the_dropped_blocks_and_reloads_in_a_fresh_process(workdir):
    source, artifact = prune(method="depth", target={"blocks": 2}, injectors_on_dropped_blocks="drop")
    metrics, scores = check_artifact(artifact, "depth")
    (dropped,) = metrics["dropped_blocks"]
    assert scores["blocks"][dropped] == min(scores["blocks"]) and len(scores["blocks"]) == 3
    gone = [k for k, b in enumerate(source.config.audio_inject_layers) if b == dropped]
    removed = numel(source.blocks[dropped]) + sum(numel(source.audio_injectors[k]) for k in gone)
    assert metrics["params_before"] - metrics["params_after"] == removed
    assert metrics["bytes_before"] - metrics["bytes_after"] == 4 * removed

    model = artifact.load_model()
    survivors = [b for b in source.config.audio_inject_layers if b != dropped]
    assert model.config.num_layers == 2 and model.config.audio_inject_layers == [b - (b > dropped) for b in survivors]
    assert_reloads_identically(artifact, workdir)


def test_width_shrinks_to_the_new_config(workdir):
    source, artifact = prune(method="width", target={"ratio": 0.5}, parts=["ffn", "heads", "audio_heads"])
    metrics, scores = check_artifact(artifact, "width")
    model = artifact.load_model()
    assert (model.config.ffn_dim, model.config.attention_heads, model.config.audio_attention_heads) == (64, 2, 2)
    assert metrics["ffn_dim"] == {"before": 128, "after": 64}
    with torch.device("meta"):
        assert numel(WanS2VTransformer3DModel(**model.config)) == metrics["params_after"] < numel(source)
    assert len(scores["blocks.0.ffn"]) == 128 and len(scores["audio_injectors.1.attn"]) == 4
    assert model.blocks[0].attn1.to_q.weight.shape == (32, 64) and model.blocks[0].ffn.net[2].weight.shape == (64, 64)


def test_sparse_2_4_zeroes_half_of_the_targeted_weights_and_keeps_the_size(workdir):
    source, artifact = prune(method="sparse_2_4", ignore=["*.ffn.*"])
    metrics, scores = check_artifact(artifact, "sparse_2_4")
    assert metrics["params_after"] == metrics["params_before"] == numel(source)
    assert "sparse, not smaller" in metrics["note"] and metrics["sparse_layers"] == 3 * 8
    model, masks = artifact.load_model(), load_masks(artifact.path / MASKS_FILE)
    assert set(masks) == {f"{name}.weight" for name in scores}
    for name, weight in model.named_parameters():
        if name in masks:
            assert (weight == 0).sum() * 2 == weight.numel()
            assert torch.equal(masks[name], weight != 0)
            assert ((weight != 0).reshape(weight.shape[0], -1, 4).sum(-1) == 2).all()
        elif name.endswith("ffn.net.2.weight"):  # ignored: dense
            assert (weight != 0).all()


def test_a_target_beyond_the_model_fails_naming_the_field(workdir):
    with pytest.raises(PruneTargetError, match=r"target\.blocks: 3 blocks to keep, but the model has 3"):
        prune(method="depth", target={"blocks": 3})
