import pytest

from compress import Recipe
from compress.reference import ReferenceArtifact
from compress.stages.reference import ReferenceStage
from tests.helpers import torch_threads

TINY_REFERENCE = ReferenceStage(name="reference", max_clips=2, frames=8, size="64*64", num_inference_steps=2)


@pytest.fixture(scope="session")
def tiny_reference(tmp_path_factory):
    """The tiny teacher's reference of 2 built-in clips (8 frames at 64x64, 2 steps) and the teacher (about 10 s)."""
    with torch_threads(1):
        result = Recipe(model="tiny", output="runs/r", stages=[TINY_REFERENCE]).run(
            root=tmp_path_factory.mktemp("tiny-reference"), quiet=True)
        yield ReferenceArtifact(result["reference"]), result["source"].load_model().eval()
