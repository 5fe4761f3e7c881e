"""LiveAvatar's LoRA file, both ways: load it into our DiT (merged, or as peft adapters), write ours in its format.

What LiveAvatar's code expects (Alibaba-Quark/LiveAvatar, `WanS2V.add_lora_to_model` in
liveavatar/models/wan/causal_s2v_pipeline.py, and liveavatar/configs/s2v_causal_sft.yaml): peft's
`LoraConfig(r=128, lora_alpha=64, target_modules="q,k,v,o,ffn.0,ffn.2")` on the native `WanModel_S2V` module names
(peft adapts every Linear whose name ends in `.q` ... `.ffn.2`: self- and text cross-attention and FFN of each block,
and the audio injectors' attention), then `model.load_state_dict(file, strict=False)` and `merge_and_unload()`.
The file (`liveavatar.safetensors`; their trainer's checkpoints are `.pt` dicts) holds the peft model's parameter
names, `base_model.model.blocks.0.self_attn.q.lora_A.default.weight` ([r, in]) and `...lora_B.default.weight`
([out, r]); their loader adds the `base_model.model.` prefix when the first key lacks it. Rank and alpha are not in
the file: they come from the training config (alpha/r scales B @ A). Their loader ignores keys it does not know
(strict=False), so this module refuses them instead, naming each.

Module names go through `keymap` (native `blocks.0.self_attn.q` <-> our `blocks.0.attn1.to_q`); the same pairs
travel as peft adapters in our format (`adapter_config.json` + `adapter_model.safetensors`, what
`compress.distill.lora_adapters.save_adapters` writes and `load_adapters` reads).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model, set_peft_model_state_dict
from peft.utils import CONFIG_NAME as PEFT_CONFIG, SAFETENSORS_WEIGHTS_NAME as PEFT_WEIGHTS
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from compress.errors import UserInputError

from .keymap import native_to_ours, ours_to_native

LIVEAVATAR_ALPHA = 64.0
LIVEAVATAR_TARGETS = ("q", "k", "v", "o", "ffn.0", "ffn.2")
PEFT_PREFIX = "base_model.model."  # what get_peft_model puts before every parameter name
_LIVEAVATAR_KEY = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<part>[AB])\.default\.weight$")
_PEFT_KEY = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<part>[AB])(?:\.default)?\.weight$")
_SHOWN = 6  # offending names listed in an error


@dataclass
class LoraWeights:
    """Low-rank updates on our module names: W' = W + alpha / rank * B @ A, with A [rank, in] and B [out, rank]."""

    pairs: dict[str, tuple[torch.Tensor, torch.Tensor]]  # our module name -> (A, B)
    rank: int
    alpha: float
    origin: str = ""  # the file or directory they came from, for messages

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    def num_parameters(self) -> int:
        return sum(a.numel() + b.numel() for a, b in self.pairs.values())

    def delta(self, module: str) -> torch.Tensor:
        """The update of one module's weight, in float32."""
        a, b = self.pairs[module]
        return self.scale * (b.float() @ a.float())


def is_liveavatar_target(native_module: str) -> bool:
    """Whether LiveAvatar's peft config adapts this native module (peft's rule: the name is, or ends in `.`+, a
    target)."""
    return any(native_module == t or native_module.endswith("." + t) for t in LIVEAVATAR_TARGETS)


def liveavatar_modules(model: nn.Module) -> list[str]:
    """Our names of the Linears LiveAvatar's LoRA adapts in `model` (their native names are LiveAvatar's targets)."""
    return [name for name, module in model.named_modules()
            if isinstance(module, nn.Linear) and is_liveavatar_target(_native_module(name) or "")]


# ---- reading ---------------------------------------------------------------------------------------


