"""The SyncNet scoring protocol (Chung & Zisserman 2016; `calc_pdist` + `evaluate` in joonson/syncnet_python).

Video window i is compared with audio window i - o for every offset o in -max_offset..+max_offset; the
distances are averaged over windows, then LSE-D = the minimum mean distance, LSE-C = median - minimum and the
AV offset = the argmin. Sign convention of `compress.data.faults`: a positive offset means the video is late
(frame t shows the mouth of t - o). LSE-C / LSE-D are taken at the best offset, so a constant lag leaves them
(nearly) unchanged: always report and gate the offset on its own.
"""

from __future__ import annotations

from typing import Literal

import torch

from compress.errors import UserInputError

MAX_OFFSET = 15


def offset_distances(video: torch.Tensor, audio: torch.Tensor, max_offset: int = MAX_OFFSET,
                     padding: Literal["zeros", "valid"] = "zeros") -> torch.Tensor:
    """Mean distance per offset [2 * max_offset + 1] between embeddings video [N, D] and audio [N, D].

    padding "zeros": audio past either end is a zero vector and every window counts (syncnet_python);
    "valid": each offset averages only the pairs that exist, and offsets where fewer than half the windows
    overlap are NaN (left out of the minimum and the median).
    """
    if video.ndim != 2 or video.shape != audio.shape:
        raise UserInputError(f"embeddings: expected video and audio of one shape [N, D], got "
                             f"{list(video.shape)} and {list(audio.shape)}")
    count = len(video)
    if count < 1:
        raise UserInputError("no sync windows: the clip is shorter than one window")
    pad = audio.new_zeros(max_offset, audio.shape[1])
    padded = torch.cat([pad, audio, pad])
    offsets = torch.arange(-max_offset, max_offset + 1)
    index = torch.arange(count)[:, None] - offsets[None] + max_offset  # [N, offsets] into `padded`
    dist = torch.linalg.vector_norm(video[:, None].double() - padded[index].double(), dim=-1)
    if padding == "zeros":
        return dist.mean(0)
    valid = ((index >= max_offset) & (index < max_offset + count)).double()
    pairs = valid.sum(0)
    mean = (dist * valid).sum(0) / pairs.clamp_min(1)
    return mean.masked_fill(pairs < max(count / 2, 1), float("nan"))


def sync_scores(video: torch.Tensor, audio: torch.Tensor, max_offset: int = MAX_OFFSET,
                padding: Literal["zeros", "valid"] = "zeros") -> dict:
    """{lse_d, lse_c, av_offset, offsets, distances, windows} of one clip's window embeddings."""
    mean = offset_distances(video, audio, max_offset, padding)
    best = int(torch.argmin(mean.nan_to_num(float("inf"))))
    lse_d = float(mean[best])
    # the lower middle value for an even count, as torch.median in syncnet_python (31 offsets: the middle one)
    return {"lse_d": lse_d, "lse_c": float(torch.nanmedian(mean)) - lse_d, "av_offset": best - max_offset,
            "offsets": list(range(-max_offset, max_offset + 1)),
            "distances": [None if torch.isnan(d) else float(d) for d in mean], "windows": len(video)}
