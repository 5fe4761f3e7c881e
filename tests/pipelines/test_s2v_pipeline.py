"""The S2V pipeline end to end on the tiny teacher: shapes, determinism, CFG, clip continuation, errors."""

import dataclasses
import subprocess
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from compress.errors import UserInputError
from compress.models.students import TinyVAEDecoder
from compress.models.students.vae_io import decode_video
from compress.pipelines import S2VPipeline, flow_scheduler, write_video
from compress.pipelines.s2v import UPSTREAM_NEGATIVE_PROMPT, clip_noise
from compress.pipelines.sampling import euler_sigmas
from compress.pipelines.video import prepare_image, size_for_area
from tests.helpers import needs_ffmpeg

ARGS = dict(prompt="a person talking", num_inference_steps=2, frames_per_clip=8, seed=3)


class Calls(list):
    perturb: set[int] = set()


@pytest.fixture
def calls(pipe, monkeypatch):
    """Records the keyword arguments of every DiT forward; `calls.perturb` shifts predictions of chosen calls."""
    dit, forward, record = pipe.components.dit, pipe.components.dit.forward, Calls()

    def spy(hidden_states, timestep, **kwargs):
        out = forward(hidden_states, timestep, **kwargs)
        if len(record) in record.perturb:
            out.sample = out.sample + 0.5
        record.append(kwargs)
        return out

    monkeypatch.setattr(dit, "forward", spy)
    return record


@pytest.fixture(scope="module")
def baseline(pipe, face, speech):
    return pipe(face, speech, **ARGS, capture_blocks=(0, 2), capture_steps=(1,))


def test_one_clip_shapes_determinism_and_guidance(pipe, face, speech, calls, baseline):
    out = pipe(face, speech, **ARGS)
    assert out.frames.shape == (8, 64, 64, 3) and out.frames.dtype == np.uint8
    assert out.latents.shape == (1, 16, 2, 8, 8)
    assert out.audio_features.shape == (25, 32, 8)
    assert out.ref_latents.shape == (16, 1, 8, 8) and out.seeds == [3]
    assert np.array_equal(out.frames, baseline.frames)  # deterministic, and capturing blocks changes nothing

    # CFG: per step one conditional and one unconditional pass; the latter drops text and audio together
    cond, uncond = calls[0], calls[1]
    assert len(calls) == 2 * ARGS["num_inference_steps"]
    assert torch.count_nonzero(uncond["audio_features"]) == 0 and torch.count_nonzero(cond["audio_features"]) > 0
    assert torch.equal(uncond["encoder_hidden_states"], pipe.components.encode_text(UPSTREAM_NEGATIVE_PROMPT))
    assert torch.equal(uncond["ref_latents"], cond["ref_latents"]) and cond["drop_motion_frames"]

    no_cfg = pipe(face, speech, **{**ARGS, "guidance_scale": 1.0})
    assert len(calls) == 2 * 2 + 2
    assert not np.array_equal(no_cfg.frames, out.frames)


def test_capture_block_outputs(pipe, baseline):
    assert {b: tuple(t.shape) for b, t in baseline.block_outputs.items()} == {0: (1, 1, 32, 64), 2: (1, 1, 32, 64)}
    assert not any(block._forward_hooks for block in pipe.components.dit.blocks)


def test_captured_block_outputs_are_copies(pipe, face, speech):
    """The lean forward updates the residual stream in place without autograd: a captured block output must be
    a copy, not a view later blocks overwrite. Compared with clones taken by independent hooks."""
    blocks, clones = pipe.components.dit.blocks, {0: [], 1: []}
    handles = [blocks[b].register_forward_hook(lambda m, a, out, b=b: clones[b].append(out[0].clone()))
               for b in clones]
    try:
        out = pipe(face, speech, **ARGS, capture_blocks=(0, 1))
    finally:
        for handle in handles:
            handle.remove()
    steps = ARGS["num_inference_steps"]
    for b in clones:
        assert len(clones[b]) == 2 * steps  # conditional then unconditional pass per step
        captured = out.block_outputs[b][0]
        assert captured.shape[0] == steps
        for step in range(steps):  # the recorder keeps the conditional pass (the first of each step)
            expected = clones[b][2 * step][: captured.shape[1]].float()
            torch.testing.assert_close(captured[step], expected, rtol=0, atol=0)
    assert not torch.equal(out.block_outputs[0], out.block_outputs[1])


