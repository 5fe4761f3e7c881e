"""Compression and distillation toolkit for talking-head video diffusion."""

import logging

# torchao's CUDA-only extensions and its version handshake with diffusers are noisy on CPU machines
for _name in ("torchao", "diffusers.quantizers.torchao.torchao_quantizer", "torch.utils._pytree"):
    logging.getLogger(_name).setLevel(logging.ERROR)

from compress.recipe import Recipe  # noqa: E402

__all__ = ["Recipe"]
