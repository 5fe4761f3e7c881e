"""The non-DiT parts of Wan2.2-S2V: umT5 text encoder + tokenizer, wav2vec2 audio encoder, Wan2.1 VAE, scheduler.

Each part is a real diffusers / transformers class. `S2VComponents.tiny()` builds all of them from small
seeded configs in code, sized to the DiT's config (text_dim, audio_dim, num_audio_layers); nothing is
downloaded. A preset that ships weights may ship its components beside them (`vae/`, `text_encoder/`,
`audio_encoder/` in its weights folder, e.g. the trained `demo` teacher): `tiny()` then loads those for every
DiT with the same component interface (`COMPONENT_INTERFACE`: latent channels, text and audio widths), which
covers the preset itself and its quantized and pruned artifacts, since neither changes these.
`S2VComponents.from_dirs()` loads real ones from local directories in diffusers / transformers
layout. The official release files `Wan2.1_VAE.pth` and `models_t5_umt5-xxl-enc-bf16.pth` are not in that
layout: use the `vae/`, `text_encoder/` and `tokenizer/` folders of `Wan-AI/Wan2.1-T2V-14B-Diffusers` (the same
VAE and umT5-XXL) or convert them with diffusers' `scripts/convert_wan_to_diffusers.py`. The release's
`wav2vec2-large-xlsr-53-english/` folder is already in transformers layout.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from transformers import AutoTokenizer, UMT5Config, UMT5EncoderModel, Wav2Vec2Config, Wav2Vec2Model

from compress.errors import UserInputError
from compress.models.loading import require_weight_files
from compress.models.s2v import WanS2VTransformer3DModel
from compress.pipelines.cpu_conv import use_onednn_conv3d
from compress.pipelines.log_mel_audio import LogMelAudioEncoder

NUM_TRAIN_TIMESTEPS = 1000
BYTE_TOKENIZER_FILE = "byte_tokenizer.json"
SCHEDULERS = {"unipc": UniPCMultistepScheduler, "euler": FlowMatchEulerDiscreteScheduler}
COMPONENT_INTERFACE = ("in_channels", "text_dim", "audio_dim", "num_audio_layers")  # DiT config the parts fix
COMPONENT_DIRS = ("vae", "text_encoder", "audio_encoder")


class ByteTokenizer:
    """Deterministic UTF-8 byte tokenizer, for the tiny presets only (no umT5 vocabulary exists offline).

    Token id = byte + 3, keeping umT5's pad 0 / eos 1 / unk 2; called like a transformers tokenizer."""

    vocab_size = 259
    pad_token_id, eos_token_id = 0, 1

    def __call__(self, texts: list[str], max_length: int, **_) -> dict[str, torch.Tensor]:
        ids = torch.zeros(len(texts), max_length, dtype=torch.long)
        for row, text in enumerate(texts):
            tokens = [b + 3 for b in text.encode("utf-8")][: max_length - 1] + [self.eos_token_id]
            ids[row, : len(tokens)] = torch.tensor(tokens)
        return {"input_ids": ids, "attention_mask": (ids != self.pad_token_id).long()}

    def save_pretrained(self, directory: str | Path) -> None:
        (Path(directory) / BYTE_TOKENIZER_FILE).write_text(json.dumps({"vocab_size": self.vocab_size}) + "\n")


def tiny_vae() -> AutoencoderKLWan:
    """Wan2.1 VAE architecture in miniature: z_dim 16, spatial stride 8, causal temporal stride 4."""
    return AutoencoderKLWan(base_dim=8, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=1, attn_scales=[],
                            temperal_downsample=[False, True, True])


def tiny_text_encoder(text_dim: int) -> UMT5EncoderModel:
    heads = 4 if text_dim % 4 == 0 else 1
    config = UMT5Config(vocab_size=ByteTokenizer.vocab_size, d_model=text_dim, d_kv=text_dim // heads, d_ff=2 * text_dim,
                        num_layers=2, num_heads=heads, dropout_rate=0.0, feed_forward_proj="gated-gelu")
    return UMT5EncoderModel(config)


