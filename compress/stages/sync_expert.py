"""`sync_expert`: train the tier-B lip-sync expert on a reference stage's teacher outputs (for evaluation, or a
distill stage's sync loss).

    - kind: sync_expert
      reference: reference         # the reference stage whose frames + audio it learns from
      steps: 300

The artifact holds `expert/` (`SyncExpert.save_pretrained`; `compress.models.sync_expert.load_sync_expert`)
and `sync_expert_report.json`. Its key metrics say how often the expert finds a known lag in held-out teacher
clips and rejects their audio reversed in time: a low value means the expert (not the student) is unreliable,
e.g. because the teacher's video ignores the audio. It is not a model for later stages, but a distill stage may
train against it (`sync_expert` + `losses.sync`); the student then games this expert, so evaluate it with another.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from compress.errors import UserInputError
from compress.stages.base import Stage
from compress.stages.refs import StageRef
from compress.utils.arrays import decode_array


class SyncExpertStage(Stage):
    kind = "sync_expert"
    summary = "train a tier-B lip-sync expert (SyncNet-style) on the teacher's reference outputs"
    key_metrics = ("validation_offset_accuracy", "validation_reversed_audio_accuracy", "train_clips")
    produces_model = False

    reference: StageRef["reference"] = Field(description="the reference stage whose teacher frames and audio it "
                                                         "trains on")
    steps: int = Field(default=300, ge=1, description="training steps")
    val_fraction: float = Field(default=0.25, ge=0, lt=1, description="clips held out to validate the expert")
    width: int = Field(default=32, ge=8, description="channels of the first conv layer (32: ~0.9M parameters)")
    mouth: Literal["auto", "inputs", "landmarks"] = Field(
        default="auto", description="mouth boxes from the input set's mouth_box entries, from face landmarks, "
                                    "or auto (mouth_box where given, landmarks otherwise)")

    def run(self, source, out, ctx) -> dict:
        from compress.evaluate.sync import train_sync_expert
        from compress.models.sync_expert import EXPERT_DIR

        clips = self._clips(ctx)
        expert, report = train_sync_expert(clips, steps=self.steps, seed=ctx.seed, val_fraction=self.val_fraction,
                                           width=self.width, track=ctx.track)
        expert.save_pretrained(out.path / EXPERT_DIR)
        out.write_json("sync_expert_report.json", report)
        lags, reverse = report["validation_offset_accuracy"], report["validation_reversed_audio_accuracy"]
        ctx.log(f"  sync expert: {report['params']:,} parameters; held-out clips: known lags found "
                f"{'n/a' if lags is None else f'{lags:.0%}'}, reversed audio rejected "
                f"{'n/a' if reverse is None else f'{reverse:.0%}'}")
        return report

    def _clips(self, ctx) -> list:
        from compress.face.sync_clip import SyncClip
        from compress.reference.mouth import mouth_tracks

        reference = ctx.reference(self.reference)
        tracks = ctx.track(mouth_tracks(reference, self.mouth), "mouth tracks", len(reference))
        clips = [SyncClip(frames, decode_array(row, "audio").astype(np.float32), row["fps"], boxes)
                 for row, frames, boxes in tracks]
        if not clips:
            raise UserInputError(f"sync_expert: reference '{self.reference}' has no clips")
        return clips

