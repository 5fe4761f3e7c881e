"""Students: sizes of the presets (counted on the meta device), save / load round trips, static example inputs,
the masked input, mel windows and decoder inputs in the order the teacher decodes."""

import json

import numpy as np
import pytest
import torch

from compress.models.auto import build_preset, get_preset, inspect_preset
from compress.models.students import LipSyncStudent, TinyVAEDecoder, decoder_inputs, mask_lower_half, mel_windows
from compress.models.students.decoder import INITIAL_REFERENCE_LOGIT
from compress.utils.arrays import encode_array

SMALL_DECODER = {"channels": (32, 16, 16, 8), "latent_blocks": 1}
SHUFFLED_DECODER = {"channels": (32, 16, 8), "latent_blocks": 1, "output_shuffle": True}
FAST_DECODER = {**SHUFFLED_DECODER, "block": "plain"}
SIZES = {"lipsync-30m": (25e6, 35e6), "lipsync-120m": (100e6, 135e6), "lipsync-450m": (400e6, 500e6),
         "tiny-vae-decoder": (1e6, 5e6), "tiny-frame-decoder": (1e6, 5e6)}


@pytest.mark.parametrize("name", sorted(SIZES))
def test_preset_sizes_stay_under_500m(name):
    params = inspect_preset(name)["model"]["parameters"]
    low, high = SIZES[name]
    assert low <= params <= high and params < 500e6, params