def tiny_audio_encoder(audio_dim: int, num_audio_layers: int) -> Wav2Vec2Model:
    """wav2vec2 with the XLSR-53 layout (stable layer norm, 320-sample hop = 50 Hz) and num_audio_layers hidden states."""
    heads = 2 if audio_dim % 2 == 0 else 1
    config = Wav2Vec2Config(
        hidden_size=audio_dim, num_hidden_layers=num_audio_layers - 1, num_attention_heads=heads,
        intermediate_size=2 * audio_dim, conv_dim=[16] * 7, num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=heads, do_stable_layer_norm=True, feat_extract_norm="layer",
        hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0, layerdrop=0.0,
        mask_time_prob=0.0, vocab_size=32,
    )
    return Wav2Vec2Model(config)


def flow_scheduler(kind: str = "unipc", shift: float = 3.0) -> SchedulerMixin:
    """The flow-matching sampler: UniPC with flow sigmas as upstream (or flow-matching Euler), 1000 train steps."""
    if kind == "unipc":
        return UniPCMultistepScheduler(num_train_timesteps=NUM_TRAIN_TIMESTEPS, prediction_type="flow_prediction",
                                       use_flow_sigmas=True, flow_shift=shift, solver_order=2)
    if kind == "euler":
        return FlowMatchEulerDiscreteScheduler(num_train_timesteps=NUM_TRAIN_TIMESTEPS, shift=shift)
    raise ValueError(f"unknown scheduler {kind!r}; known: {', '.join(SCHEDULERS)}")


def _seeded(build, seed: int):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build().eval()


def _model_dir(path: str | Path, what: str, hint: str) -> Path:
    """A local model directory with config.json, or a clear error (release .pth files need conversion)."""
    path = Path(path)
    if path.is_file() or not (path / "config.json").is_file():
        raise UserInputError(f"{what}: '{path}' is not a {what} directory with config.json. {hint}")
    require_weight_files(path)  # pickled weights are named and refused, never loaded
    return path


def shipped_components_dir(dit_config) -> Path | None:
    """The components folder of the preset with shipped components whose DiT has `dit_config`'s interface."""
    from compress.models.auto import get_preset, preset_names

    interface = [dit_config[k] for k in COMPONENT_INTERFACE]
    for name in preset_names():
        preset = get_preset(name)
        if (preset.weights_dir is not None and all((preset.weights_dir / d).is_dir() for d in COMPONENT_DIRS)
                and [preset.config[k] for k in COMPONENT_INTERFACE] == interface):
            return preset.weights_dir
    return None


def _load_audio_encoder(audio_dir: Path):
    """wav2vec2 (transformers layout), or the log-mel stand-in (diffusers layout, `_class_name` in config.json)."""
    if json.loads((audio_dir / "config.json").read_text()).get("_class_name") == LogMelAudioEncoder.__name__:
        return LogMelAudioEncoder.from_pretrained(audio_dir, torch_dtype=torch.float32)
    return Wav2Vec2Model.from_pretrained(audio_dir, dtype=torch.float32)


