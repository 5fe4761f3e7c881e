"""The demo teacher's lip-sync check on held-out sentences (its model card and tests use it): generate each clip
with its own audio and with another sentence's, and measure the mouth against the true schedule."""

from __future__ import annotations

import numpy as np
import torch

from compress.data import MouthBox, build_synthetic_set, load_synthetic_set, mouth_opening_measure, render_talking_clip
from compress.models.demo import DEMO_CHUNK, DEMO_FRAMES, DEMO_SIZE
from compress.pipelines.audio import load_audio
from compress.pipelines.s2v import S2VPipeline
from compress.pipelines.video import load_image, to_uint8
from compress.utils.psnr import frame_psnr

HELDOUT_CLIPS, HELDOUT_SEED = 5, 1  # the held-out check: clips of the "heldout" sentences, set seed
HELDOUT_VIDEOS = ("own", "swapped", "reconstructed", "chunk_held")  # what `heldout_check` returns per clip


def lagged_correlation(measured, truth, max_lag: int = 3) -> dict[int, float]:
    """Pearson correlation of `measured[t + lag]` with `truth[t]` per lag, pooled over clips: lists of [T] series,
    each standardised per clip before pooling."""

    def z(x):
        x = np.asarray(x, np.float64)
        return (x - x.mean()) / (x.std() + 1e-9)

    out = {}
    for lag in range(-max_lag, max_lag + 1):
        a = np.concatenate([z(m)[max(lag, 0) : len(m) + min(lag, 0)] for m in measured])
        b = np.concatenate([z(t)[max(-lag, 0) : len(t) - max(lag, 0)] for t in truth])
        out[lag] = float(np.corrcoef(a, b)[0, 1])
    return out


def chunk_held_frames(face, schedule, box):
    """The VAE's whole-clip training target: `face` (uint8 [H, W, 3]) talking by `schedule` [T], with each
    chunk of a latent frame's pixel frames open by the chunk's mean; uint8 [T, H, W, 3]."""
    return render_talking_clip(face, np.repeat(np.reshape(schedule, (-1, DEMO_CHUNK)).mean(1), DEMO_CHUNK), box)


def heldout_set(folder):
    """The held-out check's input set (inputs.yaml path): sentences the teacher never heard in training."""
    return build_synthetic_set(folder, num_clips=HELDOUT_CLIPS, size=DEMO_SIZE, frames=DEMO_FRAMES,
                               seed=HELDOUT_SEED, split="heldout")


def heldout_check(components, inputs_yaml, num_inference_steps: int = 10, guidance_scale: float = 3.0) -> dict:
    """Generate every clip of a synthetic set with its own audio and with the next clip's audio (another
    sentence). Returns the videos ("own", "swapped": uint8 [T, H, W, 3] each), the true schedules ("truth"),
    the mean frame PSNR against the true frames ("psnr"), the VAE's round trip of the true frames
    ("reconstructed": what the teacher could at best draw through its VAE), the true clips redrawn with one mouth
    per latent frame ("chunk_held": `chunk_held_frames`) and the pixel mouth measure's pooled correlation with the
    truth: by lag for "own" ("pixel_correlation"), at lag 0 for the others ("pixel_swapped",
    "pixel_reconstructed", "pixel_chunk_held")."""
    clips, pipe = load_synthetic_set(inputs_yaml)["clips"], S2VPipeline(components)
    out = {key: [] for key in (*HELDOUT_VIDEOS, "truth", "psnr")}
    faces = [np.asarray(load_image(clip["image"])) for clip in clips]
    for i, (clip, neutral) in enumerate(zip(clips, faces)):
        for key, audio in (("own", clip["audio"]), ("swapped", clips[(i + 1) % len(clips)]["audio"])):
            out[key].append(pipe(neutral, load_audio(audio), clip["prompt"], num_inference_steps=num_inference_steps,
                                 guidance_scale=guidance_scale, height=DEMO_SIZE, width=DEMO_SIZE,
                                 frames_per_clip=clip["num_frames"], seed=clip["seed"]).frames)
        out["truth"].append(np.load(clip["schedule"]))
        true_frames = np.load(clip["frames"])
        out["psnr"].append(frame_psnr(out["own"][-1], true_frames))
        clip_pixels = torch.from_numpy(np.concatenate([neutral[None], true_frames])).permute(3, 0, 1, 2)
        round_trip = pipe.decode_latents(pipe.encode_video(clip_pixels[None].float() / 127.5 - 1))
        out["reconstructed"].append(to_uint8(round_trip[0, :, 1:]))  # behind the neutral face, as generated
        out["chunk_held"].append(chunk_held_frames(neutral, out["truth"][-1], MouthBox(**clip["mouth_box"])))
    pixel = {key: [mouth_opening_measure(v, face, MouthBox(**c["mouth_box"])) for v, face, c in
                   zip(out[key], faces, clips)] for key in HELDOUT_VIDEOS}
    out["pixel_correlation"] = lagged_correlation(pixel["own"], out["truth"])
    out["pixel_swapped"], out["pixel_reconstructed"], out["pixel_chunk_held"] = (
        lagged_correlation(pixel[key], out["truth"])[0] for key in ("swapped", "reconstructed", "chunk_held"))
    out["psnr"] = float(np.mean(out["psnr"]))
    return out

