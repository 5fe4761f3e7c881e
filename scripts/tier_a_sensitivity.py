"""How much tier A's zero-lag correlation survives small, lip-sync-free changes to a reference's own frames.

python scripts/tier_a_sensitivity.py runs/dmd-demo/02-heldout   (a reference artifact; needs .venv-landmarks)

Each row scores the reference's frames after one change (resampled to half size and back, or pixel noise) against
the frames themselves, pooled over its clips as the evaluate stage pools them: a floor on what any model whose
frames differ from the teacher's by as much can reach, whatever its mouth timing.
"""

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from compress.evaluate.generate import EvalContext
from compress.evaluate.tier_a import pool_tier_a, tier_a_clip
from compress.face.landmarks import LandmarkDetector
from compress.reference.artifact import ReferenceArtifact


def resampled(frames: np.ndarray, mode: str) -> np.ndarray:
    """uint8 [T, H, W, 3] averaged down to half size, then back up with `mode` interpolation."""
    x = torch.tensor(frames).permute(0, 3, 1, 2).float()
    half = F.interpolate(x, scale_factor=0.5, mode="area")
    up = F.interpolate(half, size=x.shape[-2:], mode=mode, align_corners=False)
    return up.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()


def noisy(frames: np.ndarray, sigma: float) -> np.ndarray:
    """uint8 frames plus Gaussian noise of `sigma` grey levels (seeded)."""
    noise = np.random.default_rng(0).normal(0.0, sigma, frames.shape)
    return np.clip(frames + noise, 0, 255).round().astype(np.uint8)


CHANGES = {"none": lambda f: f, "half size and back, bicubic": lambda f: resampled(f, "bicubic"),
           "half size and back, bilinear": lambda f: resampled(f, "bilinear"),
           **{f"noise, sigma {s} grey levels": (lambda f, s=s: noisy(f, s)) for s in (2, 4, 8)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", help="a reference artifact (e.g. runs/dmd-demo/02-heldout)")
    args = parser.parse_args()
    reference = ReferenceArtifact(args.reference, EvalContext())
    frames = [reference.teacher(i)["frames"] for i in range(len(reference))]
    print(f"{len(frames)} clips of {args.reference}, {frames[0].shape[2]}x{frames[0].shape[1]} px")
    print(f"{'change':32} {'r0':>6} {'gain':>6} {'PSNR':>6}")
    with LandmarkDetector() as detector:
        for name, change in CHANGES.items():
            clips = [tier_a_clip(change(f), f, detector) for f in frames]
            pooled = pool_tier_a(clips)
            psnr = np.mean([c["fidelity"]["frame_psnr"] for c in clips if c["status"] == "ok"])
            print(f"{name:32} {pooled['timing']['zero_lag_corr']:6.3f} {pooled['articulation']['gain']:6.3f} "
                  f"{psnr:6.1f}")


if __name__ == "__main__":
    main()
