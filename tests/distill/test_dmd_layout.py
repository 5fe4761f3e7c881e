"""DMD on one shared base (generator and fake-score adapters on the teacher's own module) trains exactly as on two
bases, its checkpoints resume in the other layout, and its saved adapters are the two-base ones."""

import pytest
import torch
from safetensors.torch import load_file

from compress.distill.dmd_layout import FAKE_SCORE, GENERATOR, SHARED_BASE, TWO_BASES
from compress.distill.dmd_training import train_dmd
from compress.distill.lora_adapters import ADAPTER_WEIGHTS, save_adapters
from tests.distill.dmd_toy import tiny_training
from tests.helpers import torch_threads


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with torch_threads(1):
        yield


def adapters(training) -> list[torch.Tensor]:
    return [p.detach() for p in training.generator.params + training.fake.params]


def test_one_base_carries_both_adapter_sets_and_each_role_runs_its_own():
    training = tiny_training(shared=True)
    generator, scores = training.generator.model, training.fake.model
    assert training.layout == SHARED_BASE and generator.base is scores.base
    assert tiny_training().layout == TWO_BASES
    assert all(f".{GENERATOR}." in n for n in training.generator.named)
    assert all(f".{FAKE_SCORE}." in n for n in training.fake.named)
    clip, x = training.clips[0], torch.randn(training.clips[0].shape)
    timestep = torch.full((1,), 500.0)
    with torch.no_grad():
        for p in training.fake.params:
            p.add_(0.05)  # the fake score now differs from the generator
        fake = scores(hidden_states=x, timestep=timestep, **clip.cond).sample
        gen = generator(hidden_states=x, timestep=timestep, **clip.cond).sample
        assert torch.equal(scores(hidden_states=x, timestep=timestep, **clip.cond).sample, fake)
    assert not torch.allclose(fake, gen)
    assert all(p.requires_grad for p in training.generator.params + training.fake.params)


@pytest.mark.slow  # two DMD runs of 6 steps on the tiny DiT: ~15 s on the shared 2-core CPU
def test_shared_base_trains_like_two_bases_and_resumes_across_layouts(tmp_path):
    two = tiny_training()
    expected = train_dmd(two, tmp_path / "two")
    shared = tiny_training(shared=True)
    train_dmd(shared, tmp_path / "killed", stop_after=3)  # last checkpoint: step 2, written by the shared layout
    resumed = tiny_training(shared=False)
    result = train_dmd(resumed, tmp_path / "killed")
    assert result["resumed_from"] == 2
    torch.testing.assert_close(torch.tensor(result["losses"]), torch.tensor(expected["losses"]), rtol=1e-6, atol=0)
    whole = tiny_training(shared=True)
    again = train_dmd(whole, tmp_path / "shared")
    torch.testing.assert_close(torch.tensor(again["losses"]), torch.tensor(expected["losses"]), rtol=1e-6, atol=0)
    for trained in (resumed, whole):
        for p, q in zip(adapters(trained), adapters(two)):
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-7)

    two_dir, shared_dir = tmp_path / "a2", tmp_path / "a1"
    save_adapters(two.generator.model.base, two_dir)
    save_adapters(whole.generator.model.base, shared_dir)  # only the generator's set, keys as on its own base
    saved, reference = load_file(shared_dir / ADAPTER_WEIGHTS), load_file(two_dir / ADAPTER_WEIGHTS)
    assert sorted(saved) == sorted(reference) and all(".default." not in k for k in saved)
    assert (shared_dir / "adapter_config.json").read_text() == (two_dir / "adapter_config.json").read_text()
    for key in saved:
        torch.testing.assert_close(saved[key], reference[key], rtol=1e-5, atol=1e-7)


def test_the_base_is_shared_only_when_the_generator_input_is_the_teacher(tmp_path):
    from types import SimpleNamespace

    from compress.distill.dmd_layout import same_base

    teacher = SimpleNamespace(hash="t", model_dir=tmp_path / "teacher")
    (tmp_path / "teacher").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "teacher")
    assert same_base(SimpleNamespace(hash="t", model_dir=tmp_path / "teacher"), teacher)  # the same artifact
    assert same_base(SimpleNamespace(hash="s", model_dir=tmp_path / "link"), teacher)  # a source pointing at it
    assert not same_base(SimpleNamespace(hash="p", model_dir=tmp_path / "pruned"), teacher)  # pruned / quantized
    assert not same_base(SimpleNamespace(hash="p", model_dir=None), teacher)


def test_checkpointed_blocks_recompute_with_the_adapters_that_ran_them(tmp_path):
    """On the shared base the scores run (other adapters active) while the generator's graph is held: the backward
    must recompute each block with the generator's adapters, so checkpointing changes nothing."""
    from compress.distill.config import DmdConfig
    from tests.distill.dmd_toy import CONFIG

    plain = tiny_training(shared=True)
    expected = train_dmd(plain, tmp_path / "plain", stop_after=3)  # 2 regression steps, 1 DMD step
    checkpointed = tiny_training(shared=True, config=DmdConfig(**{**CONFIG.model_dump(), "checkpointing": True}))
    assert checkpointed.generator.model.base.gradient_checkpointing
    result = train_dmd(checkpointed, tmp_path / "checkpointed", stop_after=3)
    torch.testing.assert_close(torch.tensor(result["losses"]), torch.tensor(expected["losses"]), rtol=1e-6, atol=0)
    for p, q in zip(adapters(checkpointed), adapters(plain)):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-7)
