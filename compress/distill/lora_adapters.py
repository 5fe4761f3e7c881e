"""peft LoRA adapters on any model, quantized bases included: attach, save, reload, merge.

`QuantizedLinear` is not a layer type peft can wrap, so a quantized base is first turned into a *dequantized
view*: each QuantizedLinear becomes a frozen nn.Linear holding its dequantized weight. Adapters train over that
view; merging adds the LoRA delta to the dequantized weight and quantizes the sum again with the base's own
QuantConfig. For the *_dynamic schemes the view computes activations in full precision while training; the
re-quantized model quantizes them again.

    view = attach_adapters(model, targets=["*.to_q", "*.to_v"], rank=8, alpha=8)
    ... train the parameters named lora_* ...
    save_adapters(model, "adapters/")                    # adapter_config.json + adapter_model.safetensors
    model = merge_adapters(model, view)                  # plain Linears again, re-quantized if the base was
"""

from __future__ import annotations

import contextlib
import fnmatch
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model, set_peft_model_state_dict
from peft.tuners.tuners_utils import BaseTunerLayer
from safetensors.torch import load_file, save_file
from torch import nn

from compress.errors import UserInputError
from compress.quant import QuantConfig, QuantizedLinear, quantize_

ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
DEFAULT_ADAPTER = "default"  # peft's name of a model's one adapter set, the one `save_adapters` writes


@dataclass
class AdapterView:
    """What `attach_adapters` did: the modules it adapted and, for a quantized base, which modules it dequantized."""

    adapted: list[str]
    dequantized: list[str]
    quant_config: QuantConfig | None


def dequantize_view(model: nn.Module, dtype: torch.dtype | None = None) -> list[str]:
    """Replace every QuantizedLinear of `model` by a frozen nn.Linear with its dequantized weight (in `dtype`;
    default the dtype of its bias, else float32), in place; returns the replaced module names."""
    names = [name for name, module in model.named_modules() if isinstance(module, QuantizedLinear)]
    for name in names:
        qlinear = model.get_submodule(name)
        bias = qlinear.bias
        weight_dtype = dtype or (bias.dtype if bias is not None else torch.float32)
        linear = nn.Linear(qlinear.in_features, qlinear.out_features, bias is not None, device="meta")
        linear.weight = nn.Parameter(qlinear.dequantized_weight(weight_dtype), requires_grad=False)
        if bias is not None:
            linear.bias = nn.Parameter(bias.detach().to(weight_dtype), requires_grad=False)
        model.set_submodule(name, linear)
    return names


def resolve_targets(model: nn.Module, patterns: list[str]) -> list[str]:
    """Names of the nn.Linear modules matching any fnmatch glob (`*` also matches dots); every pattern must match.
    A Linear that already carries adapters counts under its own name (not its peft base_layer / lora_ parts)."""
    linears = [name.removesuffix(".base_layer") for name, module in model.named_modules()
               if isinstance(module, nn.Linear) and ".lora_" not in name]
    unmatched = [p for p in patterns if not any(fnmatch.fnmatchcase(n, p) for n in linears)]
    if unmatched:
        raise UserInputError(f"lora targets: {unmatched} match no Linear module of {type(model).__name__} "
                             f"(examples of names: {', '.join(linears[:4])})")
    return [n for n in linears if any(fnmatch.fnmatchcase(n, p) for p in patterns)]


def attach_adapters(model: nn.Module, targets: list[str], rank: int, alpha: float, dropout: float = 0.0,
                    quant_config: QuantConfig | None = None, dtype: torch.dtype | None = None,
                    adapter_name: str = DEFAULT_ADAPTER) -> AdapterView:
    """Freeze `model`, dequantize it if it is quantized (`quant_config`: the config it was quantized with),
    and add LoRA adapters (trainable, float32) named `adapter_name` to the Linears matching `targets`, in place.
    A model may carry several named sets (every set stays trainable); `activate_adapter` picks the one that runs."""
    dequantized = _frozen_view(model, quant_config, dtype)
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=resolve_targets(model, targets))
    return AdapterView(_inject(model, config, adapter_name), dequantized, quant_config if dequantized else None)


def _frozen_view(model: nn.Module, quant_config: QuantConfig | None, dtype: torch.dtype | None) -> list[str]:
    dequantized = dequantize_view(model, dtype)
    if dequantized and quant_config is None:
        raise UserInputError("lora: the model is quantized; pass the QuantConfig it was quantized with "
                             "(quantization_config.json of its artifact) so that merging can re-quantize it")
    model.requires_grad_(False)
    return dequantized


def _inject(model: nn.Module, config: LoraConfig, adapter_name: str = DEFAULT_ADAPTER) -> list[str]:
    """Add the adapters of `config`; returns the adapted module names."""
    with warnings.catch_warnings():  # a second named set on one model is what we mean
        warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
        inject_adapter_in_model(config, model, adapter_name=adapter_name)
    for name, param in model.named_parameters():
        if "lora_" in name:
            param.data = param.data.float()
            param.requires_grad_(True)
    return [name for name, module in model.named_modules() if isinstance(module, BaseTunerLayer)]


