"""Calibration inputs for stages that measure a model: the teacher's reference data, or random inputs."""

from __future__ import annotations

from pydantic import BaseModel, Field

from compress.stages.refs import StageRef


class Calibrated(BaseModel):
    """Mixin for stages: `calibration_batches` inputs, drawn from the `reference` stage's dataset if named."""

    calibration_batches: int = Field(default=4, ge=1, le=64)
    reference: StageRef["reference"] | None = Field(
        default=None, description="a reference stage whose dataset gives the calibration inputs (default: random)")

    def calibration_inputs(self, model, ctx) -> list[dict]:
        from compress.reference.calibration import dit_calibration_inputs, random_dit_inputs

        if self.reference is None:
            return random_dit_inputs(model, self.calibration_batches, ctx.seed, ctx.device)
        reference = ctx.reference(self.reference)
        return dit_calibration_inputs(reference, self.calibration_batches, ctx.seed, ctx.device)
