"""A DMD set-up on the tiny S2V DiT, shared by the single-process and the torchrun tests: random conditioning,
a generator and a teacher with fake-score adapters, on one base or two."""

import torch

from compress.distill.config import DmdConfig, TrainConfig
from compress.distill.dmd import ClipConditioning
from compress.distill.dmd_training import DmdTraining
from compress.distill.dmd_layout import dmd_networks
from compress.models import WanS2VTransformer3DModel

CONFIG = DmdConfig(rank=4, fake_updates_per_step=2, exit_step="random", regression_warmup_steps=2)
TRAIN = dict(steps=4, batch_size=2, lr=1e-3, checkpoint_every=2, log_every=1)


def tiny_clips(model, count: int = 3) -> list[ClipConditioning]:
    """Clips with random conditioning (the tiny model's example inputs) and random teacher latents."""
    clips = []
    for seed in range(count):
        x = model.example_inputs(seed=seed)
        cond = {k: x[k] for k in ("encoder_hidden_states", "audio_features", "ref_latents", "motion_latents")}
        cond["drop_motion_frames"] = seed == 0
        uncond = {**cond, "encoder_hidden_states": torch.randn_like(cond["encoder_hidden_states"]),
                  "audio_features": torch.zeros_like(cond["audio_features"])}
        shape = tuple(x["hidden_states"].shape)
        clips.append(ClipConditioning(cond, uncond, shape, seed=100 + seed, target=torch.randn(shape)))
    return clips


def tiny_training(train: dict | None = None, config: DmdConfig = CONFIG, shared: bool = False) -> DmdTraining:
    """shared: the generator's adapters on the teacher's own module (shared-base), else on a copy (two-bases)."""
    torch.manual_seed(0)
    teacher = WanS2VTransformer3DModel.from_preset("tiny")
    generator = teacher if shared else WanS2VTransformer3DModel.from_preset("tiny")
    generator.load_state_dict(teacher.state_dict())
    torch.manual_seed(1)  # the adapters start alike in both layouts
    generator, scores, _ = dmd_networks(generator, teacher, config)
    return DmdTraining(generator, scores, tiny_clips(teacher), config, TrainConfig(**(train or TRAIN)),
                       real_guidance=3.0)
