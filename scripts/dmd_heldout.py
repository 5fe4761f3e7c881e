"""A few-step generator against the teacher on held-out clips: K-step Euler samples without guidance from the
teacher's own noise and conditioning, compared with the teacher's stored samples (its reference settings, e.g.
10 steps with CFG): latent error, frame PSNR, tier A (face landmarks, when `.venv-landmarks` exists) and DiT
time per clip (the generator's K forwards against the teacher's steps x 2 with CFG, same code, same machine).

    python scripts/dmd_heldout.py runs/dmd-demo/03-dmd --reference runs/dmd-demo/02-heldout
    python scripts/dmd_heldout.py runs/dmd-demo/00-source --reference runs/dmd-demo/02-heldout   # undistilled

Each clip is sampled with the teacher's stored motion latents (the references of the demo hold one clip per
input, where the pipeline drops them). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from compress.artifacts import Artifact
from compress.distill.dmd import guided_x0, reference_conditionings, rollout
from compress.utils.psnr import frame_psnr
from compress.evaluate.tier_a import pool_tier_a, tier_a_clip
from compress.face.landmarks import LandmarkDetector, landmark_python
from compress.pipelines.s2v import S2VPipeline
from compress.pipelines.sampling import dit_forwards, euler_sigmas
from compress.pipelines.video import to_uint8
from compress.quant import relative_error
from compress.reference import ReferenceArtifact


def teacher_dit_seconds(model, clip, steps: int, guidance: float, shift: float) -> float:
    """Wall time of `steps` Euler steps with CFG (the teacher's DiT forwards per clip)."""
    sigmas, x = euler_sigmas(steps, shift), clip.noise()
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(steps):
            x0 = guided_x0(model, x, float(sigmas[i]), clip, guidance)
            x = x0 + sigmas[i + 1] * (x - x0) / sigmas[i]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="an artifact holding the generator (or the teacher: undistilled baseline)")
    parser.add_argument("--reference", required=True, help="a held-out reference artifact of the teacher")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--shift", type=float, default=3.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    reference = ReferenceArtifact(args.reference)
    model = Artifact.open(args.model).load_model().eval()
    teacher = Artifact.open(reference.artifact.manifest["input"]["path"]).load_model().eval()
    pipe = S2VPipeline(reference.components())
    sigmas, clips = euler_sigmas(args.steps, args.shift), reference_conditionings(reference.rows)
    errors, psnrs, tier_a, times, teacher_times = [], [], [], [], []
    detector = LandmarkDetector() if landmark_python().exists() else None
    index = 0
    for row in range(len(reference.rows)):
        stored = reference.teacher(row)
        frames, latents = [], []
        for clip_index in range(reference.rows[row]["num_clips"]):
            clip = clips[index]
            index += 1
            start = time.perf_counter()
            with torch.no_grad():
                sample = rollout(model, clip.noise(), clip.cond, sigmas)
            times.append(time.perf_counter() - start)
            teacher_times.append(teacher_dit_seconds(teacher, clip, reference.config.num_inference_steps,
                                                     reference.config.guidance_scale, reference.config.shift))
            errors.append(relative_error(sample, clip.target))
            prefix = clip.cond["ref_latents"] if clip_index == 0 else clip.cond["motion_latents"]
            video = pipe.decode_latents(torch.cat([prefix, sample], dim=2))[:, :, -reference.config.frames:]
            frames.append(to_uint8(video[0]))
            latents.append(sample[0])
        frames = np.concatenate(frames)
        psnrs.append(frame_psnr(frames, stored["frames"]))
        if detector is not None:
            tier_a.append(tier_a_clip(frames, stored["frames"], detector, torch.stack(latents), stored["latents"]))
    pooled = pool_tier_a(tier_a) if tier_a else {"status": "not computed: no .venv-landmarks"}
    print(json.dumps({
        "model": args.model, "reference": args.reference, "clips": len(clips), "steps": args.steps,
        "latent_rel_error": float(np.mean(errors)), "latent_rel_errors": errors, "frame_psnr": float(np.mean(psnrs)),
        "tier_a": {k: pooled.get(k) for k in ("status", "timing", "articulation")},
        "dit_forwards": dit_forwards(args.steps, 0.0),
        "teacher_dit_forwards": dit_forwards(reference.config.num_inference_steps, reference.config.guidance_scale),
        "dit_s_per_clip": float(np.median(times)), "teacher_dit_s_per_clip": float(np.median(teacher_times)),
        "speedup": float(np.median(teacher_times) / np.median(times))}, indent=1))
    if detector is not None:
        detector.close()


if __name__ == "__main__":
    main()
