"""ONNX export for phone NPUs: target profiles, float export with parity, QDQ quantization, QNN HTP checks."""

from compress.export.pipeline import ExportRequest, UnsupportedOpsError, example_inputs, run_export
from compress.export.targets import TargetProfile, load_target, target_names

__all__ = ["ExportRequest", "TargetProfile", "UnsupportedOpsError", "example_inputs", "load_target", "run_export",
           "target_names"]