def read_liveavatar_lora(path: str | Path, alpha: float | None = None) -> LoraWeights:
    """A LiveAvatar-format LoRA file (.safetensors, or a .pt/.pth/.bin dict of tensors) on our module names.
    `alpha`: the training config's lora_alpha (default: the file's metadata written by `write_liveavatar_lora`, else
    LiveAvatar's 64); the rank is read from the shapes."""
    path = Path(path)
    tensors, metadata = _read_tensors(path)
    grouped, bad = _group(tensors, _LIVEAVATAR_KEY)
    if bad:
        raise UserInputError(f"{path}: not in LiveAvatar's LoRA format ([base_model.model.]<module>.lora_A|lora_B"
                             f".default.weight, in pairs): {_listed(bad)}")
    unknown = sorted(m for m in grouped if native_to_ours(m + ".weight") is None)
    if unknown:
        raise UserInputError(f"{path}: LoRA on modules Wan2.2-S2V does not have (native names expected, e.g. "
                             f"blocks.0.self_attn.q): {_listed(unknown)}")
    untargeted = sorted(m for m in grouped if not is_liveavatar_target(m))
    if untargeted:
        raise UserInputError(f"{path}: LoRA on modules outside LiveAvatar's targets ({','.join(LIVEAVATAR_TARGETS)})"
                             f", which its loader would ignore: {_listed(untargeted)}")
    pairs = {_our_module(m): ab for m, ab in grouped.items()}
    if alpha is None:
        alpha = _metadata_alpha(metadata, path)
    return LoraWeights(pairs, _one_rank(grouped, path), alpha, str(path))


def _metadata_alpha(metadata: dict[str, str], path: Path) -> float:
    try:
        return float(metadata.get("lora_alpha", LIVEAVATAR_ALPHA))
    except ValueError:
        raise UserInputError(f"{path}: metadata lora_alpha={metadata['lora_alpha']!r} is not a number") from None


def read_peft_adapters(directory: str | Path) -> LoraWeights:
    """Adapters in peft's format on our module names (a `save_adapters` directory)."""
    directory = Path(directory)
    for name in (PEFT_CONFIG, PEFT_WEIGHTS):
        if not (directory / name).is_file():
            raise UserInputError(f"{directory}: no {name}; not a LoRA adapter directory")
    config = LoraConfig.from_pretrained(str(directory))
    return _from_peft(config, load_file(directory / PEFT_WEIGHTS), str(directory))


def adapters_of(model: nn.Module) -> LoraWeights:
    """The peft adapters attached to a live model (as `attach_adapters` or `apply_lora(merge=False)` leave them)."""
    configs = getattr(model, "peft_config", {})
    if "default" not in configs:
        raise UserInputError(f"{type(model).__name__} has no LoRA adapters attached")
    state = get_peft_model_state_dict(model, save_embedding_layers=False)
    return _from_peft(configs["default"], {k: v.detach() for k, v in state.items()}, type(model).__name__)


def _from_peft(config: LoraConfig, tensors: dict[str, torch.Tensor], origin: str) -> LoraWeights:
    unsupported = [f"{field}={getattr(config, field)!r}" for field, plain in
                   (("use_rslora", False), ("use_dora", False), ("lora_bias", False), ("fan_in_fan_out", False))
                   if getattr(config, field, plain) != plain]
    patterns = {**config.rank_pattern, **config.alpha_pattern}
    if unsupported or patterns:
        raise UserInputError(f"{origin}: LiveAvatar's format holds plain LoRA with one rank and alpha; these "
                             f"adapters have {', '.join(unsupported) or f'per-module ranks/alphas {patterns}'}")
    grouped, bad = _group(tensors, _PEFT_KEY)
    if bad:
        raise UserInputError(f"{origin}: tensors that are not LoRA A/B weights: {_listed(bad)}")
    rank = _one_rank(grouped, origin)
    if rank != config.r:
        raise UserInputError(f"{origin}: the weights have rank {rank}, the adapter config says r={config.r}")
    return LoraWeights(grouped, rank, float(config.lora_alpha), origin)


