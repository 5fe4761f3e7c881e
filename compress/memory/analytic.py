"""Analytic memory model: bytes from the config and the shapes alone.

The DiT model follows what our lean forward (compress.models.s2v, the default memory mode) keeps alive,
tensor by tensor, at its candidate peaks; tests hold it to the fake-tensor simulation. The plain forward is
simulated or measured only; `upstream_activations` is teacher.md's figure for upstream's code.
Sizes are in bytes; u = B x L x D, one element per token and channel of the whole sequence.
"""

from __future__ import annotations

import torch

from compress.models.s2v.chunks import DEFAULT_CHUNK_SIZE
from compress.models.s2v.motion import MOTION_FRAMES
from compress.quant.schemes import get_scheme

from .workload import Item, token_counts

# umT5-XXL encoder geometry (teacher.md) and the text length the pipeline pads prompts to
_T5_HEADS, _T5_DIM, _T5_FFN, _T5_TOKENS = 64, 4096, 10240, 512
_AUDIO_RATE, _W2V_CONV0, _W2V_DIM, _W2V_HEADS, _W2V_LAYERS = 16000, 512, 1024, 16, 25
# Working set of the Wan2.1 VAE decoder (diffusers AutoencoderKLWan, causal chunked decode) per output
# pixel, without the decoded frames themselves: the full-resolution stage's activations and its causal
# conv caches. Calibrated on simulate.vae_decode (tests/memory check the agreement).
_VAE_BYTES_PER_PIXEL = {torch.float32: 19474, torch.bfloat16: 10123, torch.float16: 10123}


def linear_extra(scheme: str | None, m: int, k: int, n: int, c: int, out: int) -> int:
    """Bytes an (m x k) @ (k x n) Linear of our quant kernels holds while it runs, its output `out` included."""
    if scheme is None:
        return out
    quant = get_scheme(scheme)
    if quant.kernel == "dequantize":  # fp32 copy and product, then the weight in compute dtype
        return max(8 * n * k, c * n * k + out)
    q = quant.bytes_per_parameter  # the quantized activations (and int8_mm's contiguous weight copy)
    quant_x = ((0 if c == 4 else 4) + 4 + q) * m * k  # x.float(), x / scale, and the quantized copy
    if quant.kernel == "fp8_scaled_mm":  # scaled matmul output, then + bias
        return max(quant_x, q * m * k + out, 2 * out)
    return max(quant_x, q * (m * k + n * k) + 8 * m * n, 4 * m * n + out)  # int8_mm: int32 output, fp32 rescale


def _block_points(spec, i: int, u: int, c: int, n: int, multi_span: bool) -> dict[str, dict[str, int]]:
    """Candidate peaks inside lean block i, {where: {term: bytes}}, above what the whole forward keeps (the
    residual stream among it). n = batch x tokens of the largest span (ffn_chunk_size); u as above."""
    cfg = spec.config
    d, ffn = cfg["num_attention_heads"] * cfg["attention_head_dim"], cfg["ffn_dim"]
    f32 = 0 if c == 4 else 4  # a .float() copy, free when the compute dtype is float32
    s = n * d  # one span of token x channel elements
    extra = lambda name, k, out_features: linear_extra(  # noqa: E731
        spec.linear_scheme(f"blocks.{i}.{name}"), n, k, out_features, c, c * n * out_features)
    kv = {"self-attention keys and values": 2 * c * u}
    span_in = {"span input (modulated, compute dtype)": c * s}
    rope = {"span queries (q-norm output)": c * s, "span RoPE transient (fp32 copy, halves, stacked)": (f32 + 8) * s}
    return {
        f"blocks.{i}: self-attention keys, values of a span": {
            **(kv if multi_span else {}), **span_in, "span keys": c * s,
            "attn1.to_v working set": extra("attn1.to_v", d, d)},
        f"blocks.{i}: self-attention query projection": {**kv, **span_in,
                                                         "attn1.to_q working set": extra("attn1.to_q", d, d)},
        f"blocks.{i}: self-attention query norm": {**kv, **span_in,
                                                   "span q-norm transient": (c + f32 + 4 + c) * s},
        f"blocks.{i}: self-attention RoPE": {**kv, **span_in, **rope},
        f"blocks.{i}: self-attention output projection": {
            **kv, "span queries and attention output (+ flattened copy)": 2 * c * s,
            "attn1.to_out working set": extra("attn1.to_out.0", d, d)},
        f"blocks.{i}: self-attention gate": {**kv, "span queries and projected output": 2 * c * s,
                                             "gated output (parts + concatenated, fp32)": 8 * s},
        f"blocks.{i}: FFN up-projection": {**span_in, "ffn up-projection working set": extra("ffn.net.0.proj", d, ffn)},
        f"blocks.{i}: FFN activation": {**span_in, "span FFN intermediate (projection + GELU)": 2 * c * n * ffn},
        f"blocks.{i}: FFN down-projection": {**span_in, "span FFN intermediate (GELU)": c * n * ffn,
                                             "ffn down-projection working set": extra("ffn.net.2", ffn, d)},
    }


