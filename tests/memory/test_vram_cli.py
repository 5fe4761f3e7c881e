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
