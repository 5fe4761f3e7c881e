"""ONNX export for phone NPUs: target profiles, float export with parity, QDQ quantization, QNN HTP checks.

Names are imported on first use, so `compress.export.targets` stays light.
"""

from compress.utils.lazy import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    "ExportRequest": "pipeline", "UnsupportedOpsError": "pipeline", "example_inputs": "pipeline",
    "run_export": "pipeline", "WrongHtpOutputError": "pipeline",
    "TargetProfile": "targets", "load_target": "targets", "target_names": "targets",
})
