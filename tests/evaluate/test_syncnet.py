"""Tier C mechanics with random weights: the published layer layout, weight conversion, strict loading, the
published evaluation loop reproduced, and the report without weights."""

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from compress.errors import UserInputError
from compress.evaluate.sync import NO_WEIGHTS, SyncNet, compare_to_teacher, load_syncnet, tier_c_clip
from compress.evaluate.sync.syncnet import KEY_PREFIXES, convert_original_state
from compress.evaluate.sync.tiers import to_syncnet_rate
from compress.face.sync_clip import SyncClip
from tests.helpers import REPO, load_script

SCRIPT = REPO / "scripts" / "convert_syncnet_weights.py"
CONV_BN = (0, 1), (4, 5), (8, 9), (11, 12), (14, 15), (18, 19)  # (conv, batch norm) indices in both CNNs
ORIGINAL = {v: k for k, v in KEY_PREFIXES.items()}


def original_layout(net: SyncNet) -> dict[str, torch.Tensor]:
    """The net's tensors under syncnet_python's names (what `syncnet_v2.model` holds)."""
    state = {}
    for key, value in net.state_dict().items():
        prefix, _, rest = key.partition(".")
        state[f"{ORIGINAL[prefix]}.{rest}"] = value.clone()
    return state


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    model = SyncNet().eval()
    with torch.no_grad():  # batch-norm statistics away from the defaults, so that loading them is checked
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 2.0)
    return model


def test_layer_layout_is_the_published_one(net):
    keys = {k for k in original_layout(net) if not k.endswith("num_batches_tracked")}
    expected = set()
    for cnn in ("netcnnaud", "netcnnlip"):
        for conv, bn in CONV_BN:
            expected |= {f"{cnn}.{conv}.weight", f"{cnn}.{conv}.bias"}
            expected |= {f"{cnn}.{bn}.{p}" for p in ("weight", "bias", "running_mean", "running_var")}
    for fc in ("netfcaud", "netfclip"):
        expected |= {f"{fc}.{i}.{p}" for i in (0, 3) for p in ("weight", "bias")}
        expected |= {f"{fc}.1.{p}" for p in ("weight", "bias", "running_mean", "running_var")}
    assert keys == expected
    state = original_layout(net)
    assert state["netcnnlip.0.weight"].shape == (96, 3, 5, 7, 7)
    assert state["netcnnaud.18.weight"].shape == (512, 256, 5, 4)
    assert state["netfclip.3.weight"].shape == (1024, 512)
    with torch.no_grad():
        assert net.embed_lip(torch.zeros(1, 3, 5, 224, 224)).shape == net.embed_audio(torch.zeros(1, 1, 13, 20)).shape


def test_conversion_script_round_trip(net, tmp_path):
    original = {f"__S__.{k}" if i % 2 else k: v for i, (k, v) in enumerate(original_layout(net).items())}
    torch.save(original, tmp_path / "syncnet_v2.model")
    command = [sys.executable, str(SCRIPT), str(tmp_path / "syncnet_v2.model"), str(tmp_path / "s.safetensors")]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    loaded = load_syncnet(tmp_path / "s.safetensors")
    for key, value in net.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(loaded.state_dict()[key], value), key
    x = torch.randn(2, 1, 13, 20)
    with torch.no_grad():
        assert torch.equal(loaded.embed_audio(x), net.embed_audio(x))


def test_wrong_keys_are_listed_by_name(net, tmp_path, capsys):
    state = original_layout(net)
    del state["netcnnlip.0.weight"], state["netfcaud.1.running_var"]
    state["netfcaud.9.weight"] = torch.zeros(3)
    state["netfclip.3.bias"] = torch.zeros(7)
    with pytest.raises(UserInputError) as error:
        convert_original_state(state, "syncnet_v2.model")
    message = str(error.value)
    assert "syncnet_v2.model" in message
    assert "missing keys (2): audio_fc.1.running_var, lip_cnn.0.weight" in message
    assert "unexpected keys (1): audio_fc.9.weight" in message
    assert "mis-shaped keys (1): lip_fc.3.bias [7] (expected [1024])" in message
    torch.save(state, tmp_path / "bad.model")
    assert load_script("convert_syncnet_weights").main([str(tmp_path / "bad.model"), str(tmp_path / "out.safetensors")]) == 2
    assert "missing keys (2)" in capsys.readouterr().err and not (tmp_path / "out.safetensors").exists()


