"""LiveAvatar's LoRA format both ways: its file (built here with the published key names and shapes) merges into the
tiny DiT exactly like W + alpha/r * B @ A by hand, unmerged adapters equal merged ones, our adapters round-trip."""

import copy
import re

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from compress.distill.lora_adapters import attach_adapters, load_adapters, save_adapters
from compress.errors import UserInputError
from compress.models.auto import meta_model
from compress.models.s2v import WanS2VTransformer3DModel, get_preset_config
from compress.models.s2v.keymap import native_to_ours, ours_to_native
from compress.models.s2v.liveavatar_lora import (adapters_of, apply_lora, liveavatar_modules, read_liveavatar_lora,
                                                 read_peft_adapters, write_liveavatar_lora, write_peft_adapters)
from tests.helpers import release_keys, run_cli

# LiveAvatar: LoraConfig(target_modules="q,k,v,o,ffn.0,ffn.2") on the native names; peft matches name suffixes
TARGET = re.compile(r"^(?P<module>.+\.(q|k|v|o|ffn\.0|ffn\.2))\.weight$")


def liveavatar_state(native_shapes: dict[str, tuple], rank: int, seed: int = 0, std: float = 0.1) -> dict:
    """A LoRA state dict as LiveAvatar's trainer writes it: every targeted Linear of the native layout."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in native_shapes.items():
        match = TARGET.match(key)
        if match and len(shape) == 2:
            stem = f"base_model.model.{match['module']}"
            state[f"{stem}.lora_A.default.weight"] = torch.randn(rank, shape[1], generator=g) * std
            state[f"{stem}.lora_B.default.weight"] = torch.randn(shape[0], rank, generator=g) * std
    return state


def native_shapes(model) -> dict[str, tuple]:
    return {ours_to_native(k): tuple(v.shape) for k, v in model.state_dict().items()}


def merged_by_hand(model, state: dict, alpha: float, rank: int):
    """A copy of `model` with W + alpha/rank * B @ A on each module of `state`, done here, not by the module."""
    merged = copy.deepcopy(model)
    params = dict(merged.named_parameters())
    with torch.no_grad():
        for key, a in state.items():
            if ".lora_A." in key:
                b = state[key.replace(".lora_A.", ".lora_B.")]
                native = key.removeprefix("base_model.model.").split(".lora_A.")[0] + ".weight"
                params[native_to_ours(native)] += alpha / rank * (b @ a)
    return merged


@pytest.fixture
def lora_file(tiny_random, tmp_path):
    state = liveavatar_state(native_shapes(tiny_random), rank=4)
    path = tmp_path / "liveavatar.safetensors"
    save_file({k: v.to(torch.bfloat16) for k, v in state.items()}, path)  # bf16, as their trainer holds it
    return path, {k: v.to(torch.bfloat16).float() for k, v in state.items()}


def test_a_liveavatar_file_merges_like_the_update_by_hand(tiny_random, lora_file, make_inputs, forward):
    path, state = lora_file
    inputs = make_inputs(tiny_random)
    expected = forward(merged_by_hand(tiny_random, state, alpha=64.0, rank=4), inputs)
    base = forward(tiny_random, inputs)
    lora = read_liveavatar_lora(path)  # alpha: LiveAvatar's 64 (the file has no metadata)
    assert (lora.rank, lora.alpha, len(lora.pairs)) == (4, 64.0, 3 * 10 + 2 * 4)
    adapted = apply_lora(tiny_random, lora, merge=True)
    assert sorted(adapted) == sorted(liveavatar_modules(tiny_random))
    got = forward(tiny_random, inputs)
    assert (got - base).abs().max() > 0.1  # the update matters
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_unmerged_adapters_compute_what_the_merged_model_does(tiny_random, lora_file, make_inputs, forward):
    path, _ = lora_file
    inputs = make_inputs(tiny_random)
    merged = copy.deepcopy(tiny_random)
    apply_lora(merged, read_liveavatar_lora(path, alpha=2.0), merge=True)
    apply_lora(tiny_random, read_liveavatar_lora(path, alpha=2.0), merge=False)
    assert tiny_random.peft_config["default"].lora_alpha == 2.0
    torch.testing.assert_close(forward(tiny_random, inputs), forward(merged, inputs), rtol=1e-5, atol=1e-5)
    # the attached adapters are ours again, exactly as read
    again = adapters_of(tiny_random)
    read = read_liveavatar_lora(path, alpha=2.0)
    assert (again.rank, again.alpha) == (4, 2.0)
    for name, (a, b) in read.pairs.items():
        assert torch.equal(again.pairs[name][0], a.float()) and torch.equal(again.pairs[name][1], b.float())


def test_our_adapters_round_trip_through_liveavatar_format(tiny_random, tmp_path, make_inputs, forward):
    fresh = copy.deepcopy(tiny_random)
    attach_adapters(tiny_random, ["*.to_q", "*.to_k", "*.to_v", "*.to_out.0", "*.ffn.net.0.proj", "*.ffn.net.2"],
                    rank=8, alpha=4)
    with torch.no_grad():
        for name, param in tiny_random.named_parameters():
            if "lora_" in name:
                param.normal_(std=0.05)
    ours = save_adapters(tiny_random, tmp_path / "adapters")
    inputs = make_inputs(tiny_random)
    expected = forward(tiny_random, inputs)

    exact = write_liveavatar_lora(read_peft_adapters(ours), tmp_path / "la32.safetensors", dtype=torch.float32)
    back = write_peft_adapters(read_liveavatar_lora(exact), tmp_path / "back")
    with safe_open(str(ours / "adapter_model.safetensors"), "pt") as a, safe_open(
            str(back / "adapter_model.safetensors"), "pt") as b:
        assert sorted(a.keys()) == sorted(b.keys())
        assert all(torch.equal(a.get_tensor(k), b.get_tensor(k)) for k in a.keys())
    load_adapters(fresh, back)
    assert fresh.peft_config["default"].lora_alpha == 4 and fresh.peft_config["default"].r == 8
    torch.testing.assert_close(forward(fresh, inputs), expected, rtol=0, atol=0)

    default = write_liveavatar_lora(adapters_of(tiny_random), tmp_path / "la.safetensors")  # bf16, as theirs
    with safe_open(str(default), "pt") as f:
        keys, meta = list(f.keys()), f.metadata()
        assert {f.get_tensor(k).dtype for k in keys} == {torch.bfloat16}
    assert "base_model.model.blocks.0.self_attn.q.lora_A.default.weight" in keys
    assert "base_model.model.audio_injector.injector.1.o.lora_B.default.weight" in keys
    assert "base_model.model.blocks.2.ffn.2.lora_A.default.weight" in keys and len(keys) == 2 * 38
    assert (meta["lora_rank"], float(meta["lora_alpha"]), meta["lora_target_modules"]) == ("8", 4.0,
                                                                                          "q,k,v,o,ffn.0,ffn.2")
    rounded = read_liveavatar_lora(default)
    for name, (a, _) in rounded.pairs.items():
        assert torch.equal(a, adapters_of(tiny_random).pairs[name][0].to(torch.bfloat16))


def test_a_trainer_checkpoint_pt_without_the_prefix_loads_too(tiny_random, tmp_path):
    state = liveavatar_state(native_shapes(tiny_random), rank=2)
    path = tmp_path / "step_100.pt"
    torch.save({k.removeprefix("base_model.model."): v for k, v in state.items()}, path)
    lora = read_liveavatar_lora(path, alpha=1.0)
    assert (lora.rank, lora.alpha, len(lora.pairs)) == (2, 1.0, 38)


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.update({"base_model.model.blocks.0.self_attn.q.lora_A.weight": torch.zeros(4, 64)}),
     r"not in LiveAvatar's LoRA format .*blocks\.0\.self_attn\.q\.lora_A\.weight"),
    (lambda s: s.update({"base_model.model.blocks.0.self_atn.q.lora_A.default.weight": torch.zeros(4, 64),
                         "base_model.model.blocks.0.self_atn.q.lora_B.default.weight": torch.zeros(64, 4)}),
     r"LoRA on modules Wan2\.2-S2V does not have .*blocks\.0\.self_atn\.q"),
    (lambda s: s.update({"base_model.model.head.head.lora_A.default.weight": torch.zeros(4, 64),
                         "base_model.model.head.head.lora_B.default.weight": torch.zeros(64, 4)}),
     r"LoRA on modules outside LiveAvatar's targets .*head\.head"),
    (lambda s: s.pop("base_model.model.blocks.1.ffn.0.lora_B.default.weight"),
     r"not in LiveAvatar's LoRA format .*blocks\.1\.ffn\.0\.lora_B \(missing; its pair is present\)"),
    (lambda s: s.update({"base_model.model.blocks.1.ffn.0.lora_B.default.weight": torch.zeros(128, 3)}),
     r"lora_A.s rows and lora_B.s columns \(the rank\) differ: blocks\.1\.ffn\.0 \(A \(4, 64\), B \(128, 3\)\)"),
])
def test_bad_keys_are_named(tiny_random, tmp_path, edit, message):
    state = liveavatar_state(native_shapes(tiny_random), rank=4)
    edit(state)
    save_file(state, tmp_path / "bad.safetensors")
    with pytest.raises(UserInputError, match=r"bad\.safetensors: " + message):
        read_liveavatar_lora(tmp_path / "bad.safetensors")


def test_a_shape_mismatch_names_the_module_and_both_shapes(tiny_random, tmp_path):
    shapes = native_shapes(tiny_random)
    shapes["blocks.2.cross_attn.k.weight"] = (64, 48)  # another text dim than the model's
    save_file(liveavatar_state(shapes, rank=4), tmp_path / "other.safetensors")
    lora = read_liveavatar_lora(tmp_path / "other.safetensors")
    before = {k: v.clone() for k, v in tiny_random.state_dict().items()}
    with pytest.raises(UserInputError, match=r"does not fit WanS2VTransformer3DModel: blocks\.2\.cross_attn\.k\."
                                             r"lora_A: shape \(4, 48\), expected \(4, 64\) \(Linear 64->64, rank 4\)"):
        apply_lora(tiny_random, lora)
    assert all(torch.equal(v, before[k]) for k, v in tiny_random.state_dict().items())  # nothing half-merged


def test_writing_refuses_adapters_liveavatar_would_ignore(tiny_random, tmp_path):
    attach_adapters(tiny_random, ["*.to_q", "condition_embedder.time_proj"], rank=2, alpha=2)
    with pytest.raises(UserInputError, match=r"LiveAvatar adapts only q,k,v,o,ffn\.0,ffn\.2; its loader would "
                                             r"silently ignore the adapters on condition_embedder\.time_proj"):
        write_liveavatar_lora(adapters_of(tiny_random), tmp_path / "x.safetensors")


def test_the_14b_preset_maps_every_liveavatar_target(capsys):
    """On the meta device: each of LiveAvatar's targets in the release (every block's q,k,v,o of both attentions,
    ffn.0, ffn.2, and the audio injectors' q,k,v,o) is one Linear of ours, and nothing else is."""
    model = meta_model(WanS2VTransformer3DModel, get_preset_config("wan2.2-s2v-14b"))
    targets = {TARGET.match(k)["module"]: shape for k, shape in release_keys().items() if TARGET.match(k)}
    ours = liveavatar_modules(model)
    assert sorted(native_to_ours(t + ".weight").removesuffix(".weight") for t in targets) == sorted(ours)
    assert len(ours) == 40 * 10 + 12 * 4 == 448
    lora_params = sum(128 * (shape[0] + shape[1]) for shape in targets.values())
    assert lora_params == 676_331_520  # blocks 613,416,960 + audio injectors 62,914,560
    print(f"LiveAvatar LoRA on the 14B: {len(ours)} modules, {lora_params:,} parameters at rank 128")


