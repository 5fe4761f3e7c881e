"""Native (upstream `WanModel_S2V`, release checkpoint) <-> our parameter names and config keys."""

from __future__ import annotations

import re
from importlib.metadata import version

_ATTN = [("q.", "to_q."), ("k.", "to_k."), ("v.", "to_v."), ("o.", "to_out.0."), ("norm_q.", "norm_q."),
         ("norm_k.", "norm_k.")]
_CONVS = ("conv1_local", "conv1_global", "conv2", "conv3")

# (native, ours); "{i}" is a block or injector index; a trailing "." matches any rest of the name
_PAIRS = [
    ("patch_embedding.", "patch_embedding."),
    ("cond_encoder.", "pose_embedding."),
    ("trainable_cond_mask.", "segment_embedding."),
    ("text_embedding.0.", "condition_embedder.text_embedder.linear_1."),
    ("text_embedding.2.", "condition_embedder.text_embedder.linear_2."),
    ("time_embedding.0.", "condition_embedder.time_embedder.linear_1."),
    ("time_embedding.2.", "condition_embedder.time_embedder.linear_2."),
    ("time_projection.1.", "condition_embedder.time_proj."),
    ("head.head.", "proj_out."),
    ("head.modulation", "scale_shift_table"),
    ("frame_packer.proj.", "frame_packer.proj_1x."),
    ("frame_packer.proj_2x.", "frame_packer.proj_2x."),
    ("frame_packer.proj_4x.", "frame_packer.proj_4x."),
    ("casual_audio_encoder.weights", "audio_encoder.layer_weights"),
    ("casual_audio_encoder.encoder.padding_tokens", "audio_encoder.padding_tokens"),
    ("casual_audio_encoder.encoder.final_linear.", "audio_encoder.final_linear."),
    *[(f"casual_audio_encoder.encoder.{c}.conv.", f"audio_encoder.{c}.") for c in _CONVS],
    ("audio_injector.injector_adain_layers.{i}.linear.", "audio_injectors.{i}.norm.linear."),
    *[(f"audio_injector.injector.{{i}}.{a}", f"audio_injectors.{{i}}.attn.{b}") for a, b in _ATTN],
    ("blocks.{i}.modulation", "blocks.{i}.scale_shift_table"),
    ("blocks.{i}.norm3.", "blocks.{i}.norm2."),
    ("blocks.{i}.ffn.0.", "blocks.{i}.ffn.net.0.proj."),
    ("blocks.{i}.ffn.2.", "blocks.{i}.ffn.net.2."),
    *[(f"blocks.{{i}}.self_attn.{a}", f"blocks.{{i}}.attn1.{b}") for a, b in _ATTN],
    *[(f"blocks.{{i}}.cross_attn.{a}", f"blocks.{{i}}.attn2.{b}") for a, b in _ATTN],
]


def _compile(pattern: str) -> re.Pattern:
    body = re.escape(pattern).replace(r"\{i\}", r"(?P<i>\d+)")
    return re.compile("^" + body + ("(?P<rest>.+)$" if pattern.endswith(".") else "$"))


def _fill(template: str, match: re.Match) -> str:
    groups = match.groupdict()
    return template.replace("{i}", groups.get("i") or "") + (groups.get("rest") or "")


_TO_OURS = [(_compile(n), o) for n, o in _PAIRS]
_TO_NATIVE = [(_compile(o), n) for n, o in _PAIRS]


def _convert(key: str, rules) -> str | None:
    for pattern, template in rules:
        match = pattern.match(key)
        if match:
            return _fill(template, match)
    return None


def native_to_ours(key: str) -> str | None:
    """Our parameter name for a native checkpoint key, or None if the key is not part of the model."""
    return _convert(key, _TO_OURS)


def ours_to_native(key: str) -> str | None:
    """The native checkpoint key for one of our parameter names, or None if there is none."""
    return _convert(key, _TO_NATIVE)


# ---- config.json ----------------------------------------------------------------------------------