def test_a_pickle_that_needs_code_is_refused(tmp_path, capsys):
    torch.save(SyncNet(embed_dim=4), tmp_path / "module.model")  # a whole module, not a state dict
    assert load_script("convert_syncnet_weights").main([str(tmp_path / "module.model"), str(tmp_path / "out.safetensors")]) == 2
    assert "not a plain torch state dict readable with weights_only=True" in capsys.readouterr().err


def test_loading_refuses_missing_and_unreadable_files(tmp_path):
    with pytest.raises(UserInputError, match="no such file.*convert_syncnet_weights.py"):
        load_syncnet(tmp_path / "none.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(UserInputError, match="not a readable safetensors file"):
        load_syncnet(tmp_path / "junk.safetensors")


def test_without_weights_tier_c_is_not_computed():
    clip = SyncClip(np.zeros((12, 32, 32, 3), np.uint8), np.zeros(12_000, np.float32), 16, np.zeros((12, 4), int))
    report = tier_c_clip(clip, None)
    assert report == {"status": NO_WEIGHTS, "tier": "C"} and NO_WEIGHTS == "not computed: no SyncNet weights given"
    assert compare_to_teacher(report, report) == {"tier": "C", "status": NO_WEIGHTS}
    with pytest.raises(ValueError, match="cannot compare tier B with tier C"):
        compare_to_teacher({"tier": "B", "status": "computed"}, report)


def test_clips_are_resampled_to_25_fps():
    clip = SyncClip(np.arange(8, dtype=np.uint8)[:, None, None, None].repeat(3, 3), np.zeros(8000), 16,
                    np.zeros((8, 4), int))
    assert to_syncnet_rate(clip).frames[:, 0, 0, 0].tolist() == [0, 0, 1, 1, 2, 3, 3, 4, 5, 5, 6, 7]


def published_evaluate(net, frames_bgr, audio_int16, reference_mfcc, vshift=15):
    """SyncNetInstance.evaluate of joonson/syncnet_python on 224x224 BGR frames at 25 fps, as published, with its
    MFCC `reference_mfcc` (python_speech_features.mfcc): (mean distance per vshift - offset, confidence, minimum
    distance)."""
    im = torch.from_numpy(frames_bgr.astype(float)).float().permute(3, 0, 1, 2)[None]  # 1 x 3 x T x H x W
    cc = reference_mfcc(audio_int16, 16000).T
    cct = torch.from_numpy(cc[None, None].astype(float)).float()
    lastframe = min(len(frames_bgr), math.floor(len(audio_int16) / 640)) - 5
    with torch.no_grad():
        im_feat = net.embed_lip(torch.cat([im[:, :, v:v + 5] for v in range(lastframe)]))
        cc_feat = net.embed_audio(torch.cat([cct[:, :, :, v * 4:v * 4 + 20] for v in range(lastframe)]))
    padded = torch.nn.functional.pad(cc_feat, (0, 0, vshift, vshift))
    dists = [torch.nn.functional.pairwise_distance(im_feat[[i]].repeat(2 * vshift + 1, 1), padded[i:i + 2 * vshift + 1])
             for i in range(len(im_feat))]
    mdist = torch.stack(dists, 1).mean(1)
    minval = mdist.min()
    return mdist, float(torch.median(mdist) - minval), float(minval)


def test_tier_c_reproduces_the_published_evaluation(net, python_speech_features):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (12, 224, 224, 3), dtype=np.uint8)  # 25 fps, already face crops
    audio = rng.normal(0, 0.1, 12 * 640).astype(np.float32)
    report = tier_c_clip(SyncClip(frames, audio, 25, np.zeros((12, 4), int)), net)
    assert report["status"] == "computed" and report["tier"] == "C" and report["offset_fps"] == 25
    assert report["windows"] == 7 and len(report["distances"]) == 31
    pcm = np.round(np.clip(audio.astype(np.float64) * 32768, -32768, 32767))
    mdist, conf, dist = published_evaluate(net, frames[..., ::-1], pcm, python_speech_features.mfcc)
    # the published list is indexed by vshift - offset, ours by offset; random weights tie the offsets where
    # every pair is zero padding, so the argmin is checked as "a minimum of the published curve"
    np.testing.assert_allclose(report["distances"], mdist.flip(0).numpy(), rtol=1e-4)
    assert report["distances"][report["av_offset"] + 15] == pytest.approx(dist, rel=1e-4)
    assert report["av_offset_s"] == report["av_offset"] / 25
    assert report["lse_c"] == pytest.approx(conf, rel=1e-4, abs=1e-4)
    assert report["lse_d"] == pytest.approx(dist, rel=1e-4)
