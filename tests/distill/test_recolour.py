"""Recoloured copies of reference clips for decoders of video latents (`recolour`): every frame of a copy is
recoloured alike, a copy's frames are the teacher VAE's decoding of its latents, the copies join each row's
examples (cached; a mirrored copy's mouth box mirrored), and the setting is refused where it does not apply."""

import numpy as np
import pytest
import torch

from compress import Recipe
from compress.distill.config import LossConfig
from compress.distill.recolour import recolour, recoloured_clip
from compress.distill.students import DecoderTask
from compress.models.students import TinyVAEDecoder
from compress.models.students.vae_io import decode_video, frames_to_pixels
from compress.reference import ReferenceArtifact
from compress.stages.distill import DistillStage
from compress.stages.reference import ReferenceStage
from compress.utils.arrays import decode_array
from tests.helpers import torch_threads

REFERENCE = ReferenceStage(name="reference", max_clips=2, frames=8, size="64*64", num_inference_steps=2)

pytestmark = pytest.mark.slow  # a tiny reference run: about 10 s


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    with torch_threads(1):
        result = Recipe(model="tiny", output="runs/r", stages=[REFERENCE]).run(root=tmp_path_factory.mktemp("r"),
                                                                              quiet=True)
        yield ReferenceArtifact(result["reference"])


def test_every_frame_is_recoloured_alike():
    pixels = torch.rand(1, 3, 5, 8, 8) * 2 - 1
    whole, mirrored = recolour(pixels, torch.Generator().manual_seed(3))
    for t in range(5):
        alone, again = recolour(pixels[:, :, t : t + 1], torch.Generator().manual_seed(3))
        torch.testing.assert_close(whole[:, :, t : t + 1], alone)
        assert again == mirrored
    flips = {recolour(pixels, torch.Generator().manual_seed(seed))[1] for seed in range(8)}
    assert flips == {True, False} and not torch.allclose(whole, pixels.flip(-1) if mirrored else pixels)


def test_a_copys_frames_are_the_vaes_decoding_of_its_latents(reference):
    vae, row = reference.vae(), reference.rows[0]
    latents, previous, frames, _ = recoloured_clip(vae, row, 0, torch.Generator().manual_seed(0))
    count = REFERENCE.frames // 4
    assert latents.shape[0] == previous.shape[0] == count and frames.shape == (REFERENCE.frames, 64, 64, 3)
    torch.testing.assert_close(previous[1:], latents[:-1])  # each latent behind the one before it
    decoded = decode_video(vae, torch.cat([previous[:1], latents]).transpose(0, 1)[None])[0, :, -REFERENCE.frames:]
    assert (decoded.transpose(0, 1) - frames_to_pixels(frames)).abs().max() <= 2 / 255 + 1e-6  # uint8 rounding
    assert not np.array_equal(frames.numpy(), decode_array(row, "frames"))  # recoloured


def test_copies_join_each_rows_examples_cached_with_mirrored_boxes(reference, tmp_path):
    model = TinyVAEDecoder(channels=(32, 16, 16, 8), latent_blocks=1)
    box = (0.1, 0.5, 0.3, 0.9)
    task = DecoderTask(model, reference, LossConfig(pixel_l1=1.0), batch_size=2, holdout=1, boxes=box,
                       vae=reference.vae(), cache_dir=tmp_path, recolour=2)
    own, examples = task.frame_examples(0), task.examples(0)
    count = len(own["latents"])
    assert len(examples["latents"]) == 3 * count and torch.equal(examples["latents"][:count], own["latents"])
    assert not torch.equal(examples["frames"][count : 2 * count], own["frames"])
    assert len(list(tmp_path.glob("recoloured-000000-*.safetensors"))) == 2
    assert all(torch.equal(examples[k], task.examples(0)[k]) for k in examples)  # the cache reads them back
    mirrored = torch.tensor([0.7, 0.5, 0.9, 0.9])
    assert all(torch.allclose(b, torch.tensor(box)) or torch.allclose(b, mirrored) for b in examples["box"][count:])


def test_recolour_is_refused_where_it_does_not_apply():
    with pytest.raises(ValueError, match="recolour applies to method 'student'"):
        DistillStage(method="lora", recolour=2)
    with pytest.raises(ValueError, match="recoloured copies need a decoder of video latents"):
        DecoderTask(TinyVAEDecoder(channels=(32, 16, 16, 8)), None, LossConfig(pixel_l1=1.0), 2, 0, recolour=1)
