"""The reference artifact: the teacher's stored outputs over an input set, written by the `reference` stage.

`ReferenceArtifact` opens a finished one (settings, clips, rows, teacher outputs, components, VAE, regeneration,
mouth boxes) and `ReferenceContext` says where its paths may lie outside a recipe run. The submodules: `config`
(the stage's settings), `inputs` (input sets), `dataset` (the dataset codec), `generation` (the
teacher's pipeline call), `samples` (DiT inputs from rows), `calibration` (the calibration sampler) and `mouth`
(mouth tracks). The settings import light; the rest on first use.
"""

from compress.reference.config import ReferenceConfig
from compress.utils.lazy import lazy_exports

__getattr__, _lazy = lazy_exports(__name__, {"ReferenceArtifact": "artifact", "ReferenceContext": "artifact"})
__all__ = ["ReferenceConfig", *_lazy]
