"""Stage kinds. Importing this package registers the built-in kinds."""

import compress.stages.prune  # noqa: F401
import compress.stages.quantize  # noqa: F401
import compress.stages.reference  # noqa: F401
from compress.stages.base import Stage, registered_kinds, stage_class

__all__ = ["Stage", "registered_kinds", "stage_class"]