def _read_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    if not path.is_file():
        raise UserInputError(f"{path}: no such LoRA file")
    if path.suffix == ".safetensors":
        try:
            with safe_open(str(path), framework="pt") as f:
                return {k: f.get_tensor(k) for k in f.keys()}, f.metadata() or {}
        except SafetensorError as err:
            raise UserInputError(f"{path}: not a readable safetensors file ({err})") from None
    if path.suffix in (".pt", ".pth", ".bin", ".ckpt"):
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises many types for damaged or unsafe pickles
            raise UserInputError(f"{path}: not a loadable tensor dict ({type(err).__name__}: {err})") from None
        if not (isinstance(data, dict) and all(isinstance(v, torch.Tensor) for v in data.values())):
            raise UserInputError(f"{path}: expected a dict of tensors (name -> tensor); found {type(data).__name__}")
        return data, {}
    raise UserInputError(f"{path}: expected a .safetensors or .pt/.pth/.bin/.ckpt file (LiveAvatar's formats)")


def _group(tensors: dict[str, torch.Tensor], pattern: re.Pattern):
    """({module: (A, B)}, keys the pattern refuses); a module with only A or only B is refused too."""
    parts: dict[str, dict[str, torch.Tensor]] = {}
    bad = []
    for key, tensor in tensors.items():
        match = pattern.match(key)
        if match is None or tensor.ndim != 2:
            bad.append(key if match is None else f"{key} ({tensor.ndim}-D, expected 2-D)")
            continue
        parts.setdefault(match["module"], {})[match["part"]] = tensor
    bad += [f"{m}.lora_{'B' if 'A' in p else 'A'} (missing; its pair is present)" for m, p in parts.items()
            if len(p) != 2]
    return {m: (p["A"], p["B"]) for m, p in parts.items() if len(p) == 2}, bad


def _one_rank(grouped: dict[str, tuple[torch.Tensor, torch.Tensor]], origin) -> int:
    if not grouped:
        raise UserInputError(f"{origin}: holds no LoRA weights")
    mismatched = [f"{m} (A {tuple(a.shape)}, B {tuple(b.shape)})" for m, (a, b) in grouped.items()
                  if a.shape[0] != b.shape[1]]
    if mismatched:
        raise UserInputError(f"{origin}: lora_A's rows and lora_B's columns (the rank) differ: {_listed(mismatched)}")
    ranks = sorted({a.shape[0] for a, _ in grouped.values()})
    if len(ranks) != 1:
        raise UserInputError(f"{origin}: modules have ranks {ranks}; LiveAvatar's loader takes one rank")
    return ranks[0]


# ---- writing ---------------------------------------------------------------------------------------


def write_liveavatar_lora(lora: LoraWeights, path: str | Path, dtype: torch.dtype = torch.bfloat16) -> Path:
    """`lora` as a LiveAvatar-format safetensors file, keys as their trainer names them, tensors in `dtype` (bf16,
    as their bf16 trainer holds them; their loader casts on load, so float32 loads too and keeps every bit). Rank
    and alpha travel in the metadata for `read_liveavatar_lora`; LiveAvatar reads them from its training config
    (lora_rank / lora_alpha), which must say the same."""
    native = {m: _native_module(m) for m in lora.pairs}
    unknown = sorted(m for m, n in native.items() if n is None)
    if unknown:
        raise UserInputError(f"{lora.origin}: modules without a Wan2.2-S2V name: {_listed(unknown)}")
    untargeted = sorted(m for m, n in native.items() if not is_liveavatar_target(n))
    if untargeted:
        raise UserInputError(f"{lora.origin}: LiveAvatar adapts only {','.join(LIVEAVATAR_TARGETS)}; its loader "
                             f"would silently ignore the adapters on {_listed(untargeted)}")
    tensors = {}
    for module, (a, b) in sorted(lora.pairs.items()):
        stem = f"{PEFT_PREFIX}{native[module]}"
        tensors[f"{stem}.lora_A.default.weight"] = a.detach().to(dtype).contiguous()
        tensors[f"{stem}.lora_B.default.weight"] = b.detach().to(dtype).contiguous()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, path, metadata={"format": "pt", "lora_rank": str(lora.rank), "lora_alpha": repr(lora.alpha),
                                       "lora_target_modules": ",".join(LIVEAVATAR_TARGETS)})
    return path


