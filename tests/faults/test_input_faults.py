"""Bad input is refused before any work, with exit 2 and a message naming the file, field or option (issue #24).

Each case is a row of `table.Case`: what to write and run, the exit code and a fragment of the message.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.faults.table import Case, check
from tests.helpers import run_cli

HEAD = "name: faults\nmodel: test-mlp\noutput: runs/x\n"
NOTE = "stages:\n  - kind: test-note\n    text: hi\n"


def recipe(tmp: Path, text: str, name: str = "r.yaml") -> Path:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def validate(text: str, *args: str):
    return lambda tmp: ["recipe", "validate", str(recipe(tmp, text).name), *args]


def run(text: str, *args: str, prepare=lambda tmp: None):
    def setup(tmp: Path) -> list[str]:
        prepare(tmp)
        return ["run", "-q", recipe(tmp, text).name, *args]
    return setup


def alias_bomb(tmp: Path) -> list[str]:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    path = recipe(tmp, HEAD + "\n".join(lines) + "\n" + NOTE, "bomb.yaml")
    assert path.stat().st_size < 1200  # 9**9 strings once expanded
    return ["recipe", "validate", path.name]


def huge_recipe(tmp: Path) -> list[str]:
    path = recipe(tmp, HEAD + NOTE + ("# padding" * 100 + "\n") * 1200, "huge.yaml")
    return ["recipe", "validate", path.name]


def latin1_recipe(tmp: Path) -> list[str]:
    (tmp / "latin1.yaml").write_bytes((HEAD + "# caf\xe9\n" + NOTE).encode("latin-1"))
    return ["recipe", "validate", "latin1.yaml"]


def symlinked_recipe(tmp: Path) -> list[str]:
    outside = recipe(tmp, HEAD + NOTE, "outside/real.yaml")
    (tmp / "recipes").mkdir()
    (tmp / "recipes" / "link.yaml").symlink_to(outside)
    return ["recipe", "validate", "recipes/link.yaml"]


def symlinked_include(tmp: Path) -> list[str]:
    outside = recipe(tmp, "seed: 3\n", "outside/base.yaml")
    recipe(tmp, "include: base.yaml\n" + HEAD + NOTE, "recipes/r.yaml")
    (tmp / "recipes" / "base.yaml").symlink_to(outside)
    return ["recipe", "validate", "recipes/r.yaml"]


def escaping_include(tmp: Path) -> list[str]:
    recipe(tmp, "seed: 3\n", "outside/base.yaml")
    recipe(tmp, "include: ../outside/base.yaml\n" + HEAD + NOTE, "recipes/r.yaml")
    return ["recipe", "validate", "recipes/r.yaml"]


def output_file(tmp: Path) -> None:
    (tmp / "runs").mkdir()
    (tmp / "runs" / "x").write_text("my notes\n")


def nothing_written(tmp: Path) -> None:
    assert not (tmp / "runs").exists()


def unchanged(name: str, text: str):
    def after(tmp: Path) -> None:
        assert (tmp / name).read_text() == text
    return after


def binary_inputs(tmp: Path) -> None:
    (tmp / "clips.yaml").write_bytes(bytes(range(256)) * 4)


REFERENCE = "stages:\n  - kind: reference\n    inputs: {inputs}\n"
COMPONENTS = REFERENCE + "    vae: {vae}\n    text_encoder: te\n    audio_encoder: ae\n"


def component_folders(tmp: Path) -> None:
    for name in ("work/te", "work/ae", "elsewhere/vae"):
        (tmp / name).mkdir(parents=True)
    (tmp / "work" / "clips.yaml").write_text("[]\n")


def linked_vae(tmp: Path) -> None:
    """A VAE folder inside the working root whose weights are a link to a file outside it."""
    (tmp / "work" / "vae").mkdir()
    (tmp / "elsewhere" / "vae" / "weights.safetensors").write_bytes(b"")
    (tmp / "work" / "vae" / "weights.safetensors").symlink_to(tmp / "elsewhere" / "vae" / "weights.safetensors")


def in_work(text: str, prepare=lambda tmp: None):
    def setup(tmp: Path) -> list[str]:
        component_folders(tmp)
        prepare(tmp)
        os.chdir(tmp / "work")
        return ["recipe", "validate", recipe(tmp / "work", text).name]
    return setup


RECIPE_CASES = [
    Case("yaml-alias-bomb", alias_bomb, 2, "bomb.yaml:5: aliases (*name) are not supported", seconds=5),
    Case("yaml-too-large", huge_recipe, 2, "huge.yaml: expected a text file of at most 1,048,576 bytes"),
    Case("yaml-not-utf8", latin1_recipe, 2, "latin1.yaml: expected UTF-8 text"),
    Case("recipe-symlink-out", symlinked_recipe, 2, "recipe: 'recipes/link.yaml' resolves to"),
    Case("include-symlink-out", symlinked_include, 2, "base.yaml' resolves to"),
    Case("include-escapes", escaping_include, 2, "outside the recipes root"),
    Case("set-bad-value", validate(HEAD + NOTE, "--set", "name=[oops"), 2,
         "override 'name=[oops': the value of 'name' is not valid yaml"),
    Case("set-into-scalar", validate(HEAD + NOTE, "--set", "name.x=1"), 2,
         "override 'name.x=1': 'name' is 'faults', not a mapping; cannot set 'x'"),
    Case("set-into-stage-scalar", validate(HEAD + NOTE, "--set", "stages.test-note.text.size=1"), 2,
         "'text' is 'hi', not a mapping; cannot set 'size'"),
    Case("set-unknown-stage", validate(HEAD + NOTE, "--set", "stages.nope.text=1"), 2, "no stage 'nope'"),
    Case("set-bad-type", validate(HEAD + NOTE, "--set", "seed=abc"), 2, "seed: expected a valid integer"),
    Case("set-no-key", validate(HEAD + NOTE, "--set", "=3"), 2, "override '=3': expected KEY.PATH=VALUE"),
    Case("set-stage-index-past-end", validate(HEAD + NOTE, "--set", "stages.4.text=x"), 2,
         "no stage '4'; stages: test-note"),
    Case("from-stage-unknown", run(HEAD + NOTE, "--from-stage", "nope"), 2, "no stage named 'nope'",
         after=nothing_written),
    Case("set-alias", validate(HEAD + NOTE, "--set", "name=*a"), 2, "aliases (*name) are not supported"),
    Case("device-tpu9", validate(HEAD + "device: tpu9\n" + NOTE), 2,
         "r.yaml:4: device: expected cpu, cuda, cuda:N (N a GPU index) or auto; found 'tpu9'"),
    Case("output-is-a-file", run(HEAD + NOTE, prepare=output_file), 2, "output: expected a directory",
         after=unchanged("runs/x", "my notes\n")),
    Case("inputs-binary", run(HEAD + REFERENCE.format(inputs="clips.yaml"), prepare=binary_inputs), 2,
         "clips.yaml': expected UTF-8 text"),
    Case("validate-model-missing", validate("model: ./missing\noutput: runs/x\n" + NOTE), 2,
         "model: './missing' is not an artifact, a model directory or a preset: no such path"),
    Case("validate-inputs-missing", validate(HEAD + REFERENCE.format(inputs="clips.yaml")), 2,
         "stages[0] (reference).inputs: expected an existing file or folder; found 'clips.yaml'"),
    Case("validate-vae-outside-roots",
         in_work(HEAD + COMPONENTS.format(inputs="clips.yaml", vae="../elsewhere/vae")), 2,
         "stages[0] (reference).vae: expected a path inside"),
    Case("validate-vae-links-outside-roots", in_work(HEAD + COMPONENTS.format(inputs="clips.yaml", vae="vae"),
                                                     prepare=linked_vae), 2,
         "stages[0] (reference).vae: expected a path inside"),  # as `run` refuses it: symlinks resolved
    Case("validate-suite-missing", validate(HEAD + REFERENCE.format(inputs="builtin:quickstart")
                                            + "  - kind: evaluate\n    reference: reference\n"
                                              "    suite: suites/mine.yaml\n"), 2,
         "stages[1] (evaluate).suite: expected an existing file or folder; found 'suites/mine.yaml'"),
]


TINY_DIT = {"_class_name": "WanS2VTransformer3DModel", "attention_head_dim": 16, "audio_dim": 32,
            "audio_inject_layers": [0, 2], "ffn_dim": 128, "freq_dim": 32, "num_attention_heads": 4, "num_layers": 3,
            "text_dim": 32, "text_len": 16}


def model_dir(config: dict | str):
    def make(tmp: Path) -> None:
        (tmp / "m").mkdir()
        (tmp / "m" / "config.json").write_text(config if isinstance(config, str) else json.dumps(config))
    return make


def inspect_model(config: dict | str):
    return lambda tmp: (model_dir(config)(tmp), ["inspect", "m"])[1]


QUANTIZE = "stages:\n  - kind: quantize\n    scheme: int8_weight_only\n"
MODEL_DIR_RECIPE = "model: m\noutput: runs/x\n" + QUANTIZE

MODEL_CASES = [
    Case("config-not-json-inspect", inspect_model("{not json"), 2, "m/config.json: not valid JSON"),
    Case("config-not-json-run", run(MODEL_DIR_RECIPE, prepare=model_dir("{not json")), 2,
         "m/config.json: not valid JSON", after=nothing_written),
    Case("config-not-a-mapping", inspect_model("[3]"), 2, "m/config.json: expected a JSON object"),
    Case("config-ten-million-layers-inspect", inspect_model({**TINY_DIT, "num_layers": 10_000_000}), 2,
         "m/config.json: num_layers: expected a whole number from 1 to 256; found 10000000", seconds=60),
    Case("config-ten-million-layers-run", run(MODEL_DIR_RECIPE, prepare=model_dir({**TINY_DIT, "num_layers": 10**7})),
         2, "config.json: num_layers: expected a whole number from 1 to 256", after=nothing_written, seconds=60),
    Case("config-heads-not-a-number", inspect_model({**TINY_DIT, "num_attention_heads": "four"}), 2,
         "num_attention_heads: expected a whole number from 1 to 65,536; found 'four'"),
    Case("config-zero-heads", inspect_model({**TINY_DIT, "num_attention_heads": 0}), 2,
         "num_attention_heads: expected a whole number from 1 to 65,536; found 0"),
    Case("config-bool-layers", inspect_model({**TINY_DIT, "num_layers": True}), 2, "num_layers: expected a whole"),
    Case("config-inject-past-the-end", inspect_model({**TINY_DIT, "audio_inject_layers": [0, 7]}), 2,
         "not a valid WanS2VTransformer3DModel config: audio_inject_layers must be increasing block indices"),
    Case("student-negative-channels", inspect_model({"_class_name": "LipSyncStudent", "channels": -4}), 2,
         "channels: expected a whole number from 1 to 65,536; found -4"),
    Case("student-million-blocks", inspect_model({"_class_name": "LipSyncStudent", "mid_blocks": 10**6}), 2,
         "mid_blocks: expected a whole number from 1 to 256; found 1000000", seconds=60),
    Case("student-channel-mult-text", inspect_model({"_class_name": "LipSyncStudent", "channel_mult": "wide"}), 2,
         "channel_mult: expected a list of at most 256 whole numbers"),
    Case("decoder-float-channels", inspect_model({"_class_name": "TinyVAEDecoder", "channels": [256, 4.5]}), 2,
         "channels: expected a list of at most 256 whole numbers from 0 to 65,536; found [256, 4.5]"),
    Case("config-unknown-class", inspect_model({"_class_name": "Nope"}), 2, "m/config.json: _class_name: unknown"),
    Case("official-dim-not-divisible", inspect_model({"dim": 100, "num_heads": 3, "num_layers": 2}), 2,
         "dim: expected a multiple of num_heads (3); found 100"),
    Case("official-zero-heads", inspect_model({"dim": 100, "num_heads": 0}), 2,
         "num_heads: expected a whole number from 1 to 65,536; found 0"),
]


@pytest.mark.parametrize("case", MODEL_CASES, ids=str)
def test_model_config_faults(case, tmp_path, monkeypatch, capsys):
    check(case, tmp_path, monkeypatch, capsys)


def test_a_model_larger_than_memory_is_refused_before_allocation(tmp_path, monkeypatch):
    """Sizes in range, but 256 layers 65,536 wide: counted on the meta device, refused before any weight loads."""
    import psutil

    from compress.errors import UserInputError
    from compress.models.auto import load_model

    huge = {**TINY_DIT, "num_layers": 256, "num_attention_heads": 1024, "attention_head_dim": 64, "ffn_dim": 65536}
    model_dir(huge)(tmp_path)
    rss = psutil.Process().memory_info().rss
    with pytest.raises(UserInputError, match=r"m/config.json: the config describes a WanS2VTransformer3DModel of "
                                             r"[\d,]+ parameters: at least [\d.]+ GB, more than the"):
        load_model(tmp_path / "m")
    assert psutil.Process().memory_info().rss - rss < 2**30


def no_export_written(tmp: Path) -> None:
    assert not (tmp / "export").exists()


def with_file(name: str, content: bytes, *args: str):
    return lambda tmp: ((tmp / name).write_bytes(content), list(args))[1]


EXPORT_CASES = [
    Case("target-profile-not-yaml", with_file("phone.yaml", b"name: [phone\n", "export", "onnx", "lipsync-30m",
                                              "--target", "phone.yaml"), 2, "phone.yaml: not valid YAML",
         after=no_export_written),
    Case("target-profile-binary", with_file("phone.yaml", bytes(range(128, 256)), "export", "onnx", "lipsync-30m",
                                            "--target", "phone.yaml"), 2, "phone.yaml: expected UTF-8 text",
         after=no_export_written),
    Case("export-onnx-dit-preset", lambda tmp: ["export", "onnx", "tiny", "--target", "cpu"], 2,
         "tiny: a WanS2VTransformer3DModel is not exported to ONNX", after=no_export_written, seconds=60),
    Case("export-onnx-dit-folder", lambda tmp: (model_dir(TINY_DIT)(tmp), ["export", "onnx", "m"])[1], 2,
         "m: a WanS2VTransformer3DModel is not exported to ONNX: the S2V DiT is no device model",
         after=no_export_written, seconds=60),
]


@pytest.mark.parametrize("case", EXPORT_CASES, ids=str)
def test_export_faults(case, tmp_path, monkeypatch, capsys):
    check(case, tmp_path, monkeypatch, capsys)


def vram(*args: str):
    return lambda tmp: ["vram", "tiny", "--target", "h100", *args]


VRAM_CASES = [
    Case("vram-catalog-alias", with_file("gpus.yaml", b"gpus: &g {}\ncomponents: *g\n", "vram", "tiny", "-t", "h100",
                                         "--catalog", "gpus.yaml"), 2,
         "gpus.yaml: not valid YAML: gpus.yaml:2: aliases"),
    Case("vram-fragmentation-nan", vram("--fragmentation", "nan"), 2, "'--fragmentation': expected a finite number"),
    Case("vram-fragmentation-negative", vram("--fragmentation", "-0.5"), 2, "'--fragmentation'"),
    Case("vram-context-negative", vram("--context-gib", "-100"), 2, "'--context-gib': expected a finite number"),
    Case("vram-context-inf", vram("--context-gib", "inf"), 2, "'--context-gib'"),
    Case("vram-billion-frames", vram("--frames", "1000000000"), 2, "frames must be a multiple of 4 from 4 to 2048",
         seconds=30),
    Case("vram-huge-size", vram("--size", "1000000*1000000"), 2, "multiples of 16 from 64 to 8192", seconds=30),
    Case("vram-huge-batch", vram("--batch", "1000000"), 2, "batch must be from 1 to 1024"),
    Case("vram-huge-cluster", vram("--layout", "fsdp:100000000"), 2, "cannot use 100000000 gpus (at most 4096)"),
]


@pytest.mark.parametrize("case", VRAM_CASES, ids=str)
def test_vram_faults(case, tmp_path, monkeypatch, capsys):
    check(case, tmp_path, monkeypatch, capsys)


def test_overheads_refuse_what_cannot_be_a_cost():
    from compress.errors import UserInputError
    from compress.memory.overheads import Overheads

    for bad in ({"fragmentation": float("nan")}, {"fragmentation": -0.1}, {"cuda_context_bytes": -1}):
        with pytest.raises(UserInputError):
            Overheads(**bad)


@pytest.mark.parametrize("case", RECIPE_CASES, ids=str)
def test_recipe_faults(case, tmp_path, monkeypatch, capsys):
    check(case, tmp_path, monkeypatch, capsys)


def test_validate_accepts_what_run_accepts(tmp_path, monkeypatch, capsys):
    """Paths inside a declared root that exist pass `recipe validate`; the same recipe passes `run`'s check."""
    from compress.recipe import load_recipe

    component_folders(tmp_path)
    path = recipe(tmp_path / "work", HEAD + "roots: [../elsewhere]\n" + COMPONENTS.format(inputs="clips.yaml",
                                                                                          vae="../elsewhere/vae"))
    monkeypatch.chdir(tmp_path / "work")
    code, out, err = run_cli(monkeypatch, capsys, "recipe", "validate", path.name)
    assert code == 0, err
    load_recipe(path).check_paths(Path.cwd())  # what the runner calls first


def test_unforeseen_error_is_one_line_exit_1(monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("the disk caught fire")

    monkeypatch.setattr("compress.cli.recipe.load_recipe", broken)
    code, out, err = run_cli(monkeypatch, capsys, "recipe", "validate", "r.yaml")
    assert (code, "Traceback" in err) == (1, False) and "error: RuntimeError: the disk caught fire" in err
    code, out, err = run_cli(monkeypatch, capsys, "--debug", "recipe", "validate", "r.yaml")
    assert code == 1 and "Traceback" in err and "the disk caught fire" in err
    monkeypatch.setenv("COMPRESS_DEBUG", "1")
    code, out, err = run_cli(monkeypatch, capsys, "recipe", "validate", "r.yaml")
    assert code == 1 and "Traceback" in err
