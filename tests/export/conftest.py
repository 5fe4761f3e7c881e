import pytest

from compress.export.qnn import qnn_status
from tests.export.net import register

register()


@pytest.fixture(scope="session")
def qnn():
    """Skip (with the reason) where the onnxruntime-qnn plugin cannot be registered."""
    status = qnn_status()
    if not status.available:
        pytest.skip(status.reason)
    return status
