"""Generation with the S2V teacher: components, the pipeline and video output.

Names are imported on first use, so importing the package stays light.
"""

import importlib

_EXPORTS = {
    "ByteTokenizer": "components", "S2VComponents": "components", "flow_scheduler": "components",
    "FPS": "s2v", "MOTION_FRAMES": "s2v", "S2VOutput": "s2v", "S2VPipeline": "s2v",
    "WrittenVideo": "video", "write_video": "video",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
