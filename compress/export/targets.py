"""Target profiles: what a device runs (precision, opset, static shapes, ops) and its speed budget.

Built-in profiles are YAML files in `compress/export/targets/`: `snapdragon-8gen3` (QNN HTP), `a17-pro` (Core ML,
Apple Neural Engine) and `dimensity-9300` (LiteRT, MediaTek APU) at a 256x256 face crop, each with a `-480x832`
twin at the full portrait frame, and `cpu`; a path to another YAML file works too. A profile
may `extends:` another (a built-in name, or the name of a YAML file in its own folder): it inherits every
top-level field it does not set. Unknown or mis-typed fields are errors naming the file, line and field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from compress.errors import UserInputError
from compress.utils.problems import problems_from
from compress.utils.yamlio import load_located, to_plain

TARGETS_DIR = Path(__file__).parent / "targets"
Precision = Literal["w8a16", "w8a8", "none"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StaticShapes(_Strict):
    """Arguments of the model's `example_inputs` that fix every input shape (batch 1 on a phone)."""

    batch_size: int = Field(default=1, ge=1)
    height: int = Field(default=64, ge=8)
    width: int = Field(default=64, ge=8)
    frames: int | None = Field(default=None, ge=1, description="frames per call, for models that take it")


class Budget(_Strict):
    """Frame-rate goal and the throughput it is measured against (an analytic estimate, with its source)."""

    fps: float = Field(gt=0)
    effective_gmacs_per_s: float = Field(gt=0, description="sustained multiply-accumulates per second")
    source: str = Field(description="where effective_gmacs_per_s comes from")

    @property
    def ms_per_frame(self) -> float:
        return 1000.0 / self.fps


class QnnSettings(_Strict):
    """QNN execution provider options for the HTP backend (simulated on x86 Linux)."""

    htp_arch: int = Field(description="Hexagon architecture, e.g. 75 for v75")
    soc_model: int = Field(description="QNN SoC id, e.g. 57 for SM8650")


class CoreMLSettings(_Strict):
    """How Core ML converts for the Neural Engine: compute precision and weight compression (coremltools)."""

    compute_precision: Literal["float16", "float32"] = "float16"
    weights: Literal["linear-int8", "palettize-6bit", "none"] = Field(
        default="linear-int8", description="weight compression: 8-bit linear per channel, 6-bit k-means LUT, none")
    minimum_deployment_target: Literal["iOS17", "iOS18"] = "iOS17"


#: what each runtime's checks run on here (the report's "verified on")
VERIFIED_ON = {"qnn-htp": "simulator", "cpu": "CPU (onnxruntime)", "coreml": "conversion only",
               "litert": "CPU interpreter"}


class TargetProfile(_Strict):
    name: str
    description: str = ""
    extends: str | None = Field(default=None, description="a profile whose top-level fields this one inherits")
    runtime: Literal["qnn-htp", "cpu", "coreml", "litert"]
    precision: Precision = Field(description="default quantization for this target")
    opset: int = Field(ge=17, le=23)
    shapes: StaticShapes = Field(default_factory=StaticShapes)
    allowed_ops: list[str] | None = Field(default=None, description="op types the target runs (ONNX; MIL for "
                                          "coreml, TFLite builtins for litert); null: all")
    budget: Budget | None = None
    qnn: QnnSettings | None = None
    coreml: CoreMLSettings | None = None

    def unsupported_ops(self, op_types) -> list[str]:
        """The op types of `op_types` the target does not run (sorted; empty when it runs all)."""
        if self.allowed_ops is None:
            return []
        return sorted(set(op_types) - set(self.allowed_ops))


def target_names() -> list[str]:
    return sorted(p.stem for p in TARGETS_DIR.glob("*.yaml"))


def load_target(name_or_path: str | Path, _seen: tuple[Path, ...] = ()) -> TargetProfile:
    """A built-in profile by name, or a profile YAML file; problems name the file, line and field."""
    path = _profile_path(name_or_path)
    if path in _seen:
        raise UserInputError(f"{path}: 'extends' loops: {' -> '.join(map(str, (*_seen, path)))}")
    data = load_located(path)
    if not isinstance(data, dict):
        raise UserInputError(f"{path}: a target profile is a mapping of fields, found {type(data).__name__}")
    plain = to_plain(data)
    if isinstance(plain.get("extends"), str):
        plain = {**load_target(_base_path(path, plain["extends"]), (*_seen, path)).model_dump(), **plain}
    problems, failed = [], []
    for section, model in (("shapes", StaticShapes), ("budget", Budget), ("qnn", QnnSettings),
                             ("coreml", CoreMLSettings)):
        if isinstance(data.get(section), dict):  # nested sections first, so unknown fields list their own fields
            try:
                model.model_validate(to_plain(data[section]))
            except ValidationError as err:
                problems += problems_from(err, data[section], model, prefix=section)
                failed.append(section)
    try:
        profile = TargetProfile.model_validate(plain)
    except ValidationError as err:
        problems += problems_from(err, data, TargetProfile, skip=tuple(failed))
    if problems:
        raise UserInputError(f"invalid target profile {path}:\n" + "\n".join(f"  - {p}" for p in problems))
    return profile


def _base_path(path: Path, extends: str) -> str | Path:
    """What a profile extends: a built-in name, or a file in the profile's own folder (never elsewhere)."""
    if not Path(extends).suffix:
        return extends
    if Path(extends).name != extends:
        raise UserInputError(f"{path}: extends: expected a built-in target or a file name in {path.parent}; "
                             f"found '{extends}'")
    return path.parent / extends


def _profile_path(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if not path.suffix:
        path = TARGETS_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise UserInputError(f"unknown target '{name_or_path}'; built-in targets: {', '.join(target_names())}")
    if not path.is_file():
        raise UserInputError(f"target profile {path} does not exist")
    return path.resolve()