# upstream constructor defaults: an official config.json may omit any key (upstream drops patch_size,
# text_dim, qk_norm, cross_attn_norm, window_size when saving; their defaults are the release values)
UPSTREAM_DEFAULTS = {
    "cond_dim": 0, "audio_dim": 5120, "num_audio_token": 4, "enable_adain": False, "adain_mode": "attn_norm",
    "audio_inject_layers": [0, 4, 8, 12, 16, 20, 24, 27], "zero_timestep": False, "enable_motioner": True,
    "add_last_motion": True, "enable_framepack": False, "model_type": "s2v", "patch_size": [1, 2, 2],
    "text_len": 512, "in_dim": 16, "dim": 2048, "ffn_dim": 8192, "freq_dim": 256, "text_dim": 4096, "out_dim": 16,
    "num_heads": 16, "num_layers": 32, "window_size": [-1, -1], "qk_norm": True, "cross_attn_norm": True,
    "eps": 1e-6,
}
# the one variant we implement (the release): anything else is refused rather than silently misread
_RELEASE_VARIANT = {
    "model_type": "s2v", "enable_framepack": True, "enable_motioner": False, "enable_adain": True,
    "adain_mode": "attn_norm", "zero_timestep": True, "add_last_motion": True, "patch_size": [1, 2, 2],
    "window_size": [-1, -1], "qk_norm": True, "cross_attn_norm": True,
}
_PIPELINE_ONLY = {"zero_init": True, "enable_tsm": False, "trainable_token": False, "motion_token_num": 1024,
                  "framepack_drop_mode": "padd", "motion_frames": 73}


def is_official_config(raw: dict) -> bool:
    return raw.get("_class_name") == "WanModel_S2V" or ("_class_name" not in raw and "dim" in raw)


def from_official_config(raw: dict) -> dict:
    """Constructor kwargs of WanS2VTransformer3DModel from an upstream-format config.json."""
    cfg = {**UPSTREAM_DEFAULTS, **raw}
    problems = [f"{k}={cfg[k]!r} (supported: {v!r})" for k, v in _RELEASE_VARIANT.items()
                if (list(cfg[k]) if isinstance(v, list) else cfg[k]) != v]
    if cfg["cond_dim"] <= 0:
        problems.append(f"cond_dim={cfg['cond_dim']!r} (a pose encoder is required)")
    if cfg["dim"] % cfg["num_heads"]:
        problems.append(f"dim={cfg['dim']} is not divisible by num_heads={cfg['num_heads']}")
    if problems:
        raise ValueError("unsupported Wan S2V variant in config.json: " + "; ".join(problems))
    return {
        "num_attention_heads": cfg["num_heads"], "attention_head_dim": cfg["dim"] // cfg["num_heads"],
        "in_channels": cfg["in_dim"], "out_channels": cfg["out_dim"], "pose_channels": cfg["cond_dim"],
        "text_dim": cfg["text_dim"], "text_len": cfg["text_len"], "freq_dim": cfg["freq_dim"],
        "ffn_dim": cfg["ffn_dim"], "num_layers": cfg["num_layers"], "eps": cfg["eps"],
        "audio_dim": cfg["audio_dim"], "num_audio_layers": cfg.get("num_audio_layers", 25),
        "num_audio_tokens": cfg["num_audio_token"], "audio_inject_layers": list(cfg["audio_inject_layers"]),
    }


def to_official_config(config) -> dict:
    """Upstream-format config.json for our config (also writes the keys upstream drops, and
    `num_audio_layers`, which upstream does not know and ignores). Head-pruned configs are refused:
    upstream ties the attention width to the model dim."""
    for key in ("attention_heads", "audio_attention_heads"):
        if config.get(key) not in (None, config["num_attention_heads"]):
            raise ValueError(f"{key}={config[key]} (pruned attention heads) has no official WanModel_S2V layout; "
                             f"keep the diffusers layout (save_pretrained)")
    official = {
        "_class_name": "WanModel_S2V", "_diffusers_version": version("diffusers"),
        "dim": config["num_attention_heads"] * config["attention_head_dim"], "num_heads": config["num_attention_heads"],
        "in_dim": config["in_channels"], "out_dim": config["out_channels"], "cond_dim": config["pose_channels"],
        "text_dim": config["text_dim"], "text_len": config["text_len"], "freq_dim": config["freq_dim"],
        "ffn_dim": config["ffn_dim"], "num_layers": config["num_layers"], "eps": config["eps"],
        "audio_dim": config["audio_dim"], "num_audio_layers": config["num_audio_layers"],
        "num_audio_token": config["num_audio_tokens"], "audio_inject_layers": list(config["audio_inject_layers"]),
    }
    return {**official, **_RELEASE_VARIANT, **_PIPELINE_ONLY}