def write_peft_adapters(lora: LoraWeights, directory: str | Path, base: str | None = None) -> Path:
    """`lora` in peft's format, as `save_adapters` writes it (`load_adapters` attaches it to our DiT)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    LoraConfig(r=lora.rank, lora_alpha=lora.alpha, target_modules=sorted(lora.pairs),
               base_model_name_or_path=base).save_pretrained(str(directory))
    tensors = {}
    for module, (a, b) in lora.pairs.items():
        tensors[f"{module}.lora_A.weight"] = a.detach().contiguous()
        tensors[f"{module}.lora_B.weight"] = b.detach().contiguous()
    save_file(tensors, directory / PEFT_WEIGHTS, metadata={"format": "pt"})
    return directory


# ---- applying --------------------------------------------------------------------------------------


def apply_lora(model: nn.Module, lora: LoraWeights, merge: bool = True) -> list[str]:
    """Merge `lora` into `model`'s weights (W += alpha/r * B @ A, as LiveAvatar's merge_and_unload does), or attach
    it as peft adapters (float32, unmerged); in place. Returns the adapted module names."""
    check_fits(model, lora)
    if merge:
        with torch.no_grad():
            for name in lora.pairs:
                weight = model.get_submodule(name).weight
                weight.add_(lora.delta(name).to(device=weight.device, dtype=weight.dtype))
        return sorted(lora.pairs)
    inject_adapter_in_model(LoraConfig(r=lora.rank, lora_alpha=lora.alpha, target_modules=sorted(lora.pairs)), model)
    state = {f"{m}.lora_{part}.weight": t.float() for m, ab in lora.pairs.items() for part, t in zip("AB", ab)}
    result = set_peft_model_state_dict(model, state)
    if result.unexpected_keys:
        raise UserInputError(f"{lora.origin}: adapters the model did not take: {_listed(result.unexpected_keys)}")
    for name, param in model.named_parameters():
        if "lora_" in name:
            param.data = param.data.float()
    return sorted(lora.pairs)


def check_fits(model: nn.Module, lora: LoraWeights) -> None:
    """Every LoRA module is a plain Linear of `model` with matching shapes; otherwise one error naming each."""
    problems = []
    modules = dict(model.named_modules())
    for name, (a, b) in sorted(lora.pairs.items()):
        module = modules.get(name)
        shown = _native_module(name) or name
        if not isinstance(module, nn.Linear):
            found = "absent" if module is None else type(module).__name__
            problems.append(f"{shown} ({name}): {found}, not a Linear of {type(model).__name__}")
            continue
        expected = {"lora_A": (lora.rank, module.in_features), "lora_B": (module.out_features, lora.rank)}
        for part, tensor in (("lora_A", a), ("lora_B", b)):
            if tuple(tensor.shape) != expected[part]:
                problems.append(f"{shown}.{part}: shape {tuple(tensor.shape)}, expected {expected[part]} (Linear "
                                f"{module.in_features}->{module.out_features}, rank {lora.rank})")
    if problems:
        raise UserInputError(f"{lora.origin}: does not fit {type(model).__name__}: " + "; ".join(problems[:_SHOWN])
                             + (f"; and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else ""))


# ---- names -----------------------------------------------------------------------------------------


def _our_module(native_module: str) -> str:
    return native_to_ours(native_module + ".weight").removesuffix(".weight")


def _native_module(our_module: str) -> str | None:
    native = ours_to_native(our_module + ".weight")
    return native.removesuffix(".weight") if native else None


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f", and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")
