import torch

from compress.pipelines.sampling import dit_forwards, euler_sigmas


def test_euler_sigmas_are_liveavatars_schedule():
    # LiveAvatar samples its 4-step LoRA at t = 1000, 858, 602, 9 (diffusers' flow Euler, shift 3)
    sigmas = euler_sigmas(4)
    torch.testing.assert_close(sigmas, torch.tensor([1.0, 0.8577, 0.6022, 0.0089, 0.0]), atol=1e-4, rtol=0)
    assert len(euler_sigmas(3)) == 4


def test_dit_forwards_count_guidance_twice():
    assert dit_forwards(40, 4.5) == 80
    assert dit_forwards(4, 0.0) == dit_forwards(4, 1.0) == 4
