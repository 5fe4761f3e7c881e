"""CPU Conv3d through oneDNN (mkldnn) where PyTorch would take its slow reference kernel.

PyTorch runs a float32 CPU Conv3d of batch 1 whose N * C * T * H is at most 20480 with `slow_conv3d` (im2col +
GEMM), judging it faster there. For the Wan VAE's 3x3x3 causal convolutions at small sizes it is not: at the demo's
96x96, oneDNN is 1.3-2.7x faster per layer and decodes a clip's 13 latent frames 1.75x faster, and the VAE decode
is most of a few-step clip's time. Inference only: with grad enabled, off the CPU or in another dtype, the
module's own path runs, so training and GPUs are untouched. FLOP counting (torch's FlopCounterMode, the cost
section's GMACs) counts the oneDNN kernel as the convolution it is.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn
from torch.utils.flop_counter import conv_flop_count, register_flop_formula


def use_onednn_conv3d(module: nn.Module) -> nn.Module:
    """Route `module`'s zero-padded Conv3d layers through oneDNN for CPU float32 inference; returns `module`."""
    for conv in module.modules():
        if isinstance(conv, nn.Conv3d) and conv.padding_mode == "zeros" and not isinstance(conv.padding, str):
            conv._conv_forward = partial(_conv_forward, conv, type(conv)._conv_forward.__get__(conv))
    return module


def _conv_forward(conv: nn.Conv3d, native, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):
    if (torch.is_grad_enabled() or input.device.type != "cpu" or input.dim() != 5 or input.dtype != torch.float32
            or weight.dtype != torch.float32 or not torch.backends.mkldnn.is_available()
            or not torch.backends.mkldnn.enabled):
        return native(input, weight, bias)
    return torch.ops.aten.mkldnn_convolution(input.contiguous(), weight.contiguous(), bias, list(conv.padding),
                                             list(conv.stride), list(conv.dilation), conv.groups)


@register_flop_formula(torch.ops.aten.mkldnn_convolution)
def _mkldnn_convolution_flops(x_shape, w_shape, *args, out_shape=None, **kwargs) -> int:
    return conv_flop_count(x_shape, w_shape, out_shape, transposed=False)
