"""DMD on the tiny DiT: the K-step rollout, the distribution matching gradient (zero when fake == real, exactly
(x0_fake - x0_real) / mean|x0 - x0_real| otherwise), the fake score starting as the teacher, exact resume, and
bad settings."""

import pytest
import torch

from compress.distill.config import DmdConfig
from compress.distill.dmd import dmd_loss, predict_x0, rollout, velocity
from compress.distill.lora_adapters import adapters_disabled
from compress.distill.dmd_training import train_dmd
from compress.distill.lora_adapters import lora_parameters
from compress.pipelines.sampling import euler_sigmas
from tests.distill.dmd_toy import tiny_training
from tests.helpers import torch_threads


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with torch_threads(1):
        yield


def perturb(model, scale=0.05, seed=1):
    """Non-zero LoRA B matrices (peft starts them at zero), so the adapters change the model."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=generator) * scale)


def count_forwards(model):
    calls = []
    model.register_forward_pre_hook(lambda module, args: calls.append(torch.is_grad_enabled()))
    return calls


def test_the_rollout_runs_k_forwards_with_a_graph_only_at_the_exit_step():
    training = tiny_training()
    model, clip = training.generator.model, training.clips[0]
    calls = count_forwards(model)
    sigmas = euler_sigmas(4)
    noise = clip.noise()
    sample = rollout(model, noise, clip.cond, sigmas)
    assert calls == [False, False, False, True] and sample.requires_grad
    with torch.no_grad():  # Euler by hand: x <- x + (sigma_next - sigma) v, the last step lands on x0
        x = noise
        for i in range(4):
            x = x + (sigmas[i + 1] - sigmas[i]) * velocity(model, x, float(sigmas[i]), clip.cond)
    torch.testing.assert_close(sample.detach(), x, rtol=1e-5, atol=1e-5)
    calls.clear()
    early = rollout(model, noise, clip.cond, sigmas, exit_step=1)
    assert calls == [False, True]
    assert not torch.allclose(early, sample)


def test_the_dmd_gradient_is_zero_when_the_fake_score_equals_the_real_one():
    training = tiny_training()
    perturb(training.generator.model)  # a generator that differs from the teacher
    clip = training.clips[0]
    x0 = rollout(training.generator.model, clip.noise(), clip.cond, training.sigmas)
    # fake adapters at zero (their start) and a real score without CFG: the same network, so nothing to match
    loss, _ = dmd_loss(x0, clip, 0.5, training.fake.model, 1.0, torch.Generator().manual_seed(0))
    loss.backward()
    assert loss.item() == 0
    assert all(p.grad is not None and not p.grad.any() for p in lora_parameters(training.generator.model))


def test_the_dmd_gradient_points_from_the_real_score_to_the_fake_one():
    training = tiny_training()
    scores, clip = training.fake.model, training.clips[1]
    perturb(scores)  # a fake score that has moved away from the teacher
    x0 = torch.randn(clip.shape, requires_grad=True)
    loss, _ = dmd_loss(x0, clip, 0.4, scores, 3.0, torch.Generator().manual_seed(7))
    loss.backward()
    x_t = 0.6 * x0.detach() + 0.4 * torch.randn(clip.shape, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        fake = predict_x0(scores, x_t, 0.4, clip.cond)
        with adapters_disabled(scores):
            cond, uncond = (velocity(scores, x_t, 0.4, c) for c in (clip.cond, clip.uncond))
    real = x_t - 0.4 * (uncond + 3.0 * (cond - uncond))
    expected = (fake - real) / (x0.detach() - real).abs().mean() / x0.numel()  # d(0.5 mse)/dx0 = grad / N
    torch.testing.assert_close(x0.grad, expected, rtol=1e-4, atol=1e-9)
    assert x0.grad.abs().sum() > 0


def test_the_fake_score_starts_as_the_teacher_and_the_real_pass_ignores_its_adapters():
    training = tiny_training()
    scores, clip = training.fake.model, training.clips[0]
    x = torch.randn(clip.shape)
    with torch.no_grad():
        with adapters_disabled(scores):
            teacher = velocity(scores, x, 0.5, clip.cond)
        assert torch.equal(velocity(scores, x, 0.5, clip.cond), teacher)
        perturb(scores)
        assert not torch.allclose(velocity(scores, x, 0.5, clip.cond), teacher)
        with adapters_disabled(scores):
            assert torch.equal(velocity(scores, x, 0.5, clip.cond), teacher)


def test_a_killed_run_resumes_with_the_same_losses_and_adapters(tmp_path):
    whole = tiny_training()
    expected = train_dmd(whole, tmp_path / "whole")
    assert len(expected["losses"]) == 6  # 2 regression warm-up steps, then 4 DMD steps
    assert len(expected["terms"]["regression_mse"]) == 2 and len(expected["terms"]["fake_loss"]) == 4
    killed = train_dmd(tiny_training(), tmp_path / "killed", stop_after=3)  # last checkpoint: step 2
    assert killed["steps"] == 3
    resumed_training = tiny_training()
    resumed = train_dmd(resumed_training, tmp_path / "killed")
    assert resumed["resumed_from"] == 2 and resumed["losses"] == expected["losses"]
    for trained, other in ((whole.generator, resumed_training.generator), (whole.fake, resumed_training.fake)):
        for p, q in zip(trained.params, other.params):
            assert torch.equal(p, q)


def test_generator_samples_move_and_the_fake_score_learns(tmp_path):
    training = tiny_training({"steps": 4, "batch_size": 2, "lr": 1e-2, "checkpoint_every": 4})
    before = [p.detach().clone() for p in training.generator.params]
    result = train_dmd(training, tmp_path)
    assert all(torch.isfinite(torch.tensor(result["losses"])))
    assert any(not torch.equal(a, b) for a, b in zip(before, training.generator.params))
    assert any(p.abs().sum() > 0 for name, p in training.fake.named.items() if "lora_B" in name)


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="t_min"):
        DmdConfig(t_min=0.5, t_max=0.4)
    with pytest.raises(ValueError, match="extra"):
        DmdConfig(fake_updates=5)
    with pytest.raises(ValueError, match="grad_accum and ema_decay"):
        tiny_training({"steps": 2, "grad_accum": 2})
