"""How much tier A's zero-lag correlation survives small, lip-sync-free changes to a reference's own frames.

python scripts/tier_a_sensitivity.py runs/dmd-demo/02-heldout   (a reference artifact; needs .venv-landmarks)

Each row scores the reference's frames after one change (resampled to half size and back, or pixel noise) against
the frames themselves, pooled over its clips as the evaluate stage pools them: how far r0 falls under changes that
leave the mouth's timing alone, a guide to how close to the teacher's pixels a model must come (not a bound: other
errors of the same size may cost more or less).
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


def noisy(sigma: float):
    """A change adding Gaussian noise of `sigma` grey levels to uint8 frames, fresh for each clip (seeded)."""
    rng = np.random.default_rng(0)
    return lambda frames: np.clip(frames + rng.normal(0.0, sigma, frames.shape), 0, 255).round().astype(np.uint8)


def changes() -> dict:
    return {"none": lambda f: f, "half size and back, bicubic": lambda f: resampled(f, "bicubic"),
            "half size and back, bilinear": lambda f: resampled(f, "bilinear"),
            **{f"noise, sigma {sigma} grey levels": noisy(sigma) for sigma in (2, 4, 8)}}


def row(name: str, pooled: dict) -> str:
    if pooled["status"] != "ok":
        return f"{name:32} {pooled['status']}"
    gain = pooled["articulation"]["gain"]
    return (f"{name:32} {pooled['timing']['zero_lag_corr']:6.3f} {'-' if gain is None else f'{gain:.3f}':>6} "
            f"{pooled['fidelity']['frame_psnr']:6.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", help="a reference artifact (e.g. runs/dmd-demo/02-heldout)")
    args = parser.parse_args()
    reference = ReferenceArtifact(args.reference, EvalContext())
    frames = [reference.teacher(i)["frames"] for i in range(len(reference))]
    print(f"{len(frames)} clips of {args.reference}, {frames[0].shape[2]}x{frames[0].shape[1]} px")
    print(f"{'change':32} {'r0':>6} {'gain':>6} {'PSNR':>6}")
    with LandmarkDetector() as detector:
        for name, change in changes().items():
            print(row(name, pool_tier_a([tier_a_clip(change(f), f, detector) for f in frames])))


if __name__ == "__main__":
    main()
