"""Quantization primitives and the low-precision matmuls (real kernels where available, exact or
numerical emulation elsewhere). All scales are fp32 dequantization multipliers: x ~= q * scale."""

from __future__ import annotations

import functools

import torch

from compress.errors import CompressError

FP8_DTYPE = torch.float8_e4m3fn
INT8_MAX = 127
FP8_MAX = torch.finfo(FP8_DTYPE).max  # 448
_CHUNK_ELEMENTS = 1 << 24  # rows quantized per step stay under 64 MB of fp32 transients
_EXACT_FP32_K = 1024  # 1024 * 128**2 = 2**24: sums of this many int8 products are exact in fp32


class Fp8KernelUnavailableError(CompressError, RuntimeError):
    """fp8_dynamic was run where no FP8 scaled-matmul kernel exists."""


def _to_storage(values: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    if dtype == torch.int8:
        return values.round_().clamp_(-INT8_MAX, INT8_MAX).to(torch.int8)
    return values.clamp_(-FP8_MAX, FP8_MAX).to(dtype)  # e4m3fn has no inf: out-of-range casts give NaN


def _scale_from_amax(amax: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    qmax = INT8_MAX if dtype == torch.int8 else FP8_MAX
    return torch.where(amax > 0, amax / qmax, torch.ones_like(amax))


def quantize_weight(weight: torch.Tensor, dtype: torch.dtype, per_channel: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric quantization of a 2-D weight to `dtype` (a scheme's storage dtype: int8 or float8_e4m3fn).

    Returns (qweight, scale) with scale fp32 of shape (out_features, 1) or (1, 1). Works in row chunks
    so the fp32 transients stay small however large the weight is.
    """
    rows = max(1, _CHUNK_ELEMENTS // max(1, weight.shape[1]))
    chunks = weight.detach().split(rows)
    amax = torch.cat([c.float().abs().amax(dim=1, keepdim=True) for c in chunks])
    if not per_channel:
        amax = amax.amax().reshape(1, 1)
    scale = _scale_from_amax(amax, dtype)
    qweight = torch.empty(weight.shape, dtype=dtype, device=weight.device)
    for start in range(0, weight.shape[0], rows):
        row_scale = scale if not per_channel else scale[start:start + rows]
        qweight[start:start + rows] = _to_storage(weight[start:start + rows].float() / row_scale, dtype)
    return qweight, scale


def dequantize_weight(qweight: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return (qweight.float() * scale).to(dtype)


def quantize_activation(x: torch.Tensor, dtype: torch.dtype, per_row: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Dynamic symmetric quantization of a 2-D activation: scale (M, 1) per row (token) or (1, 1)."""
    xf = x.float()
    amax = xf.abs().amax(dim=1, keepdim=True) if per_row else xf.abs().amax().reshape(1, 1)
    scale = _scale_from_amax(amax, dtype)
    return _to_storage(xf / scale, dtype), scale


def int8_matmul_emulated(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Exact int8 (M, K) @ int8 (K, N) -> int32, as fp32 matmuls over K-chunks small enough to be exact."""
    out = torch.zeros(a.shape[0], b.shape[1], dtype=torch.int32, device=a.device)
    for k in range(0, a.shape[1], _EXACT_FP32_K):
        out += (a[:, k:k + _EXACT_FP32_K].float() @ b[k:k + _EXACT_FP32_K].float()).to(torch.int32)
    return out


def _int_mm_supported(a: torch.Tensor, b: torch.Tensor) -> bool:
    """cuBLAS int8 GEMM constraints; on CPU torch._int_mm is slower than the fp32 emulation (see cpu path)."""
    return a.is_cuda and a.shape[0] > 16 and a.shape[1] % 8 == 0 and b.shape[1] % 8 == 0


def _cpu_has_int8_units() -> bool:
    """AVX512-VNNI or AMX: the CPUs where oneDNN int8 GEMMs beat fp32."""
    cpu = torch._C._cpu
    return any(getattr(cpu, probe, lambda: False)() for probe in ("_is_vnni_supported", "_is_amx_tile_supported"))


def int8_dynamic_matmul(x: torch.Tensor, qweight: torch.Tensor, weight_scale: torch.Tensor) -> torch.Tensor:
    """W8A8: per-token int8 activations times the int8 weight (out, in), rescaled; returns fp32 (M, out)."""
    xq, x_scale = quantize_activation(x, torch.int8, per_row=True)
    if x.device.type == "cpu" and _cpu_has_int8_units():
        from torchao.kernel.intmm import int_scaled_matmul  # picks the u8s8 / s8s8 oneDNN path for this CPU

        y = int_scaled_matmul(xq, qweight.t(), x_scale)
    elif _int_mm_supported(xq, qweight.t()):
        # contiguous: cuBLAS int8 GEMMs are wrong for some transposed layouts (see torchao's safe_int_mm)
        y = torch._int_mm(xq, qweight.t().contiguous()).float() * x_scale
    else:
        y = int8_matmul_emulated(xq, qweight.t()).float() * x_scale
    return y * weight_scale.reshape(1, -1)


@functools.cache
def _cuda_capability(index: int) -> tuple[int, int]:
    return torch.cuda.get_device_capability(index)


def _capability(device: torch.device) -> tuple[int, int]:
    return _cuda_capability(device.index if device.index is not None else torch.cuda.current_device())


def fp8_kernels_available(device: torch.device) -> bool:
    """torch._scaled_mm with e4m3 inputs needs a CUDA GPU of compute capability >= 8.9."""
    return device.type == "cuda" and _capability(device) >= (8, 9)


def _fp8_unavailable(device: torch.device) -> Fp8KernelUnavailableError:
    where = str(device)
    if device.type == "cuda":
        where += " (compute capability {}.{})".format(*_capability(device))
    return Fp8KernelUnavailableError(
        f"scheme 'fp8_dynamic' needs FP8 scaled-matmul kernels, which require a CUDA GPU with compute "
        f"capability >= 8.9 (H100/H200/L40S/RTX 4090); this input is on {where}. Use scheme "
        "'fp8_weight_only' (FP8 storage, matmul in the activation dtype), or QuantConfig(allow_emulation=True) "
        "to emulate the FP8 numerics in fp32 (slow, for tests and accuracy studies).")


def fp8_dynamic_matmul(x: torch.Tensor, qweight: torch.Tensor, weight_scale: torch.Tensor, per_row: bool,
                       allow_emulation: bool) -> torch.Tensor:
    """FP8 activations (scaled per row or per tensor) times the FP8 weight (out, in); returns (M, out) in
    bf16 for per-row scaling (what the rowwise kernel produces) and in x.dtype otherwise, fp32 when emulated."""
    xq, x_scale = quantize_activation(x, FP8_DTYPE, per_row=per_row)
    w_scale = weight_scale.reshape(1, -1)
    if fp8_kernels_available(x.device):
        out_dtype = torch.bfloat16 if per_row else x.dtype
        return torch._scaled_mm(xq, qweight.t(), scale_a=x_scale, scale_b=w_scale, out_dtype=out_dtype)
    if not allow_emulation:
        raise _fp8_unavailable(x.device)
    return (xq.float() * x_scale) @ dequantize_weight(qweight, weight_scale, torch.float32).t()


def dynamic_matmul(kernel: str, x: torch.Tensor, qweight: torch.Tensor, weight_scale: torch.Tensor, per_row: bool,
                   allow_emulation: bool) -> torch.Tensor:
    """The matmul of a dynamic scheme's `kernel` (compress.quant.schemes): int8 activations are always scaled per
    token and emulated exactly where no int8 GEMM runs; FP8 ones follow `per_row` and `allow_emulation`."""
    if kernel == "int8_mm":
        return int8_dynamic_matmul(x, qweight, weight_scale)
    if kernel == "fp8_scaled_mm":
        return fp8_dynamic_matmul(x, qweight, weight_scale, per_row, allow_emulation)
    raise ValueError(f"no dynamic matmul for kernel {kernel!r}")
