"""The `demo` preset: a tiny Wan2.2-S2V teacher trained to talk on the built-in synthetic talking-face set.

Same model class and pipeline as the 14B teacher; only the config and the shipped weights differ. The
folder `presets/demo/` holds the DiT (config.json + safetensors, loaded with `from_pretrained`) and its
non-DiT components in `S2VComponents` layout: `vae/` (a trained tiny Wan VAE), `text_encoder/` (a seeded
tiny umT5 + byte tokenizer) and `audio_encoder/` (`LogMelAudioEncoder`). Its README.md is the model card;
`scripts/train_demo_teacher.py` produced everything.
"""

from __future__ import annotations

from pathlib import Path

from .auto import Preset
from .s2v import WanS2VTransformer3DModel

DEMO_DIR = Path(__file__).resolve().parent / "presets" / "demo"
DEMO_SIZE = 96  # pixels per side it was trained at (12x12 latents)
DEMO_FRAMES = 48  # frames per training clip (3 s at 16 fps)
HELDOUT_CLIPS, HELDOUT_SEED = 5, 1  # the held-out check: clips of the "heldout" sentences, set seed
HELDOUT_VIDEOS = ("own", "swapped", "reconstructed", "chunk_held")  # what `heldout_check` returns per clip

# dim 128 (4 heads x 32), 4 blocks each followed by an audio injector; audio_dim = 80 log-mel bins
DEMO_CONFIG = dict(
    num_attention_heads=4, attention_head_dim=32, in_channels=16, out_channels=16, pose_channels=16,
    text_dim=48, text_len=16, freq_dim=64, ffn_dim=384, num_layers=4, eps=1e-6,
    audio_dim=80, num_audio_layers=25, num_audio_tokens=4, audio_inject_layers=[0, 1, 2, 3],
)

# its VAE: Wan2.2-style (2x2 patchify, residual down / up blocks with space-to-channel shortcuts), spatial stride 8
# (patch 2 x two downsamples), causal temporal stride 4, z_dim 16 like the 14B's Wan2.1 VAE; it learns sharp 96x96
# faces in minutes on a CPU, where the Wan2.1 layout of `tiny_vae` stays blurred
DEMO_VAE_CONFIG = dict(
    base_dim=16, z_dim=16, dim_mult=[1, 2, 2], num_res_blocks=1, attn_scales=[], temperal_downsample=[True, True],
    is_residual=True, patch_size=2, in_channels=12, out_channels=12,
)
DEMO_CHUNK = 2 ** sum(DEMO_VAE_CONFIG["temperal_downsample"])  # pixel frames per latent frame

DEMO_PRESET = Preset("demo", WanS2VTransformer3DModel, DEMO_CONFIG, weights_dir=DEMO_DIR,
                     description="Wan2.2-S2V DiT in miniature, trained to talk on the synthetic talking-face set "
                                 f"({DEMO_SIZE}x{DEMO_SIZE})")


# ---- the lip-sync check of the shipped teacher (tests and the model card use it) ----------------------------

def lagged_correlation(measured, truth, max_lag: int = 3) -> dict[int, float]:
    """Pearson correlation of `measured[t + lag]` with `truth[t]` per lag, pooled over clips: lists of [T] series,
    each standardised per clip before pooling."""
    import numpy as np

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
    import numpy as np

    from compress.data import render_talking_clip

    return render_talking_clip(face, np.repeat(np.reshape(schedule, (-1, DEMO_CHUNK)).mean(1), DEMO_CHUNK), box)


def heldout_set(folder):
    """The held-out check's input set (inputs.yaml path): sentences the teacher never heard in training."""
    from compress.data import build_synthetic_set

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
    import numpy as np
    import torch

    from compress.data import MouthBox, load_synthetic_set, mouth_opening_measure
    from compress.pipelines.audio import load_audio
    from compress.pipelines.s2v import S2VPipeline
    from compress.pipelines.video import load_image, to_uint8
    from compress.utils.psnr import frame_psnr

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

