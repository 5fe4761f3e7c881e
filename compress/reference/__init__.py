"""The reference artifact: the teacher's stored outputs over an input set, written by the `reference` stage.

`ReferenceArtifact` opens a finished one (settings, clips, rows, teacher outputs, components, VAE, regeneration,
mouth boxes); `ReferenceConfig` holds the stage's settings; `inputs`, `dataset`, `samples` and `calibration` are
the input sets, the dataset codec, DiT inputs from its rows and the calibration sampler. The settings and input
sets import light; the rest on first use.
"""

import importlib

from compress.reference.config import BUILTIN, ReferenceConfig
from compress.reference.inputs import InputClip, read_input_set

_LAZY = {"ReferenceArtifact": "artifact", "ReferenceContext": "artifact"}
__all__ = ["BUILTIN", "InputClip", "ReferenceConfig", "read_input_set", *_LAZY]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
