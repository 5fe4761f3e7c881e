"""Post-training weight quantization (FP8 / INT8, weight-only and dynamic) for any torch model.

    report = quantize_(model, QuantConfig(scheme="int8_dynamic", ignore=["head.*"]))
    save_quantized(model, out_dir, config)        # plain safetensors + quantization_config.json
    load_quantized(fresh_model, out_dir)          # fresh_model may be built on the meta device
    quantize_checkpoint(src_dir, dst_dir, config) # streaming, for checkpoints larger than RAM

The schemes are one table (`compress.quant.schemes.SCHEMES`: storage dtype, weight-only or dynamic, kernel,
bytes per parameter) read by the kernels, QuantizedLinear, the quantize stage and the memory planner.

Why a hand-written QuantizedLinear rather than torchao's tensor subclasses (torchao 0.18: `quantize_(model,
Int8WeightOnlyConfig())` turns each weight into an Int8Tensor / Float8Tensor):
- the checkpoint is plain safetensors, `weight` (int8 / float8_e4m3fn) and `weight_scale` (fp32) under the
  module's own names: any safetensors reader opens it, and the memory planner sizes it from the headers alone.
  torchao saves its subclasses with torch.save (pickle); its safetensors path (torchao.prototype.safetensors)
  rebuilds them from JSON metadata and needs torchao to read.
- a model built on the meta device is restored from quantization_config.json (which modules, which scheme)
  and `load_state_dict(assign=True)`, with no tensor classes to unpickle;
- `quantize_checkpoint` goes from disk to disk tensor by tensor, so a checkpoint larger than RAM (the 16.3B S2V
  DiT on a 24 GB machine) is never loaded whole; torchao's `quantize_` transforms a model held in memory.
torchao still provides one kernel: its oneDNN int8 matmul on CPUs with int8 units (kernels.py).

The names below are imported on first use (PEP 562), so that `from compress.quant import Scheme` (recipe
parsing) does not import torch.
"""

from compress.utils.lazy import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    **dict.fromkeys(("LayerDecision", "QuantReport", "linear_module_names", "quantize_", "tensor_bytes"), "api"),
    **dict.fromkeys(("FORMAT_VERSION", "WAN_S2V_HIGH_PRECISION", "Granularity", "QuantConfig", "default_ignore"),
                    "config"),
    **dict.fromkeys(("Fp8KernelUnavailableError", "fp8_kernels_available"), "kernels"),
    "QuantizedLinear": "linear",
    **dict.fromkeys(("SCHEMES", "QuantScheme", "Scheme", "get_scheme"), "schemes"),
    **dict.fromkeys(("layer_sensitivity", "most_sensitive", "relative_error"), "sensitivity"),
    **dict.fromkeys(("QUANT_CONFIG_NAME", "QuantizedStructure", "apply_quantized_structure", "load_checkpoint",
                     "load_quantized", "save_quantized"), "serialization"),
    "quantize_checkpoint": "streaming",
})