def test_convert_cli_both_ways(tiny_random, lora_file, tmp_path, monkeypatch, capsys):
    path, _ = lora_file
    code, out, err = run_cli(monkeypatch, capsys, "lora", "convert", "--to", "peft", str(path),
                             str(tmp_path / "peft"), "--alpha", "2")
    assert code == 0, err
    assert "38 modules, rank 4, alpha 2" in out
    converted = read_peft_adapters(tmp_path / "peft")
    assert (converted.rank, converted.alpha) == (4, 2.0)
    (tmp_path / "artifact").mkdir()  # a LoRA artifact holds its adapters in adapters/
    (tmp_path / "peft").rename(tmp_path / "artifact" / "adapters")
    code, out, err = run_cli(monkeypatch, capsys, "lora", "convert", "--to", "liveavatar", str(tmp_path / "artifact"),
                             str(tmp_path / "back.safetensors"))
    assert code == 0, err
    assert "lora_rank: 4" in out and "lora_alpha: 2" in out  # what their training config must say
    back = read_liveavatar_lora(tmp_path / "back.safetensors")
    original = read_liveavatar_lora(path)
    assert all(torch.equal(back.pairs[m][i], original.pairs[m][i]) for m in original.pairs for i in (0, 1))
    code, _, err = run_cli(monkeypatch, capsys, "lora", "convert", "--to", "peft", str(tmp_path / "nope.bin"),
                           str(tmp_path / "x"))
    assert code == 2 and "nope.bin: no such LoRA file" in err
