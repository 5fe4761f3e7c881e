"""Compression and distillation toolkit for talking-head video diffusion.

    from compress import Recipe, run
    result = run(Recipe.from_yaml("recipes/quickstart.yaml"))   # or Recipe(...).run()

Names are imported on first use, so `import compress` (and the command line's start) stays light.
"""

import logging

from compress.utils.lazy import lazy_exports

# torchao's CUDA-only extensions and its version handshake with diffusers are noisy on CPU machines
for _name in ("torchao", "diffusers.quantizers.torchao.torchao_quantizer", "torch.utils._pytree"):
    logging.getLogger(_name).setLevel(logging.ERROR)

__getattr__, __all__ = lazy_exports(__name__, {"Recipe": "recipe", "run": "runner"})
