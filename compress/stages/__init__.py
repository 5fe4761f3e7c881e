"""Stage kinds, found by name. The built-in kinds are imported on first lookup (see `registered_kinds`)."""

from compress.stages.base import Stage, registered_kinds, stage_class
from compress.stages.context import StageContext
from compress.stages.refs import MODEL, ModelRef, StageRef

__all__ = ["MODEL", "ModelRef", "Stage", "StageContext", "StageRef", "registered_kinds", "stage_class"]
