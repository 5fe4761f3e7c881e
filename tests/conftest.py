"""Shared test setup: no wandb, and a tiny model + stage kinds for exercising the engine."""

import os

os.environ["WANDB_MODE"] = "disabled"
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402

from tests.engine_fixtures import register_engine_fixtures  # noqa: E402

register_engine_fixtures()


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A working root: recipes run from here and their outputs stay inside it."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
