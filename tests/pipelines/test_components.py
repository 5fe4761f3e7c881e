"""Tiny components: build, run, VAE shapes, scheduler maths, save / load round trip, clear loader errors."""

import numpy as np
import pytest
import torch

from compress.errors import UserInputError
from compress.pipelines import ByteTokenizer, S2VComponents
from compress.pipelines.audio import audio_features


def test_tiny_components_match_the_dit(components):
    cfg = components.dit.config
    assert components.text_encoder.config.d_model == cfg.text_dim
    assert components.audio_encoder.config.hidden_size == cfg.audio_dim
    assert components.audio_encoder.config.num_hidden_layers + 1 == cfg.num_audio_layers
    assert components.vae.config.z_dim == cfg.in_channels


def test_text_embeddings_cut_padding_and_are_deterministic(components):
    short = components.encode_text("  hi \n there ")
    assert short.shape == (1, len("hi there") + 1, components.dit.config.text_dim)  # bytes + eos
    assert torch.equal(short, components.encode_text("hi there"))
    assert components.encode_text("x" * 100).shape[1] == components.dit.config.text_len
    ids = ByteTokenizer()(["ab"], max_length=4)["input_ids"]
    assert ids.tolist() == [[ord("a") + 3, ord("b") + 3, 1, 0]]


def test_audio_features_at_the_video_rate(components, speech):
    cfg = components.dit.config
    feats = audio_features(components.audio_encoder, speech, fps=16, num_frames=12)
    assert feats.shape == (cfg.num_audio_layers, cfg.audio_dim, 12)
    assert feats[..., :7].abs().sum(dim=(0, 1)).min() > 0  # 0.5 s of audio covers 8 frames at 16 fps
    assert torch.count_nonzero(feats[..., 8:]) == 0  # past the end: zeros, as upstream


@pytest.mark.parametrize(("frames", "latents"), [(1, 1), (5, 2), (8, 2)])
def test_vae_is_causal_with_stride_4x8x8(pipe, frames, latents):
    pixels = torch.rand(1, 3, frames, 64, 64) * 2 - 1
    z = pipe.encode_video(pixels)
    assert z.shape == (1, 16, latents, 8, 8)
    video = pipe.decode_latents(z)
    assert video.shape == (1, 3, 1 + 4 * (latents - 1), 64, 64)
    assert video.min() >= -1 and video.max() <= 1


def test_scheduler_follows_upstream_sigmas(pipe):
    scheduler = pipe._scheduler(shift=3.0, num_inference_steps=40)
    s = np.linspace(1 - 1 / 1000, 0, 41)[:-1]
    shifted = 3 * s / (1 + 2 * s)
    np.testing.assert_allclose(scheduler.sigmas[:-1].numpy(), shifted, rtol=1e-6)
    assert scheduler.sigmas[-1] == 0
    assert scheduler.timesteps.tolist() == (shifted * 1000).astype(np.int64).tolist()


def test_save_and_load_from_dirs(components, tmp_path, speech):
    dirs = components.save(tmp_path)
    loaded = S2VComponents.from_dirs(dirs["dit"], dirs["vae"], dirs["text_encoder"], dirs["audio_encoder"])
    assert isinstance(loaded.tokenizer, ByteTokenizer)
    assert torch.equal(loaded.encode_text("a person talking"), components.encode_text("a person talking"))
    assert torch.equal(audio_features(loaded.audio_encoder, speech, 16, 8), audio_features(components.audio_encoder,
                                                                                         speech, 16, 8))
    for name in ("dit", "vae"):
        theirs = getattr(loaded, name).state_dict()
        assert all(torch.equal(v, theirs[k]) for k, v in getattr(components, name).state_dict().items())


def test_release_pth_files_give_a_conversion_hint(components, tmp_path):
    dirs = components.save(tmp_path)
    pth = tmp_path / "Wan2.1_VAE.pth"
    pth.write_bytes(b"")
    with pytest.raises(UserInputError, match="convert_wan_to_diffusers"):
        S2VComponents.from_dirs(dirs["dit"], pth, dirs["text_encoder"], dirs["audio_encoder"])
    with pytest.raises(UserInputError, match="text_encoder"):
        S2VComponents.from_dirs(dirs["dit"], dirs["vae"], tmp_path / "missing", dirs["audio_encoder"])
