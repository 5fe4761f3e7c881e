"""Package re-exports imported on first use (PEP 562), so that importing a package stays light.

    __getattr__, __all__ = lazy_exports(__name__, {"plan_prune": "plan", "PruneConfig": "config"})
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], list[str]]:
    """(module `__getattr__`, `__all__`) for a package whose names live in its submodules: {name: submodule}."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        setattr(sys.modules[package], name, value)  # found directly from now on
        return value

    return __getattr__, sorted(exports)
