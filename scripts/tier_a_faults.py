"""Tier-A lip-sync metrics on every injected fault of the built-in synthetic set (pooled over clips).

python scripts/tier_a_faults.py [--size 96] [--clips 5]   (needs .venv-landmarks: scripts/setup_landmarks.sh)
"""

import argparse
import tempfile

import numpy as np

from compress.data import DEFAULT_FAULTS, build_synthetic_set, load_synthetic_set
from compress.evaluate.tier_a import check_gates, pool_tier_a, tier_a_clip
from compress.face.landmarks import LandmarkDetector


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--clips", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        meta = load_synthetic_set(build_synthetic_set(tmp, num_clips=args.clips, size=args.size,
                                                      faults=DEFAULT_FAULTS, mp4=False))
        results = {}
        with LandmarkDetector() as detector:
            for clip in meta["clips"]:
                teacher = np.load(clip["frames"])
                for variant in [{"tag": "clean (teacher)", "frames": clip["frames"]}, *clip["variants"]]:
                    results.setdefault(variant["tag"], []).append(
                        tier_a_clip(np.load(variant["frames"]), teacher, detector))
    print(f"{args.clips} clips, {args.size} px, mediapipe {detector.version}; lag > 0: student late")
    print(f"{'student':20} {'lag':>4} {'clip lags':>15} {'corr0':>6} {'gain':>5} {'rms':>6} {'lm%iod':>6} "
          f"{'mPSNR':>6} {'mSSIM':>6} {'PSNR':>6}  default gates")
    for tag, clips in results.items():
        pooled = pool_tier_a(clips)
        fid = pooled["fidelity"]
        lags = ",".join(str(c["timing"]["lag"]) if c["timing"]["lag"] is not None else "-" for c in clips)
        lag = pooled["timing"]["lag"]
        gates = " ".join(f"{g['name']}:{ {True: 'ok', False: 'FAIL', None: 'n/a'}[g['passed']]}"
                         for g in check_gates(pooled))
        print(f"{tag:20} {'-' if lag is None else lag:>4} {lags:>15} {pooled['timing']['zero_lag_corr']:6.2f} "
              f"{pooled['articulation']['gain']:5.2f} {pooled['articulation']['rms_error']:6.3f} "
              f"{fid['mouth_landmark_dist_pct_iod']:6.2f} {fid['mouth_psnr']:6.1f} {fid['mouth_ssim']:6.3f} "
              f"{fid['frame_psnr']:6.1f}  {gates}")


if __name__ == "__main__":
    main()
