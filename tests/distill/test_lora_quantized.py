"""LoRA recovery over a quantized base (int8_weight_only, depth-pruned first): adapters train over a dequantized
view, merging re-quantizes with the base's own QuantConfig, and merging without re-quantizing is refused."""

from types import SimpleNamespace

import pytest
import torch

from compress import Recipe
from compress.artifacts import ArtifactWriter
from compress.distill.lora import (
    ADAPTERS_DIR,
    DitInputs,
    LoraRecoveryConfig,
    run_lora_recovery,
    source_quant_config,
    velocity_error,
)
from compress.distill.lora_adapters import attach_adapters, load_adapters, merge_adapters
from compress.errors import UserInputError
from compress.models.auto import load_model
from compress.quant import QuantizedLinear, QuantizedStructure
from compress.reference import ReferenceArtifact
from compress.stages.distill import DistillStage
from compress.stages.prune import PruneStage
from compress.stages.quantize import QuantizeStage
from compress.stages.reference import ReferenceStage
from tests.distill.test_lora import TRAIN, make_ctx, one_thread, outputs  # noqa: F401  (one_thread: autouse)

SCHEME = "int8_weight_only"


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    """A recipe: reference -> depth prune (one block) -> int8 weight-only of every block -> distill (lora)."""
    root = tmp_path_factory.mktemp("lora-quant")
    stages = [ReferenceStage(name="reference", max_clips=1, size="64*64", frames=8, num_inference_steps=1),
              PruneStage(name="depth", input="source", method="depth", target={"drop_blocks": 1},
                         reference="reference", calibration_batches=2),
              QuantizeStage(name="int8", input="depth", scheme=SCHEME, keep_first_last_blocks=False,
                            calibration_batches=1),
              DistillStage(name="lora", method="lora", input="int8", reference="reference", lora={"rank": 8},
                           train=TRAIN)]
    result = Recipe(model="tiny", output="runs/q", stages=stages).run(root=root, quiet=True)
    teacher = result["source"].load_model().eval()
    return SimpleNamespace(result=result, teacher=teacher, out=result["lora"].path, metrics=result["lora"].metrics,
                           root=root)


def validation(quantized):
    """The held-out inputs of the run (seed 0) and the teacher's velocities on them."""
    inputs = DitInputs(quantized.teacher, ReferenceArtifact(quantized.result["reference"])).validation(4, seed=0)
    return inputs, [outputs(quantized.teacher, [x]) for x in inputs]


def heldout_error(quantized, model):
    return velocity_error(model, *validation(quantized))


def test_trains_over_the_dequantized_view_and_merges_requantized(quantized):
    m = quantized.metrics
    # measured: 0.108 -> 0.062 with the adapters, 0.062 merged and re-quantized
    assert m["heldout_error"] < 0.8 * m["heldout_error_before"]
    assert m["heldout_error_merged"] < 0.8 * m["heldout_error_before"]
    source = QuantizedStructure.load(quantized.result["int8"].path)
    merged = QuantizedStructure.load(quantized.out)
    assert merged == source and merged.config.scheme == SCHEME and merged.quantized_modules
    model = load_model(quantized.out)
    names = [name for name, module in model.named_modules() if isinstance(module, QuantizedLinear)]
    assert names == list(source.quantized_modules)
    assert model.blocks[0].attn1.to_q.weight.dtype == torch.int8
    # the reloaded artifact computes exactly what was measured before saving
    assert heldout_error(quantized, model) == pytest.approx(m["heldout_error_merged"], rel=1e-6)
    assert m["base_quantization"] == SCHEME and "re-quantized" in quantized.result["lora"].manifest["description"]


def test_adapters_reload_onto_the_quantized_base(quantized):
    model = quantized.result["int8"].load_model()
    view = load_adapters(model, quantized.out / ADAPTERS_DIR, source_quant_config(quantized.result["int8"]))
    assert view.dequantized and view.quant_config.scheme == SCHEME
    assert heldout_error(quantized, model) == pytest.approx(quantized.metrics["heldout_error"], rel=1e-5)


def test_dequantized_view_computes_what_the_quantized_model_computes(quantized):
    artifact = quantized.result["int8"]
    model = artifact.load_model()
    inputs, _ = validation(quantized)
    before = outputs(model, inputs)
    view = attach_adapters(model, ["*.to_q"], rank=2, alpha=2, quant_config=source_quant_config(artifact))
    assert not any(isinstance(m, QuantizedLinear) for m in model.modules())
    assert sorted(view.dequantized) == sorted(QuantizedStructure.load(artifact.path).quantized_modules)
    torch.testing.assert_close(outputs(model, inputs), before, rtol=0, atol=0)


def test_merging_into_a_quantized_base_without_requantizing_is_refused(quantized):
    artifact = quantized.result["int8"]
    config = LoraRecoveryConfig(merge=True, requantize=False)
    out = ArtifactWriter(quantized.root / "runs/q/05-refused")
    with pytest.raises(UserInputError, match=r"base is quantized \(int8_weight_only\).*needs requantize: true"):
        run_lora_recovery(artifact, quantized.teacher, None, config, TRAIN, out, make_ctx(quantized.root / "runs/q"))
    assert not (quantized.root / "runs/q/.checkpoints/05-refused").exists()  # refused before training

    model = artifact.load_model()
    view = attach_adapters(model, ["*.to_v"], rank=2, alpha=2, quant_config=source_quant_config(artifact))
    with pytest.raises(UserInputError, match="merge: false to keep only the adapters"):
        merge_adapters(model, view, requantize=False)
    with pytest.raises(UserInputError, match="the model is quantized; pass the QuantConfig"):
        attach_adapters(artifact.load_model(), ["*.to_v"], rank=2, alpha=2)
