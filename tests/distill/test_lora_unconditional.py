"""LoRA recovery with the unconditional branch matched beside the conditional one (`unconditional_weight`)."""

import pytest
import torch

from compress.distill.lora import DitInputs, LoraRecoveryConfig, LoraRecoveryTask

pytestmark = pytest.mark.slow  # a tiny reference run: about 10 s


@pytest.mark.parametrize("guidance_scale, mouth_weight", [(1.0, 0.0), (3.0, 2.0)])
def test_unconditional_weight_adds_the_unconditional_branchs_error(tiny_reference, guidance_scale, mouth_weight):
    reference, teacher = tiny_reference
    student = type(teacher).from_config(teacher.config).eval()  # another random model
    config = LoraRecoveryConfig(unconditional_weight=0.5, guidance_scale=guidance_scale, mouth_weight=mouth_weight)
    task = LoraRecoveryTask(student, teacher, DitInputs(teacher, reference), config, batch_size=2)
    batch = next(task.batches())
    assert not batch["unconditional"][0]["audio_features"].any()

    def velocity(model, cond, uncond):
        with torch.no_grad():
            c, u = model(**cond).sample, model(**uncond).sample
        return u + guidance_scale * (c - u), u

    def error(pred, target, weights):
        weights = torch.ones_like(pred) if weights is None else weights.expand_as(pred)
        return ((pred - target) ** 2 * weights).sum() / weights.sum()

    expected = 0
    for c, u, w in zip(batch["inputs"], batch["unconditional"], batch.get("weights", [None, None])):
        (guided_s, u_s), (guided_t, u_t) = velocity(student, c, u), velocity(teacher, c, u)
        expected += (error(guided_s, guided_t, w) + 0.5 * error(u_s, u_t, w)) / 2
    loss, logs = task.loss(student, batch)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5) and logs["unconditional_mse"] > 0
    assert ("weights" in batch) == bool(mouth_weight)
