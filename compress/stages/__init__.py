"""Stage kinds, found by name. The built-in kinds are imported on first lookup (see `registered_kinds`)."""

from compress.stages.base import Stage, registered_kinds, stage_class

__all__ = ["Stage", "registered_kinds", "stage_class"]