def _load_tokenizer(text_encoder_dir: Path):
    for candidate in (text_encoder_dir, text_encoder_dir.parent / "tokenizer"):
        if (candidate / BYTE_TOKENIZER_FILE).is_file():
            return ByteTokenizer()
        if any((candidate / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json", "spiece.model")):
            return AutoTokenizer.from_pretrained(candidate)
    raise UserInputError(f"text_encoder: no tokenizer files in '{text_encoder_dir}' or its sibling 'tokenizer/'")


@dataclass
class S2VComponents:
    dit: WanS2VTransformer3DModel
    vae: AutoencoderKLWan
    text_encoder: UMT5EncoderModel
    tokenizer: Any  # a transformers tokenizer, or ByteTokenizer for tiny presets
    audio_encoder: Wav2Vec2Model | LogMelAudioEncoder
    scheduler: SchedulerMixin

    def __post_init__(self):
        use_onednn_conv3d(self.vae)  # CPU inference: oneDNN instead of PyTorch's slow small-Conv3d kernel

    @classmethod
    def tiny(cls, dit: WanS2VTransformer3DModel | None = None, seed: int = 0) -> S2VComponents:
        """Components for a preset DiT (default: the `tiny` preset DiT built from `seed`): the shipped ones of a
        preset with the same component interface (see the module docstring), else random tiny ones sized to it."""
        dit = dit if dit is not None else _seeded(lambda: WanS2VTransformer3DModel.from_preset("tiny"), seed)
        cfg = dit.config
        shipped = shipped_components_dir(cfg)
        if shipped is not None:
            return cls.from_dirs(dit, *(shipped / d for d in COMPONENT_DIRS))
        return cls(
            dit=dit.eval(),
            vae=_seeded(tiny_vae, seed + 1),
            text_encoder=_seeded(lambda: tiny_text_encoder(cfg.text_dim), seed + 2),
            tokenizer=ByteTokenizer(),
            audio_encoder=_seeded(lambda: tiny_audio_encoder(cfg.audio_dim, cfg.num_audio_layers), seed + 3),
            scheduler=flow_scheduler(),
        )

    @classmethod
    def from_dirs(cls, dit_dir: str | Path | WanS2VTransformer3DModel, vae_dir: str | Path,
                  text_encoder_dir: str | Path, audio_encoder_dir: str | Path,
                  torch_dtype: torch.dtype | None = None, scheduler: str = "unipc") -> S2VComponents:
        """Real components from local directories. torch_dtype applies to the DiT and the text encoder (None keeps
        the stored dtypes); the VAE and wav2vec2 run in float32 as upstream. `dit_dir` may be a loaded DiT."""
        vae_dir = _model_dir(vae_dir, "vae", "Point at the vae/ folder of Wan-AI/Wan2.1-T2V-14B-Diffusers, or "
                             "convert Wan2.1_VAE.pth with diffusers' scripts/convert_wan_to_diffusers.py.")
        text_dir = _model_dir(text_encoder_dir, "text_encoder", "Point at the text_encoder/ folder of "
                              "Wan-AI/Wan2.1-T2V-14B-Diffusers (umT5-XXL), or convert models_t5_umt5-xxl-enc-bf16.pth.")
        audio_dir = _model_dir(audio_encoder_dir, "audio_encoder", "Point at the release's "
                               "wav2vec2-large-xlsr-53-english/ folder.")
        dit = dit_dir if isinstance(dit_dir, torch.nn.Module) else WanS2VTransformer3DModel.from_pretrained(
            dit_dir, torch_dtype=torch_dtype)
        return cls(
            dit=dit.eval(),
            vae=AutoencoderKLWan.from_pretrained(vae_dir, torch_dtype=torch.float32).eval(),
            text_encoder=UMT5EncoderModel.from_pretrained(text_dir, dtype=torch_dtype or "auto").eval(),
            tokenizer=_load_tokenizer(text_dir),
            audio_encoder=_load_audio_encoder(audio_dir).eval(),
            scheduler=flow_scheduler(scheduler),
        )

    def save(self, directory: str | Path, dit_folder: str = "dit") -> dict[str, Path]:
        """Write every part in the layout `from_dirs` reads: dit/, vae/, text_encoder/ (+ tokenizer), audio_encoder/.
        dit_folder "" writes the DiT into `directory` itself (a preset's weights folder with its components)."""
        directory = Path(directory)
        dirs = {"dit": directory / dit_folder, **{name: directory / name for name in COMPONENT_DIRS}}
        for name, path in dirs.items():
            getattr(self, name).save_pretrained(path)
        self.tokenizer.save_pretrained(dirs["text_encoder"])
        return dirs

    def to(self, device: str | torch.device, offload_text_encoder: bool = False) -> S2VComponents:
        """Move the models to `device`; with offload_text_encoder the text encoder stays where it is (CPU), and a
        part on the meta device (a DiT built for its config alone, without weights) stays there."""
        for f in fields(self):
            part = getattr(self, f.name)
            if (isinstance(part, torch.nn.Module) and not (offload_text_encoder and f.name == "text_encoder")
                    and not any(p.is_meta for p in part.parameters())):
                part.to(device)
        return self

    @torch.no_grad()
    def encode_text(self, prompt: str) -> torch.Tensor:
        """umT5 embeddings [1, L, text_dim] of the prompt's tokens (eos included, padding cut off), float32."""
        prompt = re.sub(r"\s+", " ", prompt).strip()
        batch = self.tokenizer([prompt], padding="max_length", max_length=self.dit.config.text_len, truncation=True,
                               add_special_tokens=True, return_attention_mask=True, return_tensors="pt")
        device = self.text_encoder.device
        ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
        hidden = self.text_encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        return hidden[:, : int(mask.sum())].float()
