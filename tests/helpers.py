"""Helpers shared by test modules."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from compress.data import espeak_available

REPO = Path(__file__).resolve().parents[1]
RELEASE_KEYS = Path(__file__).resolve().parent / "fixtures" / "wan2.2-s2v-14b-keys.tsv"

# Optional Debian tools (scripts/setup.sh installs them): a test that needs one skips, saying how to get it, where
# it is missing. The landmark environment, onnxruntime-qnn and python_speech_features are fixtures in conftest.py.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
                                  reason="ffmpeg is not installed (apt-get install ffmpeg): no mp4 is written")
ESPEAK_MISSING = "espeak-ng is not installed (apt-get install espeak-ng): speech falls back to synthetic tones"
needs_espeak = pytest.mark.skipif(not espeak_available(), reason=ESPEAK_MISSING)


def load_script(name: str):
    """scripts/NAME.py as a module (scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def release_keys() -> dict[str, tuple[int, ...]]:
    """Every tensor of the released 14B DiT: native key -> shape (`RELEASE_KEYS`)."""
    rows = [line.split("\t") for line in RELEASE_KEYS.read_text().splitlines()[1:]]
    return {key: tuple(int(n) for n in shape.split("x")) for key, shape, _ in rows}


def run_cli(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    """Run `compress ARGS...` in-process: (exit code, stdout, stderr)."""
    from compress.cli import main

    monkeypatch.setattr(sys, "argv", ["compress", *args])
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code or 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_recipe_shortened(workdir: Path, monkeypatch, capsys, recipe: str, settings: dict) -> Path:
    """Run `recipes/RECIPE.yaml` as it is from a copy of recipes/ in `workdir`, its `reference` and `heldout` stages
    at 16 frames and 2 sampler steps, then `settings` as `--set` overrides; returns its run folder."""
    shutil.copytree(REPO / "recipes", workdir / "recipes")
    short = {f"stages.{stage}.{key}": value for stage in ("reference", "heldout")
             for key, value in (("frames", 16), ("num_inference_steps", 2))}
    settings = {**short, **settings}
    overrides = [arg for key, value in settings.items() for arg in ("--set", f"{key}={value}")]
    code, _, err = run_cli(monkeypatch, capsys, "run", f"recipes/{recipe}.yaml", *overrides)
    assert code == 0, err
    return workdir / "runs" / recipe


def assert_reloads_identically(artifact, workdir: Path, seed: int = 7) -> None:
    """The artifact, loaded in a fresh Python process, computes exactly what it computes here."""
    model = artifact.load_model()
    inputs = model.example_inputs(seed=seed)
    with torch.no_grad():
        expected = model(**inputs).sample
    torch.save({"inputs": inputs, "expected": expected}, workdir / "io.pt")
    code = (
        "import torch; from compress.artifacts import Artifact\n"
        f"io = torch.load({str(workdir / 'io.pt')!r}, weights_only=True)\n"
        f"model = Artifact.open({str(artifact.path)!r}).load_model()\n"
        "with torch.no_grad(): out = model(**io['inputs']).sample\n"
        "assert torch.equal(out, io['expected']), (out - io['expected']).abs().max()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


@contextlib.contextmanager
def torch_threads(count: int):
    """Run with `count` CPU threads, then restore the previous number."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def torchrun(script: str, cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`script` run by two gloo ranks in `cwd` with `args` as its argv, as a user launches a recipe; on timeout the
    launcher and its workers are killed, and TimeoutExpired raised."""
    (cwd / "run.py").write_text(script)
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "run.py", *args]
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
