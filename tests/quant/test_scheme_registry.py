"""The scheme registry: one row per scheme, read by the kernels, QuantizedLinear and the config; importable
without torch; the default high-precision list."""

import subprocess
import sys
from typing import get_args

import pytest
import torch
from torch import nn

import compress.quant
from compress.errors import UserInputError
from compress.quant import SCHEMES, QuantConfig, QuantizedLinear, Scheme, default_ignore, get_scheme
from tests.helpers import REPO


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_each_row_describes_what_quantized_linear_stores_and_runs(scheme):
    row = get_scheme(scheme)
    linear = QuantizedLinear.from_linear(nn.Linear(32, 16), QuantConfig(scheme=scheme, allow_emulation=True))
    assert linear.weight.dtype == row.storage_dtype()
    assert linear(torch.randn(3, 32)).shape == (3, 16)


def test_scheme_type_and_errors_come_from_the_registry():
    assert get_args(Scheme) == tuple(SCHEMES)
    with pytest.raises(UserInputError, match="unknown quantization scheme 'fp4'; known: fp8_weight_only"):
        get_scheme("fp4")
    assert QuantConfig(scheme="fp8_dynamic").skip_reason("x", 24, 64) == \
        "shape (24, 64) not divisible by 16 (fp8_scaled_mm kernel)"
    assert QuantConfig(scheme="int8_dynamic").skip_reason("x", 24, 63) is None


def test_registry_and_config_import_without_torch():
    code = ("import sys\nfrom compress.quant import SCHEMES, QuantConfig, Scheme\n"
            "QuantConfig(scheme='int8_dynamic')\nassert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_every_export_resolves():
    for name in compress.quant.__all__:
        assert getattr(compress.quant, name) is not None
    assert set(compress.quant.__all__) <= set(dir(compress.quant))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        compress.quant.nope  # noqa: B018


class _Blocks(nn.Module):
    _keep_in_high_precision = ["proj_out"]

    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList(nn.Linear(4, 4) for _ in range(3))


def test_default_ignore():
    model = _Blocks()
    assert default_ignore(model) == ["proj_out", "blocks.0.*", "blocks.2.*"]
    assert default_ignore(model, ["head.*"], keep_first_last_blocks=False) == ["head.*"]
    assert default_ignore(nn.Sequential(nn.Linear(4, 4))) == []
