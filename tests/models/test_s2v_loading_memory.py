"""Streaming loading holds one copy of the weights: peak RSS grows by about the model size, not twice it."""

import os
import subprocess
import sys
from pathlib import Path

import torch

from compress.models import WanS2VTransformer3DModel

REPO = Path(__file__).resolve().parents[2]
MID = dict(num_attention_heads=8, attention_head_dim=64, text_dim=512, text_len=16, freq_dim=64, ffn_dim=2048,
           num_layers=8, audio_dim=64, num_audio_layers=25, audio_inject_layers=[0, 4])
PROBE = """
import resource, sys, torch
from compress.models import WanS2VTransformer3DModel
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
model = WanS2VTransformer3DModel.from_pretrained(sys.argv[1])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) * 1024, sum(p.numel() * p.element_size() for p in model.parameters()))
"""


def test_loading_peak_rss_stays_near_the_model_size(tmp_path):
    torch.manual_seed(0)
    WanS2VTransformer3DModel(**MID).save_official(tmp_path / "official", max_shard_size="50MB")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "official")], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    grown, model_bytes = map(int, done.stdout.split()[-2:])
    assert model_bytes > 100e6
    assert grown < 1.3 * model_bytes, f"peak RSS grew by {grown / 1e6:.0f} MB for a {model_bytes / 1e6:.0f} MB model"
