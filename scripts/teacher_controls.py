"""The teacher against its own reference outputs: what the students' lip-sync figures can reach at best.

    python scripts/teacher_controls.py runs/student/02-heldout

On every clip of a reference, the reference's teacher is sampled again (tier A against its stored frames):
- with the next clip's audio and the same seed: the wrong-audio control (`compress.evaluate.wrong_audio`) applied to
  the teacher itself, i.e. the control's floor on these clips (clips that share a layout, silence then a sentence
  then silence, correlate even when their sentences differ);
- with its own audio and another seed: how much of the teacher's mouth is its noise, which no deterministic student
  can follow.
For a built-in set it first prints the layout's own floor: each clip's true mouth schedule against the next clip's,
one mouth per 4 frames as the demo teacher draws them.
"""

import argparse
from pathlib import Path

import numpy as np

from compress.artifacts import Artifact
from compress.data import load_synthetic_set
from compress.evaluate.generate import EvalContext
from compress.evaluate.tier_a import pool_tier_a, tier_a_clip
from compress.evaluate.wrong_audio import summary
from compress.face.landmarks import LandmarkDetector
from compress.pipelines.audio import load_audio
from compress.reference.artifact import ReferenceArtifact
from compress.reference.generation import TeacherPipeline

SEED_OFFSET = 1000
FRAMES_PER_LATENT = 4


def next_clip_schedule_corr(inputs_file: Path) -> float:
    """Mean correlation of each clip's true mouth schedule (averaged per latent frame) with the next clip's."""
    schedules = [np.load(clip["schedule"]) for clip in load_synthetic_set(inputs_file)["clips"]]
    chunked = [s[: len(s) // FRAMES_PER_LATENT * FRAMES_PER_LATENT].reshape(-1, FRAMES_PER_LATENT).mean(1)
               for s in schedules]
    return float(np.mean([np.corrcoef(a, b)[0, 1] for a, b in zip(chunked, chunked[1:] + chunked[:1])]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", type=Path, help="a reference stage's artifact (e.g. runs/student/02-heldout)")
    parser.add_argument("--max-lag", type=int, default=8, help="tier A's lag search (the student suite's: 8)")
    args = parser.parse_args()
    ctx = EvalContext(root=Path.cwd())
    reference = ReferenceArtifact(Artifact.open(args.reference), ctx)
    teacher = reference.artifact.open_related(reference.artifact.manifest["input"]["path"], ctx.resolve_path)
    pipeline = TeacherPipeline(reference.config, teacher.load_model(), ctx)
    inputs, seeds = reference.clips, [row["seed"] for row in reference.rows]
    count = len(inputs)
    cases = {"next clip's audio, same seed (wrong-audio control)": lambda i: (seeds[i], (i + 1) % count),
             f"own audio, seed + {SEED_OFFSET}": lambda i: (seeds[i] + SEED_OFFSET, i)}
    if reference.config.builtin:
        print(f"true mouths against the next clip's, one per {FRAMES_PER_LATENT} frames: "
              f"{next_clip_schedule_corr(reference.inputs_file):.3f}")
    print(f"teacher {teacher.path} against {reference.path} ({count} clips), tier A:")
    with LandmarkDetector() as detector:
        for name, case in cases.items():
            clips = []
            for index, clip in enumerate(ctx.track(inputs, name)):
                seed, heard = case(index)
                frames = pipeline(clip, seed, load_audio(inputs[heard].audio)).frames
                clips.append(tier_a_clip(np.asarray(frames), reference.teacher(index)["frames"], detector,
                                         max_lag=args.max_lag))
            result = summary(pool_tier_a(clips))
            print(f"  {name}: zero-lag correlation {result['zero_lag_corr']:.3f}, gain {result['gain']:.3f}, "
                  f"clip lags {result['clip_lags']}, frame PSNR {result['frame_psnr']:.1f} dB")


if __name__ == "__main__":
    main()
