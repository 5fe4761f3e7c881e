"""Generation with the S2V teacher: components, the pipeline and video output.

Names are imported on first use, so importing the package stays light.
"""

from compress.utils.lazy import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    "ByteTokenizer": "components", "S2VComponents": "components", "flow_scheduler": "components",
    "FPS": "s2v", "MOTION_FRAMES": "s2v", "S2VOutput": "s2v", "S2VPipeline": "s2v",
    "WrittenVideo": "video", "write_video": "video",
})
