import pytest
import torch

from compress.models import WanS2VTransformer3DModel


def s2v_inputs(model, batch=1, frames=2, height=8, width=8, motion_frames=19, text_tokens=5, seed=0):
    """Random forward kwargs for a (tiny) S2V model."""
    return model.example_inputs(batch=batch, frames=frames, height=height, width=width, text_tokens=text_tokens,
                                motion_frames=motion_frames, seed=seed)


def randomize(model, seed=0, std=0.2):
    """Overwrite every parameter (zero-initialised ones included) so that each one affects the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)
    return model


def run(model, inputs, **overrides):
    with torch.no_grad():
        return model(**{**inputs, **overrides}).sample


@pytest.fixture
def make_inputs():
    return s2v_inputs


@pytest.fixture
def forward():
    return run


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    return WanS2VTransformer3DModel.from_preset("tiny")


@pytest.fixture
def tiny_random(tiny):
    return randomize(tiny)
