"""`compress vram`: table, --json, exit codes."""

import json

from tests.helpers import run_cli


def cli(monkeypatch, capsys, *args):
    return run_cli(monkeypatch, capsys, "vram", *args)


def test_table_and_json(monkeypatch, capsys):
    code, out, _ = cli(monkeypatch, capsys, "--preset", "wan2.2-s2v-14b", "--target", "rtx4090", "--size", "480*832",
                       "--frames", "48", "--layout", "fsdp:5", "--upstream-activations")
    assert code == 0 and "does not fit" in out and "FSDP unshard: root unit" in out and "offload the text" in out
    code, out, _ = cli(monkeypatch, capsys, "wan2.2-s2v-14b", "-t", "l40s", "--size", "720*400", "--frames", "48",
                       "--no-cfg", "--layout", "pipeline:5", "--quantize", "fp8_dynamic", "--json")
    data = json.loads(out)
    assert code == 0 and data["fits"] and data["layout"]["label"] == "pipeline:5"
    assert data["gpus"][0]["breakdown"][0]["name"].startswith("DiT weights")


def test_bad_input_exits_2(monkeypatch, capsys):
    code, _, err = cli(monkeypatch, capsys, "tiny", "--target", "rtx4090", "--size", "480x")
    assert code == 2 and "WIDTH*HEIGHT" in err
    code, _, err = cli(monkeypatch, capsys, "tiny", "--preset", "tiny", "--target", "rtx4090")
    assert code == 2
    code, _, err = cli(monkeypatch, capsys, "tiny", "--target", "rtx4090", "--offload", "vae=disk")
    assert code == 2 and "placement" in err


def test_a_few_step_sampler_without_guidance_plans_no_cfg(monkeypatch, capsys):
    """14B + a 4-step LoRA sampled without CFG: one forward per step; --guidance and --cfg must agree."""
    args = ("wan2.2-s2v-14b", "-t", "rtx4090", "--size", "480*832", "--frames", "80", "--layout", "offload",
            "--quantize", "fp8_weight_only", "--cfg-batched", "--json")  # the peak is in the denoising phase
    code, out, err = cli(monkeypatch, capsys, *args, "--sampler", "euler", "--steps", "4", "--guidance", "0")
    few = json.loads(out)
    assert code == 0, err
    assert {k: few["workload"][k] for k in ("sampler", "steps", "cfg", "dit_batch", "dit_forwards")} == {
        "sampler": "euler", "steps": 4, "cfg": False, "dit_batch": 1, "dit_forwards": 4}
    code, out, _ = cli(monkeypatch, capsys, *args)  # upstream: 40 steps of batched CFG
    teacher = json.loads(out)
    assert teacher["workload"]["dit_forwards"] == 80 and teacher["workload"]["dit_batch"] == 2
    assert few["peak_bytes"] < teacher["peak_bytes"]  # batch 1 instead of 2 through the DiT
    code, _, err = cli(monkeypatch, capsys, *args, "--cfg", "--guidance", "0")
    assert code == 2 and "--cfg contradicts --guidance 0" in err.replace("\n", " ")
    code, _, err = cli(monkeypatch, capsys, *args, "--sampler", "ddim")
    assert code == 2 and "expected one of unipc, euler; found 'ddim'" in err.replace("\n", " ")
