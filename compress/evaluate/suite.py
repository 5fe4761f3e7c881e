"""Evaluation suites (`eval/suites/NAME.yaml`): inputs, lip-sync tiers, cost options, leaderboard columns, gates.

A suite is found by name in `./eval/suites/` (the working directory first, then the toolkit's own checkout),
or given as a path. Unknown fields and bad values are errors naming the file, line and field.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from compress.errors import UserInputError
from compress.utils.problems import problems_from
from compress.utils.yamlio import load_located, to_plain

SUITE_DIRS = (Path("eval/suites"), Path(__file__).resolve().parents[2] / "eval" / "suites")
TIERS = ("A", "B", "C")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LipSync(_Strict):
    """Which lip-sync tiers run. Each is reported on its own, with its tier label (never folded into one score)."""

    tiers: list[Literal["A", "B", "C"]] = Field(default_factory=lambda: list(TIERS))
    max_lag: int = Field(default=15, ge=0, description="frames searched each way for the mouth-timing lag")
    tier_a_gates: dict[str, float | list[float]] | None = Field(
        default=None, description="tier A's own gates (compress.evaluate.tier_a.GATES); default: its defaults")
    sync_expert: str | None = Field(default=None, description="tier B: a sync_expert artifact (path)")
    syncnet_weights: str | None = Field(default=None, description="tier C: published SyncNet weights (path)")
    wrong_audio: bool = Field(default=False, description="lip-sync students: tier A again with each clip heard with "
                                                         "another clip's audio (`compress.evaluate.wrong_audio`), "
                                                         "metrics `wrong_audio.tier_a.*`")


class Fit(_Strict):
    """The memory planner's verdict per target GPU, for the workload the artifact is meant to run."""

    targets: list[str] = Field(default_factory=lambda: ["rtx4090", "l40s", "h100"])
    size: str = "480*832"
    frames: int = Field(default=80, gt=0)
    layout: str = "single"


class Cost(_Strict):
    latency_repeats: int = Field(default=3, ge=1, description="timed runs; the median is reported")
    warmup: int = Field(default=1, ge=0, description="untimed runs before timing")
    flops: bool = True
    onnx: bool = Field(default=True, description="time the artifact's model.onnx with onnxruntime when present")
    fit: Fit | None = Field(default_factory=Fit)


class Gate(_Strict):
    """A bound on one metric (a dotted name of the flattened results, e.g. `fidelity.frame_psnr`)."""

    metric: str
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> "Gate":
        if self.min is None and self.max is None:
            raise ValueError("a gate needs min, max or both")
        return self

    @property
    def bound(self) -> str:
        parts = [f">= {self.min:g}" if self.min is not None else "", f"<= {self.max:g}" if self.max is not None else ""]
        return " and ".join(p for p in parts if p)

    def check(self, metrics: dict) -> dict:
        """{name, value, bound, passed}; passed is None when the metric was not computed."""
        value = metrics.get(self.metric)
        number = isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
        passed = None if not number else (self.min is None or value >= self.min) and (
            self.max is None or value <= self.max)
        return {"name": self.metric, "value": value if number else None, "bound": self.bound, "passed": passed}


class Suite(_Strict):
    name: str
    description: str = ""
    inputs: str = Field(default="reference", description="'reference' (the reference artifact the run names) "
                                                         "or the path of a reference artifact")
    max_inputs: int | None = Field(default=None, ge=1, description="evaluate the first N inputs")
    lipsync: LipSync = Field(default_factory=LipSync)
    cost: Cost = Field(default_factory=Cost)
    metrics: list[str] = Field(default_factory=list, description="leaderboard columns (flattened metric names)")
    gates: list[Gate] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not value.replace("-", "").replace("_", "").isalnum():
            raise ValueError("a name of letters, digits, '-' and '_'")
        return value

    def check_gates(self, metrics: dict) -> list[dict]:
        return [gate.check(metrics) for gate in self.gates]


def find_suite(spec: str) -> Path:
    """The file of a suite name or path."""
    path = Path(spec)
    if path.suffix in (".yaml", ".yml") or "/" in spec:
        if not path.is_file():
            raise UserInputError(f"suite file not found: {spec}")
        return path
    for folder in SUITE_DIRS:
        if (folder / f"{spec}.yaml").is_file():
            return folder / f"{spec}.yaml"
    known = sorted({p.stem for folder in SUITE_DIRS if folder.is_dir() for p in folder.glob("*.yaml")})
    raise UserInputError(f"no suite named '{spec}' in eval/suites; known: {', '.join(known) or 'none'}")


def load_suite(spec: str) -> Suite:
    """A validated suite; every problem is one line `file:line: field: expected ...; found ...`."""
    path = find_suite(spec)
    data = load_located(path)  # YAMLInputError (bad input) names the file and line
    if not isinstance(data, dict):
        raise UserInputError(f"{path}: expected a mapping of suite fields")
    try:
        return Suite.model_validate(to_plain(data))
    except ValidationError as err:
        lines = problems_from(err, data, Suite)
        raise UserInputError(f"invalid suite {path}:\n" + "\n".join(f"  - {line}" for line in lines)) from None
