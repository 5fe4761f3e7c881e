"""Recoloured copies of reference clips for decoders of video latents (`recolour`): every frame of a copy is
recoloured alike, a copy's frames are the teacher VAE's decoding of its latents, the copies join each row's
examples (cached; a mirrored copy's mouth box mirrored), and the setting is refused where it does not apply."""

import numpy as np
import pytest
import torch

from compress.distill.config import LossConfig
from compress.distill import students
from compress.distill.recolour import recolour, recoloured_clip
from compress.distill.students import DecoderTask
from compress.models.students import TinyVAEDecoder
from compress.models.students.vae_io import decode_video, frames_to_pixels, reference_latent, reference_pixels
from compress.stages.distill import DistillStage
from compress.utils.arrays import decode_array, decode_tensor
from tests.distill.conftest import TINY_REFERENCE

FRAMES = TINY_REFERENCE.frames

pytestmark = pytest.mark.slow  # a tiny reference run: about 10 s


@pytest.fixture(scope="module")
def reference(tiny_reference):
    return tiny_reference[0]


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
    latents, previous, frames, *_ = recoloured_clip(vae, row, 0, torch.Generator().manual_seed(0))
    count = FRAMES // 4
    assert latents.shape[0] == previous.shape[0] == count and frames.shape == (FRAMES, 64, 64, 3)
    torch.testing.assert_close(previous[1:], latents[:-1])  # each latent behind the one before it
    assert not torch.equal(previous[0], decode_tensor(row, "ref_latents")[:, 0])  # the recoloured reference
    decoded = decode_video(vae, torch.cat([previous[:1], latents]).transpose(0, 1)[None])[0, :, -FRAMES:]
    assert (decoded.transpose(0, 1) - frames_to_pixels(frames)).abs().max() <= 2 / 255 + 1e-6  # uint8 rounding
    assert not np.array_equal(frames.numpy(), decode_array(row, "frames"))  # recoloured


def test_a_copys_reference_is_the_recoloured_latent_its_first_clip_decodes_behind(reference):
    vae, row = reference.vae(), reference.rows[0]
    copy = recoloured_clip(vae, row, 0, torch.Generator().manual_seed(0))
    assert copy.reference.shape == (1, 3, 64, 64)
    torch.testing.assert_close(copy.reference, reference_pixels(vae, copy.previous[:1]), atol=1e-5, rtol=0)
    original = reference_pixels(vae, reference_latent(row))
    assert (copy.reference - original).abs().mean() > 0.02  # recoloured


def test_a_reference_decoders_examples_carry_the_reference_recoloured_with_its_copies(reference, tmp_path):
    vae, row = reference.vae(), reference.rows[0]
    model = TinyVAEDecoder(channels=(32, 16, 16, 8), latent_blocks=1, reference=True)
    task = DecoderTask(model, reference, LossConfig(pixel_l1=1.0), batch_size=2, holdout=1, vae=vae,
                       cache_dir=tmp_path, recolour=1)
    examples = task.examples(0)
    count = len(examples["latents"]) // 2
    torch.testing.assert_close(examples["reference"][:count],
                               reference_pixels(vae, reference_latent(row)).expand(count, -1, -1, -1))
    copy = recoloured_clip(vae, row, 0, torch.Generator().manual_seed(students.stream_seed(0, 0, 0, 0)))
    torch.testing.assert_close(examples["reference"][count:], copy.reference.expand(count, -1, -1, -1))
    loss, _ = task.loss(model, {k: v[:2] for k, v in examples.items()})
    assert torch.isfinite(loss) and loss > 0
    with pytest.raises(ValueError, match="against the reference image needs the teacher's VAE"):
        DecoderTask(model, reference, LossConfig(pixel_l1=1.0), 2, 0)


def test_copies_join_each_rows_examples_cached_with_mirrored_boxes(reference, tmp_path, monkeypatch):
    made = []

    def recorded(*args):
        made.append(recoloured_clip(*args))
        return made[-1]

    monkeypatch.setattr(students, "recoloured_clip", recorded)
    model = TinyVAEDecoder(channels=(32, 16, 16, 8), latent_blocks=1)
    box = torch.tensor([0.1, 0.5, 0.3, 0.9])
    task = DecoderTask(model, reference, LossConfig(pixel_l1=1.0), batch_size=2, holdout=1, boxes=tuple(box.tolist()),
                       vae=reference.vae(), cache_dir=tmp_path, recolour=8)
    own, examples = task.frame_examples(0), task.examples(0)
    count = len(own["latents"])
    assert len(made) == 8 and len(examples["latents"]) == 9 * count
    assert torch.equal(examples["latents"][:count], own["latents"])
    for copy, (latents, _, frames, _, mirrored) in enumerate(made, start=1):
        part = slice(copy * count, (copy + 1) * count)
        assert torch.equal(examples["latents"][part], latents) and torch.equal(examples["frames"][part].flatten(0, 1),
                                                                                frames)
        expected = torch.tensor([0.7, 0.5, 0.9, 0.9]) if mirrored else box
        assert torch.allclose(examples["box"][part], expected.expand(count, 4))
    assert {m for *_, m in made} == {True, False}
    again = task.examples(0)  # read back from the cache, not made again
    assert len(made) == 8 and all(torch.equal(examples[k], again[k]) for k in examples)


def test_recolour_is_refused_where_it_does_not_apply():
    with pytest.raises(ValueError, match="recolour applies to method 'student'"):
        DistillStage(method="lora", recolour=2)
    with pytest.raises(ValueError, match="recoloured copies need a decoder of video latents"):
        DecoderTask(TinyVAEDecoder(channels=(32, 16, 16, 8)), None, LossConfig(pixel_l1=1.0), 2, 0, recolour=1)
