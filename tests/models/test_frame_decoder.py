"""The tiny VAE decoder of image latents (`latents: image`, preset `tiny-frame-decoder`): the phone's chain decodes
a lip-sync student's per-frame image latents with it. Shapes, its training examples and step (the teacher frames'
image latents, cached), the student decoded by it, and the refusal of a decoder trained on the other latents."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from compress.distill.config import LossConfig
from compress.distill.students import DecoderTask
from compress.errors import UserInputError
from compress.models.auto import build_preset
from compress.models.students import LipSyncStudent, TinyVAEDecoder
from compress.models.students.chain import StudentChain, check_chain, check_decoder
from compress.models.students.vae_io import encode_frames
from compress.pipelines.components import tiny_vae
from compress.utils.arrays import encode_array

SMALL_DECODER = {"channels": (32, 16, 16, 8), "latent_blocks": 1, "frames_per_latent": 1, "latents": "image"}
SMALL_STUDENT = {"channels": 32, "mid_blocks": 1, "audio_channels": 32, "audio_dim": 32, "masked_input": "reference"}
FRAMES, SIDE, FPS, RATE = 6, 64, 16, 16_000


def fake_row(index: int, vae) -> dict:
    gen = np.random.default_rng(index)
    frames = gen.integers(0, 256, (FRAMES, SIDE, SIDE, 3), dtype=np.uint8)
    ref = encode_frames(vae, frames[:1]).transpose(0, 1).numpy()  # [C, 1, h, w], as a reference row holds it
    audio = gen.standard_normal(RATE * FRAMES // FPS).astype(np.float32) * 0.1
    return {"id": f"clip-{index}", "fps": FPS, **encode_array(frames, "frames"), **encode_array(ref, "ref_latents"),
            **encode_array(audio, "audio")}


@pytest.fixture(scope="module")
def vae():
    torch.manual_seed(0)
    return tiny_vae().eval()


@pytest.fixture(scope="module")
def rows(vae):
    return [fake_row(i, vae) for i in range(2)]


def test_an_image_latent_decoder_outputs_one_frame_per_latent():
    decoder = TinyVAEDecoder(**SMALL_DECODER)
    assert decoder(**decoder.example_inputs(batch_size=2, height=96, width=160)).shape == (2, 1, 3, 96, 160)
    preset = build_preset("tiny-frame-decoder", seed=0)
    assert preset.config.latents == "image" and preset.config.frames_per_latent == 1
    assert TinyVAEDecoder().config.latents == "video"  # the existing decoder (and saved ones) unchanged
    with pytest.raises(ValueError, match="latents: image decodes one frame per latent .frames_per_latent 1.; got "
                                         "frames_per_latent 4"):
        TinyVAEDecoder(latents="image")
    with pytest.raises(ValueError, match=r"latents: video decodes 4 frames per latent \(the Wan VAE's temporal "
                                         r"stride\); got frames_per_latent 2"):
        TinyVAEDecoder(frames_per_latent=2)
    with pytest.raises(ValueError, match="latents: one of video, image; got 'pixels'"):
        TinyVAEDecoder(latents="pixels", frames_per_latent=1)


def test_training_examples_are_the_teacher_frames_image_latents_behind_the_reference(vae, rows, tmp_path):
    torch.manual_seed(0)
    decoder = TinyVAEDecoder(**SMALL_DECODER)
    task = DecoderTask(decoder, SimpleNamespace(rows=rows), LossConfig(pixel_l1=1.0), batch_size=4, holdout=1,
                       vae=vae, cache_dir=tmp_path)
    examples = task.frame_examples(0)
    expected = encode_frames(vae, np.frombuffer(rows[0]["frames"], np.uint8).reshape(FRAMES, SIDE, SIDE, 3))
    torch.testing.assert_close(examples["latents"], expected)
    assert examples["frames"].shape == (FRAMES, 1, SIDE, SIDE, 3)
    torch.testing.assert_close(examples["previous"], examples["latents"][:1].expand(FRAMES, -1, -1, -1))  # ref: frame 0
    assert (tmp_path / "frame-latents-000000.safetensors").is_file()  # encoded once, cached as LipSyncTask's
    batch = {k: v[:4] for k, v in examples.items()}
    optimizer = torch.optim.Adam(decoder.parameters(), lr=2e-3)
    losses = []
    for _ in range(5):
        loss, logs = task.loss(decoder, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert set(logs) == {"pixel_l1"} and losses[-1] < losses[0], losses
    with pytest.raises(ValueError, match="a decoder of image latents needs the teacher's VAE and a cache_dir"):
        DecoderTask(decoder, SimpleNamespace(rows=rows), LossConfig(pixel_l1=1.0), batch_size=4, holdout=1)


def test_the_chain_decodes_the_students_latents_with_the_decoder(vae, rows):
    torch.manual_seed(0)
    student, decoder = LipSyncStudent(**SMALL_STUDENT).eval(), TinyVAEDecoder(**SMALL_DECODER).eval()
    components = SimpleNamespace(vae=vae)
    chain = StudentChain(student, decoder)
    out = chain.eval_generate(rows[0], components)
    alone = student.eval_generate(rows[0], components)
    assert out["frames"].shape == (FRAMES, SIDE, SIDE, 3) and out["frames"].dtype == np.uint8
    torch.testing.assert_close(out["latents"], alone["latents"])  # the same latents, decoded otherwise
    assert not np.array_equal(out["frames"], alone["frames"])


def test_a_decoder_of_the_teachers_video_latents_is_refused_for_the_chain():
    student, video = LipSyncStudent(**SMALL_STUDENT), TinyVAEDecoder(channels=(32, 16, 16, 8), latent_blocks=1)
    message = (r"the lip-sync student \(LipSyncStudent\) emits per-frame image latents .*, but the decoder "
               r"\(TinyVAEDecoder, latents: video\) decodes the teacher's video latents .*: use a decoder trained on "
               r"image latents \(preset tiny-frame-decoder\)")
    with pytest.raises(UserInputError, match=message):
        StudentChain(student, video)
    with pytest.raises(UserInputError, match="--decoder d: a tiny decoder decodes a LipSyncStudent's or an S2V "
                                             "DiT's latents, not an artifact's without model weights"):
        check_decoder(video, "--decoder d", None)
    with pytest.raises(UserInputError, match="export with a decoder: " + message):
        check_chain(student, video, "export with a decoder")
    with pytest.raises(UserInputError, match="x: the model must be a LipSyncStudent .*; found a TinyVAEDecoder"):
        check_chain(video, video, "x")
    check_chain(student, TinyVAEDecoder(**SMALL_DECODER), "export with a decoder")
