"""Tier C: the published SyncNet (Chung & Zisserman, "Out of time: automated lip sync in the wild", 2016).

The layer list follows `S` in joonson/syncnet_python `SyncNetModel.py` (the network behind `syncnet_v2.model`
and the field's Sync-C / Sync-D): `lip_cnn` (their `netcnnlip`) takes 5 stacked 224x224 BGR face frames in
0..255 at 25 fps, [N, 3, 5, 224, 224]; `audio_cnn` (`netcnnaud`) takes 13 x 20 MFCC (0.2 s,
python_speech_features on 16 kHz int16 audio); two FC heads give 1024-d embeddings. The weights are never
downloaded: `scripts/convert_syncnet_weights.py` converts a user's `syncnet_v2.model` to safetensors with our
key names, and `load_syncnet` loads it strictly.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from safetensors.torch import load_file, save_file
from torch import nn

from compress.errors import UserInputError

#: original (syncnet_python) module names -> ours
KEY_PREFIXES = {"netcnnaud": "audio_cnn", "netfcaud": "audio_fc", "netcnnlip": "lip_cnn", "netfclip": "lip_fc"}
_IGNORED = "num_batches_tracked"  # absent from old checkpoints; unused in eval


def _block(conv: nn.Module, bn: nn.Module, pool: nn.Module | None = None) -> list[nn.Module]:
    return [conv, bn, nn.ReLU(inplace=True)] + ([pool] if pool is not None else [])


def _audio_cnn() -> nn.Sequential:
    c2, bn = nn.Conv2d, nn.BatchNorm2d
    return nn.Sequential(
        *_block(c2(1, 64, 3, 1, 1), bn(64), nn.MaxPool2d(1, 1)),
        *_block(c2(64, 192, 3, 1, 1), bn(192), nn.MaxPool2d(3, (1, 2))),
        *_block(c2(192, 384, 3, 1, 1), bn(384)),
        *_block(c2(384, 256, 3, 1, 1), bn(256)),
        *_block(c2(256, 256, 3, 1, 1), bn(256), nn.MaxPool2d(3, 2)),
        *_block(c2(256, 512, (5, 4)), bn(512)))


def _lip_cnn() -> nn.Sequential:
    c3, bn = nn.Conv3d, nn.BatchNorm3d
    return nn.Sequential(
        *_block(c3(3, 96, (5, 7, 7), (1, 2, 2)), bn(96), nn.MaxPool3d((1, 3, 3), (1, 2, 2))),
        *_block(c3(96, 256, (1, 5, 5), (1, 2, 2), (0, 1, 1)), bn(256), nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))),
        *_block(c3(256, 256, (1, 3, 3), padding=(0, 1, 1)), bn(256)),
        *_block(c3(256, 256, (1, 3, 3), padding=(0, 1, 1)), bn(256)),
        *_block(c3(256, 256, (1, 3, 3), padding=(0, 1, 1)), bn(256), nn.MaxPool3d((1, 3, 3), (1, 2, 2))),
        *_block(c3(256, 512, (1, 6, 6)), bn(512)))


def _head(embed_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, embed_dim))


class SyncNet(ModelMixin, ConfigMixin):
    """The published SyncNet; use in eval mode (batch norm with the stored statistics)."""

    @register_to_config
    def __init__(self, embed_dim: int = 1024):
        super().__init__()
        self.audio_cnn, self.audio_fc = _audio_cnn(), _head(embed_dim)
        self.lip_cnn, self.lip_fc = _lip_cnn(), _head(embed_dim)

    def embed_lip(self, x: torch.Tensor) -> torch.Tensor:
        """[N, 3, 5, 224, 224] BGR frames in 0..255 -> [N, embed_dim]."""
        return self.lip_fc(self.lip_cnn(x).flatten(1))

    def embed_audio(self, x: torch.Tensor) -> torch.Tensor:
        """[N, 1, 13, 20] MFCC -> [N, embed_dim]."""
        return self.audio_fc(self.audio_cnn(x).flatten(1))


def expected_shapes(model: SyncNet | None = None) -> dict[str, tuple[int, ...]]:
    """Our key names and shapes of the published network (batch-norm counters left out)."""
    model = model or SyncNet()
    return {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.endswith(_IGNORED)}


def check_state(state: dict[str, torch.Tensor], where: str) -> None:
    """Refuse a state dict (our key names) whose keys or shapes differ from the network, listing them all."""
    want = expected_shapes()
    missing = sorted(want.keys() - state.keys())
    unexpected = sorted(state.keys() - want.keys())
    mismatched = [f"{k} {list(state[k].shape)} (expected {list(want[k])})"
                  for k in sorted(want.keys() & state.keys()) if tuple(state[k].shape) != want[k]]
    problems = [f"{label} ({len(keys)}): {', '.join(keys)}" for label, keys in
                (("missing keys", missing), ("unexpected keys", unexpected), ("mis-shaped keys", mismatched)) if keys]
    if problems:
        raise UserInputError(f"{where}: not the SyncNet weights this toolkit expects; " + "; ".join(problems))


def convert_original_state(state: dict, where: str = "SyncNet state dict") -> dict[str, torch.Tensor]:
    """syncnet_python key names (`netcnnaud.0.weight`, optionally under `__S__.` / `module.`) -> ours, checked."""
    if isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    out = {}
    for key, value in state.items():
        name = key.removeprefix("module.").removeprefix("__S__.")
        if name.endswith(_IGNORED):
            continue
        prefix, _, rest = name.partition(".")
        out[f"{KEY_PREFIXES[prefix]}.{rest}" if prefix in KEY_PREFIXES else name] = value.detach().float().contiguous()
    check_state(out, where)
    return out


def save_syncnet_weights(state: dict[str, torch.Tensor], path: str | Path) -> None:
    check_state(state, str(path))
    save_file(state, str(path), metadata={"format": "pt", "model": "syncnet_v2 (joonson/syncnet_python)"})


def load_syncnet(path: str | Path, device: str | torch.device = "cpu") -> SyncNet:
    """SyncNet in eval mode from a converted safetensors file; wrong keys or shapes are listed by name."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"SyncNet weights: no such file '{path}' (convert syncnet_v2.model with "
                             f"scripts/convert_syncnet_weights.py)")
    try:
        state = load_file(str(path))
    except Exception as error:  # safetensors raises its own error types for corrupt headers
        raise UserInputError(f"SyncNet weights: '{path}' is not a readable safetensors file ({error})") from None
    check_state(state, str(path))
    model = SyncNet()
    model.load_state_dict(state, strict=False)  # only the batch-norm counters are absent (checked above)
    return model.to(device).eval()
