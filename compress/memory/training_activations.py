"""Analytic activations of a training forward and backward of the S2V DiT with LoRA adapters.

What autograd saves, tensor by tensor, when only LoRA adapters train (their base Linears frozen) under bf16
autocast with float32 adapters (compress.distill.lora_adapters): a frozen Linear saves nothing of its input,
an adapted one saves the bf16 copy of it that its float32 adapter's autocast matmul makes, plus the adapter's
rank-r output; norms save their float32 inputs, attention its queries, keys, values and output, GELU its
input, the residual stream its float32 copies between sub-layers. With block checkpointing (our model's
`gradient_checkpointing`, per DiT block) a block keeps only its input, and the backward recomputes one block
at a time; the audio injectors run outside the checkpointed blocks and keep what they save.
Tests hold these terms to a fake-tensor training step of the real model code (training_simulate.py).
"""

from __future__ import annotations

import fnmatch
import functools
import json

from .analytic import dit_activations
from .workload import Item, token_counts

# the terms of analytic.dit_activations alive for the whole forward outside the blocks
_KEPT = ("inputs (latents, audio features, text)", "RoPE cos/sin, positions, segment ids",
         "text, audio and time conditioning")
_GRADIENT_BUFFERS = 3  # float32 gradients of the residual stream alive at once in a block's backward


def adapted_linears(spec, targets: list[str] | tuple[str, ...]) -> dict[str, tuple[int, int]]:
    """{Linear name: (in_features, out_features)} of the Linears of `spec` that LoRA `targets` (fnmatch globs,
    compress.distill's syntax) adapt; a quantized spec's quantized Linears count as Linears (LoRA trains over
    their dequantized view)."""
    return dict(_adapted(spec.model_class, json.dumps(spec.config, sort_keys=True), tuple(targets)))


@functools.lru_cache(maxsize=16)
def _adapted(model_class, config: str, targets: tuple[str, ...]) -> tuple:
    from torch import nn

    from compress.models.auto import meta_model

    return tuple((name, (m.in_features, m.out_features)) for name, m in
                 meta_model(model_class, json.loads(config)).named_modules()
                 if isinstance(m, nn.Linear) and any(fnmatch.fnmatchcase(name, p) for p in targets))


def lora_parameters(adapted: dict[str, tuple[int, int]], rank: int) -> int:
    return sum(rank * (k + n) for k, n in adapted.values())


def lora_weight_copies(spec, adapted: dict[str, tuple[int, int]], rank: int) -> Item:
    """Autocast's compute-dtype copies of the float32 adapter weights, cached for the whole forward (and kept
    by autograd for the backward)."""
    return Item("autocast copies of the LoRA weights", spec.compute_dtype.itemsize * lora_parameters(adapted, rank),
                "analytic", "activations", note="bf16 casts of the float32 adapters, held while the graph lives")


class _Shapes:
    """Sizes of one training forward: tokens, widths, dtype bytes."""

    def __init__(self, spec, batch: int, latent_frames: int, latent_hw: tuple[int, int], motion: bool):
        cfg = spec.config
        counts = token_counts(latent_frames, *latent_hw, motion)
        self.n, self.m = batch * counts["total"], batch * counts["noisy"]  # all tokens, noisy tokens
        self.text = batch * cfg["text_len"]
        self.audio = batch * latent_frames * cfg["num_audio_tokens"]
        self.d, self.ffn = cfg["num_attention_heads"] * cfg["attention_head_dim"], cfg["ffn_dim"]
        self.c = spec.compute_dtype.itemsize
        self.inject = list(cfg.get("audio_inject_layers") or [])


def _lora(adapted, rank: int, c: int, module: str, tokens: int) -> int:
    """An adapted Linear's saved bf16 input copy and rank-r output; 0 for a frozen one."""
    if module not in adapted:
        return 0
    return c * tokens * (adapted[module][0] + rank)


