"""Shared test setup: no wandb, a tiny model + stage kinds for exercising the engine, and the optional
environments as fixtures that skip, with the reason, where one is missing (Debian tools: markers in helpers.py)."""

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


@pytest.fixture(scope="session")
def synthetic_set(tmp_path_factory):
    """The built-in synthetic talking-face set with `DEFAULT_FAULTS`, 3 clips at 96 px, read-only for every test:
    `load_synthetic_set` output (absolute paths, each clip's `variants` keyed in order of the faults) plus "path"
    (its inputs.yaml). 96 px rather than 64: the faults' blur sigmas are in pixels, and at 64 px a 1-pixel frame
    blur already fools the face mesh (it reads the dark open mouth as closed lips)."""
    from compress.data import DEFAULT_FAULTS, build_synthetic_set, load_synthetic_set

    path = build_synthetic_set(tmp_path_factory.mktemp("synthetic"), num_clips=3, size=96, faults=DEFAULT_FAULTS,
                               mp4=False)
    return {**load_synthetic_set(path), "path": str(path)}


@pytest.fixture(scope="session")
def detector():
    """One `LandmarkDetector` for the session (its content cache is shared by all tests). Skipped with the reason
    when the landmark environment is missing, except under CI (CI=true), where that fails."""
    from compress.face.landmarks import LandmarkDetector, LandmarksUnavailable

    try:
        found = LandmarkDetector()
        found.start()
    except LandmarksUnavailable as err:
        if os.environ.get("CI"):
            pytest.fail(f"landmark environment missing under CI: {err}")
        pytest.skip(f"landmark environment unavailable: {err}")
    with found:
        yield found


@pytest.fixture(scope="session")
def qnn():
    """The onnxruntime-qnn plugin's status (the HTP simulator on x86); skipped with the reason where it cannot be
    registered."""
    from compress.export.qnn import qnn_status

    status = qnn_status()
    if not status.available:
        pytest.skip(status.reason)
    return status


@pytest.fixture(scope="session")
def python_speech_features():
    """The reference MFCC package (a dev extra: pip install -e '.[dev]')."""
    return pytest.importorskip("python_speech_features", reason="python_speech_features is not installed "
                                                                "(pip install -e '.[dev]')")