def test_second_clip_continues_from_the_first(pipe, face, speech, calls):
    args = {**ARGS, "frames_per_clip": 4, "motion_frames": 5, "output_type": "pt"}
    out = pipe(face, speech, **args)  # 0.5 s of audio = 8 frames = 2 clips of 4
    assert out.frames.shape == (3, 8, 64, 64) and out.seeds == [3, 4]
    steps = 2 * ARGS["num_inference_steps"]
    assert all(c["drop_motion_frames"] for c in calls[:steps])
    assert not any(c["drop_motion_frames"] for c in calls[steps:])
    # clip 1 is conditioned on the encoding of the last 5 pixel frames: 1 empty frame + clip 0
    history = torch.cat([torch.zeros(1, 3, 1, 64, 64), out.frames[None, :, :4]], dim=2)
    assert torch.allclose(calls[steps]["motion_latents"][0], pipe.encode_video(history)[0], atol=1e-5)
    assert torch.equal(out.motion_latents[1], calls[steps]["motion_latents"][0])

    calls.clear()
    calls.perturb = set(range(steps))  # change clip 0 only
    changed = pipe(face, speech, **args)
    assert not torch.equal(changed.frames[:, :4], out.frames[:, :4])
    assert torch.equal(changed.audio_features, out.audio_features)
    assert not torch.equal(changed.latents[1], out.latents[1])


# 2 clips of 1 latent, 1 clip of 2 latents; a decoder against the reference image
@pytest.mark.parametrize("frames_per_clip,reference", [(4, False), (8, False), (4, True)])
def test_a_distilled_decoder_decodes_each_latent_behind_the_one_before_it(pipe, face, speech, frames_per_clip,
                                                                         reference):
    args = {**ARGS, "frames_per_clip": frames_per_clip, "motion_frames": 5, "output_type": "pt"}
    decoder = TinyVAEDecoder(channels=(32, 16, 16, 8), latent_blocks=1, reference=reference).eval()
    torch.nn.init.normal_(decoder.conv_out.weight, std=0.1)  # not the reference decoder's zero start
    vae, fast = pipe(face, speech, **args), S2VPipeline(pipe.components, decoder)(face, speech, **args)
    assert torch.equal(fast.latents[0], vae.latents[0])  # clip 0 is sampled alike, decoded apart
    # behind each clip's first latent: the reference latent (clip 0), the last motion latent (later clips)
    context = [fast.ref_latents[:, -1:]] + [motion[:, -1:] for motion in fast.motion_latents[1:]]
    previous = torch.cat([torch.cat([c, clip[:, :-1]], dim=1) for c, clip in zip(context, fast.latents)], dim=1)
    # the reference image as the VAE decodes the reference latent, for every clip
    ref_pixels = decode_video(pipe.components.vae, fast.ref_latents[None])[:, :, 0] if reference else None
    with torch.no_grad():
        expected = decoder(fast.latents.transpose(1, 2).flatten(0, 1), previous.transpose(0, 1), ref_pixels)
    expected = expected.clamp(-1, 1).flatten(0, 1).transpose(0, 1)
    assert fast.frames.shape == vae.frames.shape == (3, 8, 64, 64)
    assert torch.allclose(fast.frames, expected, atol=1e-4)
    with pytest.raises(UserInputError, match="the S2V pipeline emits the teacher's video latents"):
        S2VPipeline(pipe.components, TinyVAEDecoder(latents="image", frames_per_latent=1))


def test_sides_that_are_multiples_of_16_only(pipe, face, speech):
    """96x96 (12x12 latents): the 4x frame-pack bucket covers the first 8x8 latents; a continued clip still runs."""
    out = pipe(face, speech, **{**ARGS, "frames_per_clip": 4, "motion_frames": 5}, height=96, width=96)
    assert out.frames.shape == (8, 96, 96, 3) and out.latents.shape == (2, 16, 1, 12, 12)
    packer = pipe.components.dit.frame_packer  # motion tokens: 1 x 6 x 6, 1 x 3 x 3, 4 x 1 x 1, each with a position
    assert packer(torch.zeros(1, 16, 19, 12, 12)).shape[1] == len(packer.positions(12, 12)) == 36 + 9 + 4
    big_face = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    assert pipe(big_face, speech, **ARGS).frames.shape[1:3] == (64, 64)  # upstream's multiple for the fitted size
    assert pipe(big_face, speech, **ARGS, size_multiple=32).frames.shape[1:3] == (96, 96)


def test_euler_scheduler(pipe, face, speech, baseline):
    euler = S2VPipeline(dataclasses.replace(pipe.components, scheduler=flow_scheduler("euler")))
    out = euler(face, speech, **ARGS)
    assert out.frames.shape == (8, 64, 64, 3)
    assert not np.array_equal(out.frames, baseline.frames)


