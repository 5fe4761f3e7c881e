"""A log-mel audio encoder that stands in for wav2vec2 where no speech-encoder weights exist (the demo teacher).

No wav2vec2 / HuBERT weights can be had offline, so the demo teacher hears standardised log-mel features
(80 bins, 25 ms windows at 50 Hz, `compress.data.features.log_mel`). The S2V DiT expects `num_audio_layers`
(25) hidden states of width `audio_dim`; hidden state `l` here is the standardised log-mel shifted by
`l - (num_hidden_states - 1) // 2` steps at 50 Hz (edges repeated): a context window of +-240 ms. The DiT's
causal audio encoder averages the hidden states with learned layer weights, so it learns a temporal filter
over that window, lookahead included (its own convolutions only see the past). The per-bin mean and std are
fitted on the training speech and stored with the weights. It is called like a transformers `Wav2Vec2Model`
(`encoder(waveform, output_hidden_states=True).hidden_states`), so `compress.pipelines.audio.audio_features`
and the pipeline use it unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn
from transformers.modeling_outputs import BaseModelOutput

from compress.data.features import log_mel


class LogMelAudioEncoder(ModelMixin, ConfigMixin):
    """16 kHz waveform [B, N] -> `num_hidden_states` time-shifted standardised log-mel states [B, T50, n_mels]."""

    @register_to_config
    def __init__(self, n_mels: int = 80, num_hidden_states: int = 25, sample_rate: int = 16_000):
        super().__init__()
        if num_hidden_states < 1:
            raise ValueError(f"num_hidden_states must be at least 1, got {num_hidden_states}")
        # fitted normalisation (not trained by gradient); parameters so they travel with device and dtype
        self.mel_mean = nn.Parameter(torch.zeros(n_mels), requires_grad=False)
        self.mel_std = nn.Parameter(torch.ones(n_mels), requires_grad=False)

    @property
    def offsets(self) -> range:
        """Shift of each hidden state in 50 Hz steps (negative: the past)."""
        half = (self.config.num_hidden_states - 1) // 2
        return range(-half, self.config.num_hidden_states - half)

    def log_mel(self, input_values: torch.Tensor) -> torch.Tensor:
        """Raw log-mel [B, n_mels, T50] of waveforms [B, N], float32."""
        cfg = self.config
        return torch.stack([log_mel(wave.float().cpu(), cfg.sample_rate, cfg.n_mels) for wave in input_values])

    @torch.no_grad()
    def fit_normalisation(self, mels: list[torch.Tensor]) -> None:
        """Set the per-bin mean and std from raw log-mel features [n_mels, T] of the training speech."""
        frames = torch.cat([m.float() for m in mels], dim=1)
        self.mel_mean.copy_(frames.mean(dim=1))
        self.mel_std.copy_(frames.std(dim=1).clamp_min(1e-3))

    def forward(self, input_values: torch.Tensor, output_hidden_states: bool = True, **_) -> BaseModelOutput:
        mel = self.log_mel(input_values).to(self.mel_mean.device)
        x = (mel - self.mel_mean[:, None]) / self.mel_std[:, None]
        half = -self.offsets[0]
        padded = F.pad(x, (half, self.config.num_hidden_states - 1 - half), mode="replicate")
        steps = x.shape[2]
        states = tuple(padded[..., half + k : half + k + steps].transpose(1, 2).to(self.dtype) for k in self.offsets)
        return BaseModelOutput(last_hidden_state=states[-1], hidden_states=states if output_hidden_states else None)
