"""The SyncNet scoring protocol: offsets, LSE-C / LSE-D."""

import numpy as np
import pytest
import torch

from compress.data.faults import shift
from compress.errors import UserInputError
from compress.evaluate.sync.protocol import offset_distances, sync_scores


def sequence(n: int, dim: int = 16, seed: int = 0) -> torch.Tensor:
    """Smooth random embeddings [n, dim] (neighbouring windows alike, as real ones)."""
    x = torch.randn(n + 4, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return (x[:-4] + x[1:-3] + x[2:-2] + x[3:-1] + x[4:]) / 5


def lagged(lag: int, n: int = 60, noise: float = 0.0):
    """(video, audio) embeddings where video window i carries audio window i - lag (video `lag` late)."""
    base = sequence(n + 40)
    audio = base[20:20 + n]
    video = base[20 - lag:20 - lag + n] + noise * sequence(n, seed=1)
    return video, audio


def calc_pdist_reference(video, audio, vshift=15):
    """joonson/syncnet_python `calc_pdist` + `evaluate` as published: a per-window loop over zero-padded audio."""
    padded = torch.nn.functional.pad(audio, (0, 0, vshift, vshift))
    window = 2 * vshift + 1
    dists = [torch.nn.functional.pairwise_distance(video[[i], :].repeat(window, 1), padded[i:i + window, :], eps=0)
             for i in range(len(video))]
    mdist = torch.mean(torch.stack(dists, 1), 1)
    minval, minidx = torch.min(mdist, 0)
    return mdist, int(vshift - minidx), float(torch.median(mdist) - minval)


@pytest.mark.parametrize("lag", [-7, -2, 0, 1, 3, 12])
@pytest.mark.parametrize("padding", ["zeros", "valid"])
def test_offset_is_the_injected_lag(lag, padding):
    scores = sync_scores(*lagged(lag, noise=0.05), padding=padding)
    assert scores["av_offset"] == lag
    assert scores["offsets"] == list(range(-15, 16)) and len(scores["distances"]) == 31
    assert scores["lse_d"] == pytest.approx(min(d for d in scores["distances"] if d is not None))


def test_zero_padding_matches_the_published_loop():
    video, audio = lagged(3, noise=0.2)
    mdist, offset, conf = calc_pdist_reference(video.float(), audio.float())
    scores = sync_scores(video.float(), audio.float())
    # the published list is indexed by vshift - offset, ours by offset
    np.testing.assert_allclose(scores["distances"], mdist.flip(0).numpy(), rtol=1e-5)
    assert scores["av_offset"] == offset == 3
    assert scores["lse_c"] == pytest.approx(conf, rel=1e-5)
    assert scores["lse_d"] == pytest.approx(float(mdist.min()), rel=1e-6)


def test_a_constant_lag_leaves_lse_c_and_d_unchanged_but_moves_the_offset():
    in_sync, late = sync_scores(*lagged(0), padding="valid"), sync_scores(*lagged(3), padding="valid")
    assert in_sync["lse_d"] == pytest.approx(0, abs=1e-9) and late["lse_d"] == pytest.approx(0, abs=1e-9)
    assert late["lse_c"] == pytest.approx(in_sync["lse_c"], rel=0.05)
    assert (in_sync["av_offset"], late["av_offset"]) == (0, 3)


def test_sign_follows_the_fault_convention():
    """faults.shift(k) makes the video k frames late: the offset is +k (edge-repeat padding included)."""
    audio = sequence(60)
    for k in (3, -2):
        video = torch.from_numpy(shift(audio.numpy(), k))
        assert sync_scores(video, audio, padding="valid")["av_offset"] == k


def test_confidence_is_median_minus_minimum():
    scores = sync_scores(*lagged(0, noise=0.3))
    assert scores["lse_c"] == pytest.approx(float(np.median(scores["distances"])) - scores["lse_d"])
    frozen = sync_scores(sequence(60)[:1].repeat(60, 1), sequence(60))  # one video embedding for every window
    assert frozen["lse_c"] < 0.2 * scores["lse_c"]


def test_valid_padding_on_short_clips_leaves_out_offsets_without_overlap():
    video, audio = lagged(2, n=10)
    scores = sync_scores(video, audio, padding="valid")
    known = [o for o, d in zip(scores["offsets"], scores["distances"]) if d is not None]
    assert known == list(range(-5, 6)) and scores["av_offset"] == 2
    assert torch.isnan(offset_distances(video, audio, padding="valid")[0])


def test_mismatched_embeddings_are_refused():
    with pytest.raises(UserInputError, match=r"\[10, 16\] and \[9, 16\]"):
        sync_scores(sequence(10), sequence(9))