def test_audio_too_short_and_bad_sizes(pipe, face, speech):
    with pytest.raises(ValueError, match="audio too short"):
        pipe(face, speech[:500], **ARGS)
    with pytest.raises(ValueError, match="audio too short for num_clips=3"):
        pipe(face, speech, **ARGS, num_clips=3)
    with pytest.raises(ValueError, match="multiples of 16, got 56x64"):
        pipe(face, speech, **ARGS, height=56, width=64)
    with pytest.raises(ValueError, match="size_multiple must be a positive multiple of 16, got 24"):
        pipe(face, speech, **ARGS, size_multiple=24)
    with pytest.raises(ValueError, match="multiple of 4"):
        pipe(face, speech, **{**ARGS, "frames_per_clip": 6})


def test_size_and_image_preparation():
    assert size_for_area(64, 64, 64 * 64) == (64, 64)
    assert size_for_area(480, 832, 480 * 832) == (448, 832)  # upstream pads up to 64, then shrinks to fit
    h, w = size_for_area(1080, 1920, 480 * 832)
    assert h % 64 == 0 and w % 64 == 0 and h * w <= 480 * 832
    wide = np.zeros((50, 100, 3), np.uint8)
    wide[:, 50:] = 255
    from PIL import Image

    pixels = prepare_image(Image.fromarray(wide), 64, 64)
    assert pixels.shape == (1, 3, 1, 64, 64) and pixels.min() == -1 and pixels.max() == 1


def test_write_video_falls_back_to_png_and_wav(tmp_path, speech, monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)
    frames = np.zeros((3, 64, 64, 3), np.uint8)
    written = write_video(frames, speech, tmp_path / "out.mp4")
    assert written.format == "png+wav" and written.path == tmp_path / "out"
    assert sorted(p.name for p in written.path.iterdir()) == ["audio.wav", *(f"frame_{i:05d}.png" for i in range(3))]


@needs_ffmpeg
def test_write_video_writes_mp4_with_the_audio_track(tmp_path, speech):
    frames = np.random.default_rng(0).integers(0, 255, (16, 64, 64, 3), dtype=np.uint8)
    written = write_video(frames, speech, tmp_path / "out.mp4")
    assert written.format == "mp4" and written.path.stat().st_size > 0
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0",
                            str(written.path)], capture_output=True, text=True, check=True)
    assert sorted(probe.stdout.split()) == ["audio", "video"]


def test_euler_sampler_steps_through_liveavatars_sigmas(pipe, face, speech, monkeypatch):
    """sampler="euler", 4 steps, guidance 0: one DiT forward per step at t = 1000 sigma, and x <- x + (sigma_next -
    sigma) v: with a constant velocity v the clip ends at noise - v (the sigmas fall from 1 to 0)."""
    timesteps, velocity = [], 0.25
    monkeypatch.setattr(pipe.components.dit, "forward", lambda hidden_states, timestep, **kwargs: (
        timesteps.append(timestep.item()), SimpleNamespace(sample=torch.full_like(hidden_states, velocity)))[1])
    out = pipe(face, speech, **{**ARGS, "num_inference_steps": 4, "guidance_scale": 0.0}, sampler="euler")
    torch.testing.assert_close(torch.tensor(timesteps), euler_sigmas(4)[:-1] * 1000)
    assert [round(t) for t in timesteps] == [1000, 858, 602, 9]  # LiveAvatar's 4-step LoRA timesteps
    noise = clip_noise(ARGS["seed"], out.latents[0][None].shape)[0]
    torch.testing.assert_close(out.latents[0], noise - velocity)


def test_euler_sampler_on_the_real_dit_and_bad_sampler(pipe, face, speech, calls, baseline):
    out = pipe(face, speech, **{**ARGS, "guidance_scale": 0.0}, sampler="euler")
    assert len(calls) == ARGS["num_inference_steps"] and out.frames.shape == baseline.frames.shape
    assert torch.isfinite(out.latents).all() and not torch.equal(out.latents, baseline.latents)
    with_cfg = pipe(face, speech, **ARGS, sampler="euler")  # guidance as given: two forwards per step above 1
    assert len(calls) == 3 * ARGS["num_inference_steps"] and not torch.equal(with_cfg.latents, out.latents)
    with pytest.raises(ValueError, match="sampler must be one of unipc, euler, got 'ddim'"):
        pipe(face, speech, **ARGS, sampler="ddim")