@contextlib.contextmanager
def adapters_disabled(model: nn.Module):
    """`model` without its LoRA adapters inside the context (the frozen base: the real score). peft's
    `enable_adapters` would also freeze every set and unfreeze only the active one on the way out; here each set
    keeps requires_grad (another set on the same base may be in the middle of its graph)."""
    layers = [m for m in model.modules() if isinstance(m, BaseTunerLayer)]
    for layer in layers:
        layer._disable_adapters = True  # what enable_adapters(False) assigns, without its requires_grad changes
    try:
        yield model
    finally:
        for layer in layers:
            layer._disable_adapters = False


def activate_adapter(model: nn.Module, adapter_name: str) -> None:
    """Make `adapter_name` the set that runs in every adapted layer of `model`. peft's `set_adapter` would also
    freeze the other sets; here every set keeps requires_grad, as the optimizers and DDP / FSDP2 were built with."""
    for layer in model.modules():
        if isinstance(layer, BaseTunerLayer):
            layer._active_adapter = [adapter_name]  # what set_adapter assigns, without its requires_grad changes


def active_adapter(model: nn.Module) -> str | None:
    """The adapter set that runs in `model` (its first adapted layer's), or None without adapters."""
    return next((m.active_adapters[0] for m in model.modules() if isinstance(m, BaseTunerLayer)), None)


def lora_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for name, p in model.named_parameters() if "lora_" in name]


def save_adapters(model: nn.Module, directory: str | Path, base: str | None = None,
                  state_dict: dict[str, torch.Tensor] | None = None) -> Path:
    """The adapters alone (the `default` set), in peft's format: adapter_config.json + adapter_model.safetensors.
    state_dict: the model's tensors when its own are not whole (gathered from FSDP shards); default its own."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = _lora_config(model)
    config.base_model_name_or_path = base
    config.save_pretrained(str(directory))
    state = get_peft_model_state_dict(model, state_dict, save_embedding_layers=False)
    state = {k: v.detach().contiguous() for k, v in state.items()}
    save_file(state, directory / ADAPTER_WEIGHTS, metadata={"format": "pt"})
    return directory


def load_adapters(model: nn.Module, directory: str | Path, quant_config: QuantConfig | None = None) -> AdapterView:
    """Attach the adapters saved by `save_adapters` to a fresh copy of their base model, in place."""
    directory = Path(directory)
    for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
        if not (directory / name).is_file():
            raise UserInputError(f"{directory}: no {name}; not a LoRA adapter directory")
    dequantized = _frozen_view(model, quant_config, None)
    view = AdapterView(_inject(model, LoraConfig.from_pretrained(str(directory))), dequantized,
                       quant_config if dequantized else None)
    result = set_peft_model_state_dict(model, load_file(directory / ADAPTER_WEIGHTS))
    if getattr(result, "unexpected_keys", None):
        raise UserInputError(f"{directory / ADAPTER_WEIGHTS}: tensors for modules the model lacks: "
                             f"{result.unexpected_keys[:4]}")
    return view


def check_mergeable(quant_config: QuantConfig | None, requantize: bool) -> None:
    """Refuse to merge into a quantized base without quantizing again (call it before training, too)."""
    if quant_config is not None and not requantize:
        raise UserInputError(
            f"lora merge: the base is quantized ({quant_config.scheme}); merged weights are no longer on its "
            "quantization grid, so merging needs requantize: true (merge, then quantize again with the base's "
            "QuantConfig), or merge: false to keep only the adapters")


def merge_adapters(model: nn.Module, view: AdapterView, requantize: bool = True) -> nn.Module:
    """Fold every LoRA adapter into its base weight and remove it, in place. A base that was quantized is
    quantized again with its own QuantConfig (`requantize`); merging into it without doing so is refused."""
    check_mergeable(view.quant_config, requantize)
    for name, module in list(model.named_modules()):
        if isinstance(module, BaseTunerLayer) and isinstance(module.get_base_layer(), nn.Linear):
            module.merge()
            model.set_submodule(name, module.get_base_layer())
    del model.peft_config  # no adapters are left
    if view.quant_config is not None:
        report = quantize_(model, view.quant_config)
        if sorted(report.quantized) != sorted(view.dequantized):
            raise ValueError(f"re-quantizing selected other layers than the base had quantized: "
                             f"{sorted(set(report.quantized) ^ set(view.dequantized))[:4]}")
    return model


def _lora_config(model: nn.Module) -> LoraConfig:
    configs = getattr(model, "peft_config", {})
    if DEFAULT_ADAPTER not in configs:
        raise ValueError(f"{type(model).__name__} has no LoRA adapters attached")
    return configs[DEFAULT_ADAPTER]