def dit_activations(spec, batch: int, latent_frames: int, latent_hw: tuple[int, int], motion: bool,
                    chunk_size: int = DEFAULT_CHUNK_SIZE) -> list[Item]:
    """Activation bytes of one lean DiT forward of our model at its peak, as labelled terms."""
    cfg, t = spec.config, spec.tensors
    d, head_dim = cfg["num_attention_heads"] * cfg["attention_head_dim"], cfg["attention_head_dim"]
    c = spec.compute_dtype.itemsize
    a = t["audio_encoder.layer_weights"][1].itemsize
    ct = t["condition_embedder.text_embedder.linear_1.bias"][1].itemsize
    h, w = latent_hw
    tokens = token_counts(latent_frames, h, w, motion)
    B, L, F = batch, tokens["total"], latent_frames
    u = B * L * d
    audio_steps = F + MOTION_FRAMES
    audio_local = B * (audio_steps if a == c else F) * (cfg["num_audio_tokens"] + 1) * d * c
    inputs = {"inputs (latents, audio features, text)": c * B * (
        cfg["in_channels"] * (F + 1 + MOTION_FRAMES * motion) * h * w + cfg["pose_channels"] * F * h * w
        + cfg["num_audio_layers"] * cfg["audio_dim"] * 4 * F + cfg["text_len"] * cfg["text_dim"]) + 4 * B}
    # the audio encoder runs first: its padded input, weighted and normalised (matters only for tiny sizes)
    audio_in = B * cfg["num_audio_layers"] * cfg["audio_dim"] * (4 * audio_steps - 3) * a
    best, where = {**inputs, "audio encoder layer average (3 copies)": 3 * audio_in}, "audio_encoder"
    kept = {  # alive from the token embedding to the head
        **inputs,
        "residual stream (fp32)": 4 * u,
        "RoPE cos/sin, positions, segment ids": 4 * L * head_dim + 32 * L,
        "text, audio and time conditioning": (B * cfg["text_len"] * (cfg["text_dim"] * ct + d * c) + audio_local
                                              + B * audio_steps * d * a + 4 * (B + 1) * d + 96 * B * d),
    }
    span = min(chunk_size, L)
    for i in range(cfg["num_layers"]):
        for point, terms in _block_points(spec, i, u, c, B * span, span < L).items():
            if sum(kept.values()) + sum(terms.values()) > sum(best.values()):
                best, where = {**kept, **terms}, point
    first = next(name for name in best if name not in kept)  # the first term of the peak's own working set
    return [Item(name, size, "analytic", "activations", note=f"peak at {where}" if name == first else "")
            for name, size in best.items()]


def upstream_activations(spec, batch: int, latent_frames: int, latent_hw: tuple[int, int], motion: bool) -> list[Item]:
    """Upstream WanModel_S2V's forward: ~58 x L x D bytes (teacher.md's fake-tensor profile, bf16)."""
    d = spec.config["num_attention_heads"] * spec.config["attention_head_dim"]
    tokens = token_counts(latent_frames, *latent_hw, motion)["total"]
    return [Item("activations (upstream forward, 58 x L x D bytes)", 58 * batch * tokens * d, "analytic",
                 "activations", note="upstream model: complex128 RoPE, fp32 residual copies, unreleased locals")]


def kv_cache_bytes(spec, batch: int, tokens: int) -> int:
    """Keys and values of every block for `tokens` cached tokens, in the compute dtype."""
    cfg = spec.config
    d = cfg["num_attention_heads"] * cfg["attention_head_dim"]
    return cfg["num_layers"] * 2 * batch * tokens * d * spec.compute_dtype.itemsize


def vae_decode_bytes(width: int, height: int, latent_frames: int, dtype: torch.dtype) -> int:
    """Peak of a Wan2.1 VAE decode above its weights: working set plus the decoded frames."""
    pixel_frames = 4 * latent_frames - 3
    return width * height * (_VAE_BYTES_PER_PIXEL[dtype] + 3 * pixel_frames * dtype.itemsize)


def text_encoder_bytes(dtype: torch.dtype) -> int:
    """umT5-XXL on one padded prompt: fp32 attention scores, bias and softmax; gated FFN; fp32 hidden copies."""
    return 3 * _T5_HEADS * _T5_TOKENS**2 * 4 + 3 * _T5_TOKENS * _T5_FFN * dtype.itemsize + 3 * _T5_TOKENS * _T5_DIM * 4


def audio_encoder_bytes(seconds: float) -> int:
    """wav2vec2-large in fp32: the first conv's output, norm and GELU; the 25 kept hidden states; attention."""
    samples = int(seconds * _AUDIO_RATE)
    steps = samples // 320
    return (3 * _W2V_CONV0 * (samples // 5) * 4 + _W2V_LAYERS * steps * _W2V_DIM * 4
            + 2 * _W2V_HEADS * steps**2 * 4)