@pytest.mark.parametrize("name", ["lipsync-30m", "tiny-vae-decoder"])
def test_save_and_load_round_trip(name, tmp_path):
    model = build_preset(name, seed=0).eval()
    inputs = model.example_inputs(batch_size=2, height=64, width=64)
    with torch.no_grad():
        out = model(**inputs)
    model.save_pretrained(tmp_path)
    again = type(model).from_pretrained(tmp_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(again(**inputs), out, rtol=0, atol=0)
    assert get_preset(name).model_class is type(model)


def test_output_shapes_for_a_non_square_frame():
    student = LipSyncStudent(channels=32, mid_blocks=1, audio_channels=32, audio_dim=32)
    inputs = student.example_inputs(batch_size=3, height=96, width=160)
    assert student(**inputs).shape == (3, 16, 12, 20)
    with pytest.raises(ValueError, match="multiples of 4"):
        student(**student.example_inputs(height=72, width=64))
    for layout in (SMALL_DECODER, FAST_DECODER):
        decoder = TinyVAEDecoder(**layout)
        assert decoder(**decoder.example_inputs(batch_size=2, height=96, width=160)).shape == (2, 4, 3, 96, 160)


def test_masked_input_zeroes_the_lower_half():
    latents = torch.randn(2, 16, 8, 8)
    masked = mask_lower_half(latents)
    assert torch.equal(masked[..., :4, :], latents[..., :4, :]) and not masked[..., 4:, :].any()
    ref = torch.randn(1, 16, 8, 8)
    student = LipSyncStudent(channels=32, mid_blocks=1, audio_channels=32, audio_dim=32, masked_input="reference")
    assert torch.equal(student.masked(latents, ref), mask_lower_half(ref).expand(2, -1, -1, -1))


def test_mel_windows_follow_the_audio():
    sr, fps = 16_000, 16
    audio = np.zeros(sr, np.float32)
    audio[sr // 2:] = np.sin(np.arange(sr // 2) * 2 * np.pi * 440 / sr)  # silence, then a tone from 0.5 s
    windows = mel_windows(audio, fps, num_frames=16, window=8)
    assert windows.shape == (16, 80, 8)
    energy = windows.mean(dim=(1, 2))
    assert energy[:6].max() < energy[10:].min() - 1  # frames well before 0.5 s are quieter than those after


def test_chunked_mel_windows_are_shared_and_centred_on_their_chunk():
    fps, frames = 16, 12
    audio = np.random.default_rng(0).standard_normal(16_000).astype(np.float32)
    per_frame = mel_windows(audio, fps, frames, window=8)
    chunked = mel_windows(audio, fps, frames, window=8, chunk=4)
    assert all(torch.equal(chunked[4 * k], chunked[4 * k + i]) for k in range(3) for i in range(1, 4))
    # chunk 4k..4k+3 is centred at (4k + 2) / fps = the boundary of frames 4k+1 and 4k+2: half a frame (1.56 mel
    # frames at 50 Hz) after frame 4k+1's centre, so its window starts 2 mel frames later (rounded)
    assert torch.equal(chunked[4][:, :-2], per_frame[5][:, 2:])
    assert torch.equal(mel_windows(audio, fps, frames, window=8, chunk=1), per_frame)
    with pytest.raises(ValueError, match="chunk"):
        mel_windows(audio, fps, frames, chunk=0)
    student = LipSyncStudent(channels=32, mid_blocks=1, audio_channels=32, audio_dim=32, audio_chunk=4,
                             audio_window=8)
    assert torch.equal(student.audio_windows(audio, fps, frames), chunked)


def test_decoder_inputs_follow_the_teachers_decode_order():
    c, f, h, w = 16, 3, 2, 2
    latents = torch.arange(2 * c * f * h * w, dtype=torch.float32).reshape(2, c, f, h, w)
    ref, motion = torch.full((c, 1, h, w), -1.0), torch.full((2, c, 19, h, w), -2.0)
    row = {**encode_array(latents.numpy(), "latents"), **encode_array(ref.numpy(), "ref_latents"),
           **encode_array(motion.numpy(), "motion_latents")}
    current, previous = decoder_inputs(row)
    assert current.shape == previous.shape == (6, c, h, w)
    assert torch.equal(current[4], latents[1, :, 1]) and torch.equal(previous[4], latents[1, :, 0])
    assert (previous[0] == -1).all() and (previous[3] == -2).all()  # clip 0 behind the reference, clip 1 motion


@pytest.mark.parametrize("layout", [SMALL_DECODER, SHUFFLED_DECODER, FAST_DECODER],
                         ids=["resnet", "resnet-shuffled", "plain-shuffled"])
def test_a_reference_decoder_starts_at_the_references_upper_half_and_shares_it_across_a_batch(layout):
    decoder = TinyVAEDecoder(**layout, reference=True).eval()
    inputs = decoder.example_inputs(batch_size=3, height=64, width=96)
    with torch.no_grad():
        untrained = decoder(**inputs)
        assert untrained.shape == (3, 4, 3, 64, 96)
        start = torch.sigmoid(torch.tensor(INITIAL_REFERENCE_LOGIT)) * mask_lower_half(inputs["reference"])[:, None]
        torch.testing.assert_close(untrained, start.expand_as(untrained))  # almost the reference's upper half
        _random_output(decoder)
        shared = decoder(inputs["latents"], inputs["previous"], inputs["reference"][:1])
        each = decoder(inputs["latents"], inputs["previous"], inputs["reference"][:1].expand(3, -1, -1, -1))
        torch.testing.assert_close(shared, each)
        other = decoder(inputs["latents"], inputs["previous"], inputs["reference"][1:2])
        assert (shared - other).abs().max() > 1e-2
        other_mouth = inputs["reference"][:1].clone()
        other_mouth[..., 32:, :] = torch.rand_like(other_mouth[..., 32:, :])  # the mouth comes from the latents
        torch.testing.assert_close(decoder(inputs["latents"], inputs["previous"], other_mouth), shared)
    with pytest.raises(ValueError, match="needs reference pixels"):
        decoder(inputs["latents"], inputs["previous"])
    with pytest.raises(ValueError, match="takes no reference pixels"):
        TinyVAEDecoder(**layout)(**inputs)
    with pytest.raises(ValueError, match="applies to video latents"):
        TinyVAEDecoder(latents="image", frames_per_latent=1, reference=True)
    with pytest.raises(ValueError, match="block: one of resnet, plain"):
        TinyVAEDecoder(block="dense")


def _random_output(decoder: TinyVAEDecoder) -> TinyVAEDecoder:
    """The decoder with a random `conv_out` (a reference decoder's starts at zero: its output ignores the latents)."""
    torch.nn.init.normal_(decoder.conv_out.weight, std=0.1)
    return decoder


@pytest.mark.parametrize("layout", [SMALL_DECODER, SHUFFLED_DECODER, FAST_DECODER],
                         ids=["resnet", "resnet-shuffled", "plain-shuffled"])
def test_decode_matches_the_forward_and_round_trips_through_save_and_load(layout, tmp_path):
    decoder = _random_output(TinyVAEDecoder(**layout, reference=True)).eval()
    inputs = decoder.example_inputs(batch_size=3, height=64, width=64)
    with torch.no_grad():
        expected = decoder(inputs["latents"], inputs["previous"], inputs["reference"][:1]).flatten(0, 1)
    got = decoder.decode(inputs["latents"], inputs["previous"], inputs["reference"][:1], batch_size=2)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)  # channels-last sums in another order
    assert all(p.is_contiguous() for p in decoder.parameters())
    decoder.save_pretrained(tmp_path)  # safetensors refuses non-contiguous weights
    again = TinyVAEDecoder.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(again(inputs["latents"], inputs["previous"], inputs["reference"][:1]).flatten(0, 1),
                                   expected, rtol=0, atol=0)


def test_a_decoder_saved_before_the_layout_options_loads_unchanged(tmp_path):
    decoder = _random_output(TinyVAEDecoder(**SMALL_DECODER, reference=True)).eval()
    decoder.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    del config["block"], config["output_shuffle"]  # as written before they existed
    (tmp_path / "config.json").write_text(json.dumps(config))
    old = TinyVAEDecoder.from_pretrained(tmp_path).eval()
    assert old.config.block == "resnet" and not old.config.output_shuffle
    inputs = decoder.example_inputs(batch_size=2, height=64, width=64)
    with torch.no_grad():
        torch.testing.assert_close(old(**inputs), decoder(**inputs), rtol=0, atol=0)


@pytest.mark.parametrize("model", [
    LipSyncStudent(channels=32, mid_blocks=1, audio_channels=32, audio_dim=32),
    TinyVAEDecoder(**SMALL_DECODER),
    _random_output(TinyVAEDecoder(**SMALL_DECODER, reference=True)),
    _random_output(TinyVAEDecoder(**SHUFFLED_DECODER, reference=True)),
    _random_output(TinyVAEDecoder(**FAST_DECODER, reference=True))],
    ids=["lipsync", "decoder", "reference-decoder", "shuffled-reference-decoder", "plain-shuffled-reference-decoder"])
def test_students_export_to_onnx_with_static_shapes(model, tmp_path):
    import onnxruntime as ort

    model.eval()
    inputs = model.example_inputs(batch_size=2, height=64, width=64)
    torch.onnx.export(model, (), tmp_path / "m.onnx", kwargs=inputs, dynamo=True, verbose=False)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    [out] = session.run(None, {k: v.numpy() for k, v in inputs.items()})
    with torch.no_grad():
        np.testing.assert_allclose(out, model(**inputs).numpy(), rtol=1e-4, atol=1e-4)
