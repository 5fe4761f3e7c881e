"""LoRA recovery of a depth-pruned tiny teacher: the error against the full teacher drops; merged and adapter-only
reloads compute what the trained adapter model computes; targets, feature matching, batches and bad input."""

import copy
import json
from types import SimpleNamespace

import pytest
import torch

from compress.artifacts import ArtifactWriter
from compress.distill.lora import (
    ADAPTERS_DIR,
    DitInputs,
    LoraRecoveryConfig,
    LoraRecoveryTask,
    run_lora_recovery,
    teacher_block_map,
)
from compress.distill.lora_adapters import attach_adapters, load_adapters, resolve_targets
from compress.distill.trainer import TrainConfig
from compress.errors import UserInputError
from compress.models import WanS2VTransformer3DModel
from compress.models.auto import load_model
from compress.prune import PruneConfig, apply_plan, plan_prune
from compress.reference.calibration import random_dit_inputs
from tests.helpers import torch_threads

TRAIN = TrainConfig(steps=30, batch_size=1, lr=1e-2, checkpoint_every=30, log_every=30)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The tiny model's ops are too small for threads to pay off (and the test machine is shared)."""
    with torch_threads(1):
        yield


def make_ctx(output_dir, seed=0):
    return SimpleNamespace(device=torch.device("cpu"), seed=seed, rank=0, output_dir=output_dir,
                           log=lambda message: None)


def pruned_artifact(teacher, directory):
    """A depth-pruned copy of `teacher` (one block dropped) as a finished prune artifact."""
    plan = plan_prune(teacher, PruneConfig(method="depth", target={"drop_blocks": 1}),
                      random_dit_inputs(teacher, 2))
    student = copy.deepcopy(apply_plan(teacher, plan)[0])  # apply_plan shares tensors with the teacher
    out = ArtifactWriter(directory)
    out.save_model(student)
    out.write_json("prune_plan.json", plan.to_dict())
    return out.commit({"name": "depth", "kind": "prune", "lineage": [], "input": None}), plan


@pytest.fixture(scope="module")
def recovered(tmp_path_factory):
    root = tmp_path_factory.mktemp("lora")
    torch.manual_seed(0)
    teacher = WanS2VTransformer3DModel.from_preset("tiny").eval()
    source, plan = pruned_artifact(teacher, root / "01-depth")
    out = ArtifactWriter(root / "02-lora")
    config = LoraRecoveryConfig(rank=8, feature_blocks=[0, 1], feature_weight=0.1)
    metrics = run_lora_recovery(source, teacher, None, config, TRAIN, out, make_ctx(root))
    return SimpleNamespace(teacher=teacher, source=source, plan=plan, out=out.path, metrics=metrics, root=root)


def outputs(model, inputs):
    with torch.no_grad():
        return torch.cat([model(**x).sample for x in inputs])


def test_recovery_lowers_the_error_against_the_full_teacher(recovered):
    m = recovered.metrics
    # measured: 0.086 -> 0.060 and 0.097 -> 0.065 after 30 steps (which block goes depends on float rounding)
    assert 0.05 < m["heldout_error_before"] < 0.2
    assert m["heldout_error"] < 0.8 * m["heldout_error_before"]
    assert m["heldout_error_merged"] == pytest.approx(m["heldout_error"], rel=1e-4)
    assert m["heldout_improvement"] == pytest.approx(1 - m["heldout_error"] / m["heldout_error_before"])
    assert m["train_steps"] == 30 and m["lora_params"] > 0 and m["base_quantization"] is None
    losses = json.loads((recovered.out / "train_history.json").read_text())["losses"]
    assert len(losses) == 30 and sum(losses[-5:]) < sum(losses[:5])
    # 2 blocks x (2 attentions x 4 + 2 ffn) + the injectors that survived, 4 each
    injectors = len(recovered.plan.config_after["audio_inject_layers"])
    assert m["adapted_modules"] == 2 * 10 + 4 * injectors
    assert (recovered.root / ".checkpoints" / "02-lora" / "step-00000030.pt").is_file()


def test_merged_reload_and_adapter_reload_match_the_trained_adapters(recovered):
    inputs = random_dit_inputs(recovered.teacher, 2, seed=123)
    with_adapters = recovered.source.load_model()
    load_adapters(with_adapters, recovered.out / ADAPTERS_DIR)  # peft format, onto a fresh base
    expected = outputs(with_adapters, inputs)
    merged = load_model(recovered.out)
    assert not any("lora" in name for name, _ in merged.named_parameters())
    assert type(merged) is WanS2VTransformer3DModel and merged.config.num_layers == 2
    # measured: max difference 8e-7, 3e-7 of the largest output (fp32 rounding of (W + BA)x vs Wx + B(Ax))
    torch.testing.assert_close(outputs(merged, inputs), expected, rtol=1e-5, atol=1e-5)
    config = (recovered.out / ADAPTERS_DIR / "adapter_config.json").read_text()
    assert '"r": 8' in config and str(recovered.source.path) in config


def test_adapters_are_zero_at_start_and_train_only_lora(recovered):
    model = recovered.source.load_model()
    inputs = random_dit_inputs(model, 1)
    before = outputs(model, inputs)
    view = attach_adapters(model, ["*.attn1.to_q", "blocks.1.ffn.*"], rank=2, alpha=4)
    assert view.adapted == ["blocks.0.attn1.to_q", "blocks.1.attn1.to_q", "blocks.1.ffn.net.0.proj",
                            "blocks.1.ffn.net.2"]
    assert view.dequantized == [] and view.quant_config is None
    torch.testing.assert_close(outputs(model, inputs), before, rtol=0, atol=0)
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert len(trainable) == 8 and all("lora_" in name for name in trainable)


