import pytest
import torch

from compress.pipelines.components import S2VComponents, tiny_vae
from compress.pipelines.cpu_conv import use_onednn_conv3d

pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="torch built without oneDNN")


def _conv_kernels(run) -> set[str]:
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        run()
    return {event.key for event in prof.key_averages() if ("conv" in event.key and "3d" in event.key)
            or event.key == "aten::mkldnn_convolution"}


def test_vae_decode_runs_onednn_and_matches_native():
    torch.manual_seed(0)
    native = tiny_vae().eval()
    fast = use_onednn_conv3d(tiny_vae().eval())
    fast.load_state_dict(native.state_dict())
    z = torch.randn(1, 16, 3, 4, 4)
    with torch.no_grad():
        expected = native.decode(z).sample
        assert "aten::slow_conv3d_forward" in _conv_kernels(lambda: native.decode(z))
        kernels = _conv_kernels(lambda: fast.decode(z))
        got = fast.decode(z).sample
    assert "aten::mkldnn_convolution" in kernels and "aten::slow_conv3d_forward" not in kernels
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_grad_and_other_dtypes_keep_the_native_path():
    torch.manual_seed(0)
    conv = torch.nn.Conv3d(4, 4, 3)
    fast = use_onednn_conv3d(torch.nn.Sequential(torch.nn.Conv3d(4, 4, 3)))[0]
    fast.load_state_dict(conv.state_dict())
    x = torch.randn(1, 4, 3, 5, 5)
    assert torch.equal(fast(x), conv(x))  # grad enabled: the very same kernel
    fast(x).sum().backward()
    assert fast.weight.grad is not None
    with torch.no_grad():
        assert torch.equal(fast.double()(x.double()), conv.double()(x.double()))


def test_components_route_their_vae():
    components = S2VComponents.tiny(seed=0)
    with torch.no_grad():
        kernels = _conv_kernels(lambda: components.vae.decode(torch.randn(1, 16, 2, 2, 2)))
    assert "aten::mkldnn_convolution" in kernels and "aten::slow_conv3d_forward" not in kernels


def test_a_deep_copy_convolves_with_its_own_weights():
    import copy

    fast = use_onednn_conv3d(torch.nn.Sequential(torch.nn.Conv3d(2, 2, 3)))
    clone = copy.deepcopy(fast)
    with torch.no_grad():
        clone[0].weight.zero_()
        clone[0].bias.zero_()
        x = torch.randn(1, 2, 3, 4, 4)
        assert torch.count_nonzero(clone(x)) == 0 and torch.count_nonzero(fast(x)) > 0


def test_flop_counting_counts_the_onednn_convolution():
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    native = tiny_vae().eval()
    fast = use_onednn_conv3d(tiny_vae().eval())
    z = torch.randn(1, 16, 3, 4, 4)
    counts = []
    for vae in (native, fast):
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            vae.decode(z)
        counts.append(counter.get_total_flops())
    assert counts[0] > 0 and counts[1] == counts[0]
