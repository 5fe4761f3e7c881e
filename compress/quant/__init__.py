"""Post-training weight quantization (FP8 / INT8, weight-only and dynamic) for any torch model.

    report = quantize_(model, QuantConfig(scheme="int8_dynamic", ignore=["head.*"]))
    save_quantized(model, out_dir, config)        # plain safetensors + quantization_config.json
    load_quantized(fresh_model, out_dir)          # fresh_model may be built on the meta device
    quantize_checkpoint(src_dir, dst_dir, config) # streaming, for checkpoints larger than RAM
"""

from compress.quant.api import LayerDecision, QuantReport, linear_module_names, quantize_, tensor_bytes
from compress.quant.config import FORMAT_VERSION, WAN_S2V_HIGH_PRECISION, Granularity, QuantConfig, Scheme
from compress.quant.kernels import Fp8KernelUnavailableError, fp8_kernels_available
from compress.quant.linear import QuantizedLinear
from compress.quant.sensitivity import layer_sensitivity, most_sensitive, relative_error
from compress.quant.serialization import (
    QUANT_CONFIG_NAME,
    QuantizedStructure,
    apply_quantized_structure,
    load_checkpoint,
    load_quantized,
    save_quantized,
)
from compress.quant.streaming import quantize_checkpoint

__all__ = [
    "FORMAT_VERSION", "QUANT_CONFIG_NAME", "WAN_S2V_HIGH_PRECISION", "Fp8KernelUnavailableError", "Granularity",
    "LayerDecision", "QuantConfig", "QuantReport", "QuantizedLinear", "QuantizedStructure", "Scheme",
    "apply_quantized_structure", "fp8_kernels_available", "layer_sensitivity", "linear_module_names",
    "load_checkpoint", "load_quantized", "most_sensitive", "quantize_", "quantize_checkpoint", "relative_error",
    "save_quantized", "tensor_bytes",
]
