"""LoRA recovery with the unconditional branch matched beside the conditional one (`unconditional_weight`)."""

import pytest
import torch

from compress import Recipe
from compress.distill.lora import DitInputs, LoraRecoveryConfig, LoraRecoveryTask
from compress.reference import ReferenceArtifact
from compress.stages.reference import ReferenceStage
from tests.helpers import torch_threads

REFERENCE = ReferenceStage(name="reference", max_clips=2, frames=8, size="64*64", num_inference_steps=2)

pytestmark = pytest.mark.slow  # a tiny reference run: about 10 s


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    with torch_threads(1):
        result = Recipe(model="tiny", output="runs/t", stages=[REFERENCE]).run(root=tmp_path_factory.mktemp("t"),
                                                                              quiet=True)
        yield ReferenceArtifact(result["reference"]), result["source"].load_model().eval()


def test_unconditional_weight_adds_the_unconditional_branchs_error(run):
    reference, teacher = run
    student = type(teacher).from_config(teacher.config).eval()  # another random model
    config = LoraRecoveryConfig(unconditional_weight=0.5)
    task = LoraRecoveryTask(student, teacher, DitInputs(teacher, reference), config, batch_size=2)
    batch = next(task.batches())

    def error(x):
        with torch.no_grad():
            return torch.nn.functional.mse_loss(student(**x).sample, teacher(**x).sample)

    expected = sum(error(c) + 0.5 * error(u) for c, u in zip(batch["inputs"], batch["unconditional"])) / 2
    loss, logs = task.loss(student, batch)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5) and logs["unconditional_mse"] > 0
    assert not batch["unconditional"][0]["audio_features"].any()
