import numpy as np
import pytest

import compress  # noqa: F401  (quiets torchao's import-time warnings before diffusers loads)
from compress.pipelines import S2VComponents, S2VPipeline


@pytest.fixture(scope="session")
def components():
    return S2VComponents.tiny(seed=0)


@pytest.fixture(scope="session")
def pipe(components):
    return S2VPipeline(components)


@pytest.fixture(scope="session")
def face():
    return np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)


@pytest.fixture(scope="session")
def speech():
    """0.5 s of 16 kHz noise-modulated tone: 8 video frames at 16 fps."""
    t = np.arange(8000) / 16_000
    rng = np.random.default_rng(1)
    return (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + rng.standard_normal(t.size) * 0.1)).astype(np.float32)
