import pytest

from compress import Recipe
from compress.stages.reference import ReferenceStage

SETTINGS = dict(inputs="builtin:quickstart", max_clips=2, frames=8, size="64*64", num_inference_steps=2)


@pytest.fixture(scope="session")
def run(tmp_path_factory):
    """(root, result) of a recipe with a two-input reference stage `ref` of the tiny teacher."""
    root = tmp_path_factory.mktemp("reference_artifact")
    result = Recipe(model="tiny", output="runs/ref", stages=[ReferenceStage(name="ref", **SETTINGS)]).run(
        root=root, quiet=True)
    return root, result
