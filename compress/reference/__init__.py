"""The reference artifact: the teacher's stored outputs over an input set, written by the `reference` stage.

`ReferenceArtifact` opens a finished one (settings, clips, rows, teacher outputs, components, VAE, regeneration,
mouth boxes); `ReferenceConfig` holds the stage's settings; `inputs`, `dataset`, `samples` and `calibration` are
the input sets, the dataset codec, DiT inputs from its rows and the calibration sampler. The settings and input
sets import light; the rest on first use.
"""

from compress.reference.config import BUILTIN, ReferenceConfig
from compress.reference.inputs import InputClip, read_input_set
from compress.utils.lazy import lazy_exports

__getattr__, _lazy = lazy_exports(__name__, {"ReferenceArtifact": "artifact", "ReferenceContext": "artifact"})
__all__ = ["BUILTIN", "InputClip", "ReferenceConfig", "read_input_set", *_lazy]