def test_teacher_block_map_follows_the_prune_plan(recovered):
    (dropped,) = recovered.plan.dropped_blocks
    assert teacher_block_map(recovered.source, 3) == [b for b in range(3) if b != dropped]


def test_loss_is_zero_for_the_teacher_itself_and_features_count(recovered):
    teacher = recovered.teacher
    config = LoraRecoveryConfig(feature_blocks=[0, 2], feature_weight=1.0)
    batch = next(LoraRecoveryTask(teacher, teacher, DitInputs(teacher), config).batches())
    task = LoraRecoveryTask(copy.deepcopy(teacher), teacher, DitInputs(teacher), config)
    loss, logs = task.loss(task.model, batch)
    assert loss.item() == 0 and logs == {"velocity_mse": 0.0, "feature_rel_mse": 0.0}

    student = recovered.source.load_model()
    blocks = teacher_block_map(recovered.source, 3)
    task = LoraRecoveryTask(student, teacher, DitInputs(teacher), LoraRecoveryConfig(feature_blocks=[1],
                                                                                     feature_weight=2.0),
                            teacher_blocks=blocks)
    loss, logs = task.loss(student, batch)
    assert logs["feature_rel_mse"] > 0
    assert loss.item() == pytest.approx(logs["velocity_mse"] + 2.0 * logs["feature_rel_mse"], rel=1e-5)


def test_batches_are_deterministic_and_disjoint_across_ranks(recovered):
    task = LoraRecoveryTask(recovered.teacher, recovered.teacher, DitInputs(recovered.teacher),
                            LoraRecoveryConfig(), batch_size=2)

    def first(rank, world, seed=0):
        batch = next(task.batches(rank, world, seed))
        return batch["sigmas"], torch.cat([x["hidden_states"] for x in batch["inputs"]])

    sigmas, latents = first(0, 2)
    assert sigmas.shape == (2,) and latents.shape[0] == 2
    torch.testing.assert_close(first(0, 2), (sigmas, latents), rtol=0, atol=0)
    for other in (first(1, 2), first(0, 2, seed=1)):
        assert not torch.equal(other[1], latents)


def test_guided_loss_matches_the_guided_velocities_of_both_models(recovered):
    teacher, student = recovered.teacher, recovered.source.load_model()
    config = LoraRecoveryConfig(guidance_scale=3.0)
    batch = next(LoraRecoveryTask(student, teacher, DitInputs(teacher), config, batch_size=2).batches())
    (x, _), (u, _) = batch["inputs"], batch["unconditional"]
    assert not u["audio_features"].any() and not u["encoder_hidden_states"].any()  # no reference: zero text
    torch.testing.assert_close(u["hidden_states"], x["hidden_states"], rtol=0, atol=0)

    def guided(model, cond, uncond):
        with torch.no_grad():
            return model(**uncond).sample + 3.0 * (model(**cond).sample - model(**uncond).sample)

    expected = sum(torch.nn.functional.mse_loss(guided(student, c, n), guided(teacher, c, n))
                   for c, n in zip(batch["inputs"], batch["unconditional"])) / 2
    loss, logs = LoraRecoveryTask(student, teacher, DitInputs(teacher), config, batch_size=2).loss(student, batch)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5) and logs["velocity_mse"] > 0
    same = LoraRecoveryTask(copy.deepcopy(teacher), teacher, DitInputs(teacher), config)
    assert same.loss(same.model, batch)[0].item() == 0


def test_sigma_shift_moves_the_same_draws_to_higher_noise(recovered):
    def sigmas(shift):
        inputs = DitInputs(recovered.teacher, sigma_shift=shift)
        return torch.tensor([inputs.draw(seed)[0] for seed in range(16)])

    uniform, shifted = sigmas(1.0), sigmas(3.0)
    torch.testing.assert_close(shifted, (3 * uniform / (1 + 2 * uniform)).clamp(1e-3, 1 - 1e-3))
    assert shifted.mean() > uniform.mean() + 0.1


def test_bad_input_is_named(recovered):
    model = recovered.source.load_model()
    with pytest.raises(UserInputError, match=r"lora targets: \['\*.to_qq'\] match no Linear module"):
        resolve_targets(model, ["*.to_q", "*.to_qq"])
    with pytest.raises(UserInputError, match=r"feature_blocks: \[5\] out of range; the model has 2 blocks"):
        LoraRecoveryTask(model, recovered.teacher, DitInputs(model),
                         LoraRecoveryConfig(feature_blocks=[5], feature_weight=1.0))
    with pytest.raises(UserInputError, match="no adapter_config.json; not a LoRA adapter directory"):
        load_adapters(model, recovered.root)
    with pytest.raises(ValueError, match="rank"):
        LoraRecoveryConfig(rank=0)
    with pytest.raises(UserInputError, match="lora mouth_weight: needs a reference"):
        LoraRecoveryTask(model, recovered.teacher, DitInputs(model), LoraRecoveryConfig(mouth_weight=2.0))
    with pytest.raises(ValueError, match="guidance_scale"):
        LoraRecoveryConfig(guidance_scale=0.5)
    with pytest.raises(ValueError, match="needs both feature_blocks and a feature_weight > 0"):
        LoraRecoveryConfig(feature_blocks=[1])