def block_terms(s: _Shapes, i: int, adapted, rank: int) -> dict[str, int]:
    """What block i saves for its backward (its input excluded), {term: bytes}."""
    n, d, c = s.n, s.d, s.c
    lora = lambda name, tokens: _lora(adapted, rank, c, f"blocks.{i}.{name}", tokens)  # noqa: E731
    return {
        "self-attention: q, k norm inputs (fp32)": 8 * n * d,
        "self-attention: q, k, v, output": 4 * c * n * d,
        "residual after self-attention (fp32)": 4 * n * d,
        "cross-attention: q norm input (fp32), q, output": (4 + 2 * c) * n * d,
        "cross-attention: text keys and values": (4 + 2 * c) * s.text * d,
        "residual after cross-attention (fp32)": 4 * n * d,
        "FFN up-projection output (GELU input)": c * n * s.ffn,
        "LoRA: bf16 input copies and rank-r outputs": sum(
            lora(name, n) for name in ("attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0", "attn2.to_q",
                                       "attn2.to_out.0", "ffn.net.0.proj", "ffn.net.2"))
        + lora("attn2.to_k", s.text) + lora("attn2.to_v", s.text),
    }


def injector_terms(s: _Shapes, j: int, adapted, rank: int) -> dict[str, int]:
    """What audio injector j saves: the block output it normalises, then attention over the noisy tokens."""
    m, d, c = s.m, s.d, s.c
    lora = lambda name, tokens: _lora(adapted, rank, c, f"audio_injectors.{j}.{name}", tokens)  # noqa: E731
    return {
        "injector: block output (fp32, its norm's input)": 4 * s.n * d,
        "injector: q norm input (fp32), q, output": (4 + 2 * c) * m * d + (4 + 2 * c) * s.audio * d,
        "injector LoRA: bf16 input copies and rank-r outputs": lora("attn.to_q", m) + lora("attn.to_out.0", m)
        + lora("attn.to_k", s.audio) + lora("attn.to_v", s.audio),
    }


def without_inputs(items: list[Item]) -> list[Item]:
    """A no-grad forward's activations run on inputs that are already held (the generator's, for a score)."""
    return [item for item in items if item.name != _KEPT[0]]


def _kept(spec, batch, latent_frames, latent_hw, motion) -> dict[str, int]:
    items = {i.name: i.bytes for i in dit_activations(spec, batch, latent_frames, latent_hw, motion)}
    missing = [name for name in _KEPT if name not in items]
    if missing:
        raise RuntimeError(f"analytic.dit_activations no longer names {missing}: update training_activations._KEPT")
    return {name: items[name] for name in _KEPT}


def _total(terms: dict[str, int]) -> int:
    return sum(terms.values())


def training_activations(spec, adapted, rank: int, batch: int, latent_frames: int, latent_hw: tuple[int, int],
                         motion: bool, checkpointing: bool) -> tuple[list[Item], list[Item]]:
    """(saved, backward): the labelled bytes one forward with grad keeps for its backward, and the extra
    working set of the backward at its peak (the recomputed block with checkpointing, gradient buffers)."""
    s = _Shapes(spec, batch, latent_frames, latent_hw, motion)
    layers = spec.config["num_layers"]
    residual = 4 * s.n * s.d
    blocks = [_total(block_terms(s, i, adapted, rank)) for i in range(layers)]
    injectors = {block: _total(injector_terms(s, j, adapted, rank)) for j, block in enumerate(s.inject)}
    saved = dict(_kept(spec, batch, latent_frames, latent_hw, motion))
    if checkpointing:
        saved[f"block inputs held for recomputation ({layers} x fp32 residual)"] = layers * residual
    else:
        saved[f"block activations ({layers} blocks)"] = (layers - 1) * residual + sum(blocks)
    if injectors:
        saved[f"audio injectors ({len(injectors)}, not checkpointed)"] = sum(injectors.values())
    saved["final residual (the head's norm input)"] = residual
    note = "analytic: what autograd saves in our forward (training_activations.py)"
    backward = {f"gradient buffers ({_GRADIENT_BUFFERS} x fp32 residual)": _GRADIENT_BUFFERS * residual}
    if checkpointing:
        backward["one block recomputed (its saved activations)"] = max(blocks)
    saved_items = [Item(k, v, "analytic", "activations", note if k == _KEPT[0] else "") for k, v in saved.items()]
    return ([*saved_items, lora_weight_copies(spec, adapted, rank)],
            [Item(k, v, "analytic", "activations") for k, v in backward.items()])
