"""Post-training weight quantization (FP8 / INT8, weight-only and dynamic) for any torch model.

    report = quantize_(model, QuantConfig(scheme="int8_dynamic", ignore=["head.*"]))
    save_quantized(model, out_dir, config)        # plain safetensors + quantization_config.json
    load_quantized(fresh_model, out_dir)          # fresh_model may be built on the meta device
    quantize_checkpoint(src_dir, dst_dir, config) # streaming, for checkpoints larger than RAM

Names are imported on first use, so the scheme names (`compress.quant.config`) stay light.
"""

from compress.utils.lazy import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    "LayerDecision": "api", "QuantReport": "api", "linear_module_names": "api", "quantize_": "api",
    "tensor_bytes": "api",
    "FORMAT_VERSION": "config", "WAN_S2V_HIGH_PRECISION": "config", "Granularity": "config", "QuantConfig": "config",
    "Scheme": "config",
    "Fp8KernelUnavailableError": "kernels", "fp8_kernels_available": "kernels",
    "QuantizedLinear": "linear",
    "layer_sensitivity": "sensitivity", "most_sensitive": "sensitivity", "relative_error": "sensitivity",
    "QUANT_CONFIG_NAME": "serialization", "QuantizedStructure": "serialization",
    "apply_quantized_structure": "serialization", "load_checkpoint": "serialization",
    "load_quantized": "serialization", "save_quantized": "serialization",
    "quantize_checkpoint": "streaming",
})
