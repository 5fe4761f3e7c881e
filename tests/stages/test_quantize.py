"""The quantize stage on the tiny S2V teacher: real FP8/INT8 storage, reload parity, errors, streaming."""

import json

import pytest
import torch

from compress import Recipe
from compress.errors import RecipeError
from compress.models import WanS2VTransformer3DModel
from compress.quant import Fp8KernelUnavailableError, relative_error
from compress.reference import ReferenceArtifact
from compress.stages.context import StageContext
from compress.stages.quantize import QuantizeStage
from compress.stages.reference import ReferenceStage
from compress.utils.console import Console
from compress.utils.weights import read_header
from tests.helpers import assert_reloads_identically

# measured on the tiny teacher (random init, seed 0), bounds with ~2x margin
ERROR_BOUNDS = {"int8_weight_only": 1e-2, "int8_dynamic": 2e-2, "fp8_weight_only": 6e-2, "fp8_dynamic": 6e-2}


def quantize(workdir, scheme, **fields):
    recipe = Recipe(model="tiny", output="runs/q", stages=[QuantizeStage(name=scheme, scheme=scheme, **fields)])
    return recipe.run(quiet=True)


def stored_dtypes(artifact) -> dict[str, str]:
    return {k: v["dtype"] for k, v in read_header(artifact.path / "model.safetensors").items()}


@pytest.mark.parametrize("scheme,dtype", [("int8_weight_only", "I8"), ("int8_dynamic", "I8"),
                                          ("fp8_weight_only", "F8_E4M3"), ("fp8_dynamic", "F8_E4M3")])
@pytest.mark.slow
def test_each_scheme_stores_real_low_precision_weights(workdir, scheme, dtype):
    result = quantize(workdir, scheme)
    artifact = result[scheme]
    dtypes = stored_dtypes(artifact)
    assert dtypes["blocks.1.attn1.to_q.weight"] == dtype
    assert dtypes["blocks.1.attn1.to_q.weight_scale"] == "F32"
    # defaults: embeddings, head, first and last block stay in high precision
    for kept in ("blocks.0.attn1.to_q.weight", "blocks.2.ffn.net.2.weight", "proj_out.weight",
                 "condition_embedder.text_embedder.linear_1.weight"):
        assert dtypes[kept] == "F32", kept
    metrics = artifact.metrics
    assert metrics["velocity_rel_error"] < ERROR_BOUNDS[scheme]
    assert metrics["weight_bytes_after"] < metrics["weight_bytes_before"]
    report = json.loads((artifact.path / "quant_report.json").read_text())
    reasons = {layer["name"]: layer["reason"] for layer in report["layers"]}
    assert "ignore" in reasons["blocks.0.attn1.to_q"] and reasons["blocks.1.attn1.to_q"] == "quantized"


@pytest.mark.slow
def test_quantized_artifact_reloads_in_a_fresh_process_with_identical_outputs(workdir):
    artifact = quantize(workdir, "int8_dynamic")["int8_dynamic"]
    assert_reloads_identically(artifact, workdir)


def test_fp8_dynamic_reloads_but_refuses_to_run_without_fp8_kernels(workdir):
    if torch.cuda.is_available() and torch.cuda.get_device_capability() >= (8, 9):
        pytest.skip("this machine has FP8 kernels")
    artifact = quantize(workdir, "fp8_dynamic")["fp8_dynamic"]
    assert "emulation" in artifact.metrics["evaluated_with"]
    model = artifact.load_model()
    with pytest.raises(Fp8KernelUnavailableError, match=r"8\.9.*fp8_weight_only"):
        with torch.no_grad():
            model(**model.example_inputs())


@pytest.mark.slow
def test_keep_most_sensitive_records_scores_and_keeps_layers(workdir):
    plain = quantize(workdir, "int8_weight_only")["int8_weight_only"].metrics
    mixed = quantize(workdir, "int8_weight_only", keep_most_sensitive=2)["int8_weight_only"]
    scores = json.loads((mixed.path / "sensitivity.json").read_text())
    assert len(scores) == plain["quantized_layers"]
    assert mixed.metrics["quantized_layers"] == plain["quantized_layers"] - 2
    assert mixed.metrics["velocity_rel_error"] <= plain["velocity_rel_error"]


def test_streaming_from_the_official_layout_matches_in_memory(workdir):
    torch.manual_seed(0)
    teacher = WanS2VTransformer3DModel.from_preset("tiny")
    teacher.save_official(workdir / "official")
    stream = Recipe(model="official", output="runs/s",
                    stages=[QuantizeStage(name="q", scheme="fp8_weight_only", streaming=True)]).run(quiet=True)["q"]
    memory = Recipe(model="official", output="runs/m",
                    stages=[QuantizeStage(name="q", scheme="fp8_weight_only")]).run(quiet=True)["q"]
    a, b = stream.load_model(), memory.load_model()
    assert stream.metrics["quantized_layers"] == memory.metrics["quantized_layers"]
    inputs = a.example_inputs(seed=3)
    with torch.no_grad():
        assert torch.equal(a(**inputs).sample, b(**inputs).sample)


@pytest.mark.slow
def test_calibration_from_a_reference_dataset(workdir):
    reference = ReferenceStage(name="ref", inputs="builtin:quickstart", max_clips=1, size="64*64", frames=16,
                               num_inference_steps=2)
    quantized = QuantizeStage(name="q", input="source", scheme="int8_weight_only", reference="ref",
                              calibration_batches=3)
    sensitive = QuantizeStage(name="kept", input="source", scheme="int8_weight_only", reference="ref",
                              calibration_batches=1, keep_most_sensitive=1)
    recipe = Recipe(model="tiny", output="runs/r", stages=[reference, quantized, sensitive])
    result = recipe.run(quiet=True)
    metrics = result["q"].metrics
    # the clips decided which layer stays float in `kept`; in `q` they only measured the error
    roles = {name: [(c["id"], c["role"]) for c in result[name].manifest["inputs_seen"]["clips"]]
             for name in ("q", "kept")}
    assert roles == {"q": [("train-000", "measured")], "kept": [("train-000", "calibration")]}
    assert 0 < metrics["velocity_rel_error"] < ERROR_BOUNDS["int8_weight_only"]
    assert 0 < metrics["final_latent_rel_error"] < 0.05
    # the same regeneration with the unquantized teacher reproduces the stored latents: the error is quantization's
    ctx = StageContext(recipe, workdir, workdir / "runs/r", {}, torch.device("cpu"), Console(quiet=True))
    stored = ReferenceArtifact(result["ref"], ctx)
    again = stored.regenerate(result["source"].load_model())(0).latents
    assert relative_error(again, stored.teacher(0)["latents"]) < 1e-5
    missing = QuantizeStage(name="q2", input="source", scheme="int8_weight_only", reference="nope")
    with pytest.raises(RecipeError, match=r"stages\[1\] \(q2\).reference: expected the name of an earlier "
                                          r"'reference' stage \(ref\); found 'nope'"):
        Recipe(model="tiny", output="runs/r", stages=[reference, missing])
