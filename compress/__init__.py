"""Compression and distillation toolkit for talking-head video diffusion.

    from compress import Recipe, run
    result = run(Recipe.from_yaml("recipes/quickstart.yaml"))   # or Recipe(...).run()

Names are imported on first use, so `import compress` (and the command line's start) stays light.
"""

import importlib
import logging

# torchao's CUDA-only extensions and its version handshake with diffusers are noisy on CPU machines
for _name in ("torchao", "diffusers.quantizers.torchao.torchao_quantizer", "torch.utils._pytree"):
    logging.getLogger(_name).setLevel(logging.ERROR)

_EXPORTS = {"Recipe": "compress.recipe", "run": "compress.runner"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
