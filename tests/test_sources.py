"""`compress.sources.resolve`: a preset, a model directory or an artifact, with one error text naming all three."""

import pytest

from compress import Recipe
from compress.errors import RecipeError, UserInputError
from compress.sources import resolve


def test_presets_directories_and_artifacts(workdir):
    result = Recipe(model="test-mlp", output="runs/r", stages=[{"kind": "test-scale", "name": "a"}]).run(quiet=True)
    preset = resolve("test-mlp")
    assert (preset.kind, preset.path, preset.model_dir()) == ("preset", None, None)
    artifact = resolve("runs/r/01-a")
    assert artifact.kind == "artifact" and artifact.artifact().hash == result["a"].hash
    assert artifact.model_dir().resolve() == result["a"].path and artifact.layout()[0].__name__ == "TinyMLP"
    directory = resolve(result["a"].path)
    assert directory.kind == "artifact"
    (workdir / "test-mlp").mkdir()  # an existing path wins over a preset of the same name
    with pytest.raises(UserInputError, match="holds neither manifest.json .* nor config.json"):
        resolve("test-mlp")
    (workdir / "test-mlp" / "config.json").write_text((result["a"].path / "config.json").read_text())
    assert resolve("test-mlp").kind == "directory"


def test_an_unknown_name_lists_what_was_tried(workdir):
    with pytest.raises(UserInputError, match=r"'nope' is not an artifact, a model directory or a preset: no such "
                                             r"path, and the presets are .*tiny"):
        resolve("nope")


def test_an_artifact_without_weights_says_so(workdir):
    Recipe(model="test-mlp", output="runs/r", stages=[{"kind": "test-note", "text": "x"}]).run(quiet=True)
    with pytest.raises(UserInputError, match="artifact runs/r/01-test-note holds no model weights"):
        resolve("runs/r/01-test-note").model_dir()


# ---- model: {base, lora}: a LiveAvatar-format LoRA merged into the source ------------------------------------------


def write_lora(path, rank=2, seed=0):
    """A LiveAvatar-format LoRA for the tiny preset (every q, k, v, o, ffn.0, ffn.2), as their trainer names it."""
    from safetensors.torch import save_file

    from compress.models.auto import build_preset
    from tests.models.test_liveavatar_lora import liveavatar_state, native_shapes

    state = liveavatar_state(native_shapes(build_preset("tiny")), rank=rank, seed=seed)
    save_file(state, path)
    return state


def test_a_liveavatar_lora_is_merged_into_the_source_and_recorded(workdir):
    import torch

    from compress.models.auto import build_preset
    from compress.utils.hashing import sha256_file
    from tests.models.test_liveavatar_lora import merged_by_hand

    state = write_lora(workdir / "la.safetensors")
    recipe = Recipe(model={"base": "tiny", "lora": "la.safetensors", "lora_alpha": 2}, output="runs/r",
                    stages=[{"kind": "quantize", "name": "int8", "scheme": "int8_weight_only"}])
    result = recipe.run(quiet=True)
    source = result["source"]
    assert source.manifest["lora"] == {"file": str(workdir / "la.safetensors"), "merged": True, "alpha": 2.0,
                                       "rank": 2, "modules": 38, "parameters": sum(t.numel() for t in state.values()),
                                       "sha256": sha256_file(workdir / "la.safetensors")}
    expected = merged_by_hand(build_preset("tiny"), state, alpha=2.0, rank=2).state_dict()
    got = source.load_model().state_dict()
    assert all(torch.allclose(got[k], v, rtol=0, atol=1e-6) for k, v in expected.items())
    assert result["int8"].metrics["quantized_layers"] > 0
    assert recipe.run(quiet=True)["source"].hash == source.hash  # resumed: the same file, the same source
    write_lora(workdir / "la.safetensors", seed=1)  # another LoRA under the same name: the source is redone
    assert recipe.run(quiet=True)["source"].manifest["lora"]["sha256"] != source.manifest["lora"]["sha256"]


def test_a_lora_source_from_yaml_and_its_path_checks(workdir):
    write_lora(workdir / "la.safetensors")
    (workdir / "r.yaml").write_text("model: {base: tiny, lora: la.safetensors}\noutput: runs/r\n"
                                    "stages: [{kind: quantize, scheme: int8_weight_only}]\n")
    recipe = Recipe.from_yaml(workdir / "r.yaml")
    assert recipe.model.base == "tiny" and recipe.model.merge and recipe.model.lora_alpha is None
    recipe.check_paths(workdir)
    assert resolve(recipe.model).kind == "preset"  # the base's kind
    with pytest.raises(RecipeError, match=r"model\.lora: expected a path inside .*; found '\.\./la\.safetensors'"):
        Recipe(model={"base": "tiny", "lora": "../la.safetensors"}, output="r",
               stages=[{"kind": "test-note", "text": "x"}]).check_paths(workdir / "runs")
    with pytest.raises(RecipeError, match=r"model\.lora: expected a LoRA file; found 'nope\.pt', which does not"):
        Recipe(model={"base": "tiny", "lora": "nope.pt"}, output="r",
               stages=[{"kind": "test-note", "text": "x"}]).check_paths(workdir)
    (workdir / "bad.yaml").write_text("model: {base: tiny, lora: la.safetensors, alpha: 3}\noutput: runs/r\n"
                                      "stages: [{kind: quantize, scheme: int8_weight_only}]\n")
    with pytest.raises(RecipeError) as err:  # one problem, the mapping's (not one per form of the union)
        Recipe.from_yaml(workdir / "bad.yaml")
    assert len(err.value.problems) == 1
    assert err.value.problems[0].startswith("bad.yaml:1: model.alpha: unknown field 'alpha'")
    with pytest.raises(ValueError, match=r"true \(merge: false is not supported for a recipe's model yet: .*drop"):
        Recipe(model={"base": "tiny", "lora": "la.safetensors", "merge": False}, output="r",
               stages=[{"kind": "test-note", "text": "x"}])


def test_a_lora_that_does_not_fit_the_base_names_the_module(workdir):
    write_lora(workdir / "la.safetensors")
    recipe = Recipe(model={"base": "test-mlp", "lora": "la.safetensors"}, output="runs/r",
                    stages=[{"kind": "test-note", "text": "x"}])
    with pytest.raises(UserInputError, match=r"la\.safetensors: does not fit TinyMLP: audio_injector\.injector\.0\.k "
                                             r"\(audio_injectors\.0\.attn\.to_k\): absent, not a Linear of TinyMLP"):
        recipe.run(quiet=True)
