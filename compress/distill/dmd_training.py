"""The DMD training loop (`compress.distill.dmd` has the losses): two adapter sets, two optimizers, DDP or FSDP2
on one shared base or two (`compress.distill.dmd_layout`), resume.

Each step (after `regression_warmup_steps` of regression on the teacher's ODE pairs) updates the fake score
`fake_updates_per_step` times on fresh generator samples, then the generator once with the DMD loss. Every random
draw comes from a generator seeded by (seed, step, example index), so a resumed run repeats the uninterrupted
one; example j of step i on rank r has index (i * world_size + r) * batch_size + j, so ranks never overlap.
Checkpoints (the trainer's format and helpers) hold both adapter sets and both optimizers whole (gathered from
FSDP2 shards), both schedules, every rank's RNG states and the loss history: a run resumes in either layout.

    metrics = run_dmd(source, teacher, reference, holdout=1, config=DmdConfig(), train=TrainConfig(), out, ctx)
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
from diffusers.optimization import get_cosine_schedule_with_warmup
from torch import nn

from compress.distill.config import DmdConfig, TrainConfig
from compress.distill.data import stream_seed
from compress.distill.dmd import (
    ClipConditioning,
    dmd_loss,
    fake_score_loss,
    reference_conditionings,
    regression_loss,
    rollout,
    sample_sigma,
)
from compress.distill.dmd_layout import (
    AdapterRole,
    checkpoint_blocks,
    dmd_networks,
    full,
    layout_of,
    like,
    load_whole_optimizer_state,
    same_base,
    shard_bases,
    whole_optimizer_state,
)
from compress.distill.lora import ADAPTERS_DIR, save_merged, source_quant_config
from compress.distill.lora_adapters import (
    AdapterView,
    check_mergeable,
    load_adapters,
    merge_adapters,
    save_adapters,
)
from compress.models.s2v.liveavatar_lora import read_peft_adapters, write_liveavatar_lora
from compress.distill.trainer import (
    autocast,
    gather,
    latest_checkpoint,
    log_step,
    mean_across_ranks,
    read_checkpoint,
    rng_state,
    seed_all,
    set_rng_state,
    write_checkpoint,
)
from compress.errors import CheckpointError
from compress.pipelines.sampling import MANIFEST_KEY, SamplingConfig, dit_forwards, euler_sigmas
from compress.quant import relative_error
from compress.utils.console import Console

_EXAMPLE, _EXIT = 2, 3  # seed streams (lora.py uses 0 and 1)


class _Trained:
    """One trained adapter set: its network (an AdapterRole; DDP-wrapped under torchrun with ddp), parameters,
    optimizer and schedule."""

    def __init__(self, model: AdapterRole, lr: float, train: TrainConfig, total_steps: int, world: int):
        self.model, self.named = model, model.trained()
        self.params = list(self.named.values())
        self.wrapped = _ddp(model, self.named) if world > 1 and train.sharding == "ddp" else model
        self.optimizer = torch.optim.AdamW(self.params, lr=lr, weight_decay=train.weight_decay)
        self.scheduler = get_cosine_schedule_with_warmup(self.optimizer, train.warmup_steps, total_steps)
        self.clip_grad = train.clip_grad

    def accumulate(self, loss_fns: list[Callable[[], torch.Tensor]]) -> None:
        """Backward of the mean of the losses `loss_fns` compute (one per example); DDP reduces on the last one."""
        ddp = self.wrapped is not self.model
        for i, loss_fn in enumerate(loss_fns):
            with self.wrapped.no_sync() if ddp and i < len(loss_fns) - 1 else contextlib.nullcontext():
                (loss_fn() / len(loss_fns)).backward()

    def step(self) -> float | None:
        norm = float(full(torch.nn.utils.clip_grad_norm_(self.params, self.clip_grad))) if self.clip_grad else None
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return norm

    def next_step(self) -> None:
        """Advance the learning-rate schedule by one generator step."""
        self.scheduler.step()

    def state(self) -> dict:
        """Whole tensors (gathered from FSDP2 shards; every rank calls it), whatever the layout."""
        return {"params": {n: full(p.detach()).clone() for n, p in self.named.items()},
                "optimizer": whole_optimizer_state(self.optimizer), "scheduler": self.scheduler.state_dict()}

    def load(self, state: dict, path: Path) -> None:
        if set(state["params"]) != set(self.named):
            raise CheckpointError(f"{path} does not match the adapters being trained; delete it to start over")
        with torch.no_grad():
            for name, value in state["params"].items():
                self.named[name].copy_(like(value, self.named[name]))
        load_whole_optimizer_state(self.optimizer, state["optimizer"], self.params)
        self.scheduler.load_state_dict(state["scheduler"])


def _ddp(model: AdapterRole, trained: dict[str, nn.Parameter]) -> nn.Module:
    """DDP over `model` reducing the gradients of `trained` only (not another role's adapters on a shared base)."""
    from torch.nn.parallel import DistributedDataParallel

    others = [n for n, p in model.named_parameters() if p.requires_grad and n not in trained]
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, others)
    return DistributedDataParallel(model)


class DmdTraining:
    """The generator and the scores (AdapterRoles from `dmd_layout.dmd_networks`: shared-base or two-bases) trained
    on `clips` (ClipConditioning) as `config` and `train` say; under torchrun with `train.sharding` fsdp their
    bases are sharded here (FSDP2)."""

    def __init__(self, generator: AdapterRole, scores: AdapterRole, clips: list[ClipConditioning], config: DmdConfig,
                 train: TrainConfig, real_guidance: float):
        if train.grad_accum != 1 or train.ema_decay is not None:
            raise ValueError("dmd: grad_accum and ema_decay are not supported (each step already averages its "
                             "batch; the generator's weights are its samples)")
        self.clips, self.config, self.train, self.real_guidance = clips, config, train, real_guidance
        self.rank, self.world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
        self.total = config.regression_warmup_steps + train.steps
        self.layout, self.sharding = layout_of(generator, scores), train.sharding if self.world > 1 else "none"
        if config.checkpointing:
            checkpoint_blocks(generator, scores)
        if self.sharding == "fsdp":
            shard_bases(generator, scores)
        self.generator = _Trained(generator, train.lr, train, self.total, self.world)
        self.fake = _Trained(scores, config.fake_lr or train.lr, train, train.steps, self.world)
        self.sigmas = euler_sigmas(config.num_inference_steps, config.shift).to(self.device)
        self.step, self.losses, self.terms = 0, [], {}

    @property
    def device(self) -> torch.device:
        return self.generator.params[0].device

    def _examples(self, step: int) -> list[tuple[ClipConditioning, torch.Generator]]:
        """This rank's examples of `step`: a clip each, with the generator every random draw of it comes from."""
        examples = []
        first = (step * self.world + self.rank) * self.train.batch_size
        for j in range(self.train.batch_size):
            rng = torch.Generator().manual_seed(stream_seed(_EXAMPLE, self.train.seed, first + j))
            examples.append((self.clips[int(torch.randint(len(self.clips), (), generator=rng))], rng))
        return examples

    def _exit_step(self, step: int) -> int:
        """The rollout step that carries the gradient: the last, or one drawn per step (the same on every rank)."""
        last = self.config.num_inference_steps - 1
        if self.config.exit_step == "last" and step >= self.config.regression_warmup_steps:
            return last
        rng = torch.Generator().manual_seed(stream_seed(_EXIT, self.train.seed, step))
        return int(torch.randint(last + 1, (), generator=rng))

    def _noise(self, clip: ClipConditioning, rng: torch.Generator) -> torch.Tensor:
        return torch.randn(clip.shape, generator=rng).to(self.device)

    def _sigma(self, rng: torch.Generator) -> float:
        return sample_sigma(rng, self.config.t_min, self.config.t_max, self.config.timestep_shift)

    def run_step(self) -> tuple[float, dict[str, float]]:
        """One generator step (preceded by the fake-score updates once DMD runs); (loss, logs), means over ranks."""
        examples, exit_step = self._examples(self.step), self._exit_step(self.step)
        with autocast(self.train.autocast, self.device):
            if self.step < self.config.regression_warmup_steps:
                loss, logs = self._regression(examples, exit_step)
            else:
                logs = self._fake_updates(examples, exit_step)
                loss, dmd_logs = self._generator_update(examples, exit_step)
                logs.update(dmd_logs)
                self.fake.next_step()  # the fake score's schedule spans the DMD steps
        self.generator.next_step()
        means = mean_across_ranks(torch.tensor([loss, *logs.values()], dtype=torch.float64)).tolist()
        self.step += 1
        return means[0], dict(zip(logs, means[1:]))

    def _regression(self, examples, exit_step: int) -> tuple[float, dict]:
        values = []

        def loss(clip):
            x0 = rollout(self.generator.model, clip.noise().to(self.device), clip.cond, self.sigmas, exit_step,
                         self.generator.wrapped)
            value = regression_loss(x0, clip)
            values.append(value.item())
            return value

        self.generator.accumulate([lambda c=clip: loss(c) for clip, _ in examples])
        norm = self.generator.step()
        mean = sum(values) / len(values)
        return mean, {"regression_mse": mean, "grad_norm": norm or 0.0}

    def _fake_updates(self, examples, exit_step: int) -> dict:
        values = []

        def loss(clip, rng):
            with torch.no_grad():
                x0 = rollout(self.generator.model, self._noise(clip, rng), clip.cond, self.sigmas, exit_step)
            value = fake_score_loss(self.fake.wrapped, x0, clip, self._sigma(rng), rng)
            values.append(value.item())
            return value

        for _ in range(self.config.fake_updates_per_step):
            self.fake.accumulate([lambda c=clip, r=rng: loss(c, r) for clip, rng in examples])
            self.fake.step()
        last = values[-len(examples):]
        return {"fake_loss": sum(last) / len(last)}

    def _generator_update(self, examples, exit_step: int) -> tuple[float, dict]:
        values, logs = [], {}

        def loss(clip, rng):
            x0 = rollout(self.generator.model, self._noise(clip, rng), clip.cond, self.sigmas, exit_step,
                         self.generator.wrapped)
            value, parts = dmd_loss(x0, clip, self._sigma(rng), self.fake.model, self.real_guidance, rng)
            values.append(value.item())
            for k, v in parts.items():
                logs[k] = logs.get(k, 0.0) + v / len(examples)
            return value

        self.generator.accumulate([lambda c=clip, r=rng: loss(c, r) for clip, rng in examples])
        logs["grad_norm"] = self.generator.step() or 0.0
        return sum(values) / len(values), logs

    def record(self, loss: float, logs: dict[str, float]) -> None:
        self.losses.append(loss)
        for name, value in logs.items():
            self.terms.setdefault(name, []).append(value)

    def save(self, directory: Path) -> None:
        state = {"step": self.step, "losses": list(self.losses), "terms": {k: list(v) for k, v in self.terms.items()},
                 "generator": self.generator.state(), "fake": self.fake.state(), "rng": gather(rng_state())}
        if self.rank == 0:
            write_checkpoint(directory, self.step, state, self.train.keep_checkpoints)
        if dist.is_initialized():
            dist.barrier()

    def resume(self, path: Path) -> None:
        state = read_checkpoint(path, self.world)
        self.generator.load(state["generator"], path)
        self.fake.load(state["fake"], path)
        self.step, self.losses = state["step"], list(state["losses"])
        self.terms = {k: list(v) for k, v in state["terms"].items()}
        set_rng_state(state["rng"][self.rank])


def train_dmd(training: DmdTraining, checkpoint_dir: str | Path, ctx=None, stop_after: int | None = None,
              log_prefix: str = "dmd") -> dict:
    """Run `training` to its last step, resuming from the latest checkpoint in `checkpoint_dir`; stop_after: return
    after that many steps in total, as a run killed there would. Returns the history, resume point and wall time."""
    checkpoint_dir, config = Path(checkpoint_dir), training.train
    seed_all(config.seed + training.rank)
    latest = latest_checkpoint(checkpoint_dir)
    if latest is not None:
        training.resume(latest)
    resumed_from, start = training.step, time.perf_counter()
    last = min(training.total, stop_after or training.total)
    console = getattr(ctx, "console", None) if training.rank == 0 else None
    with (console or Console(quiet=True)).progress("dmd", training.total, training.step, unit="step") as progress:
        while training.step < last:
            loss, logs = training.run_step()
            training.record(loss, logs)
            rate = (training.step - resumed_from) * config.batch_size * training.world / (time.perf_counter() - start)
            progress.advance(note=f"loss {loss:.4g}")
            if training.step % config.checkpoint_every == 0 or training.step == training.total:
                training.save(checkpoint_dir)
            if training.step % config.log_every == 0 or training.step == last:
                log_step(ctx if training.rank == 0 else None, log_prefix, f"{training.step}/{training.total}", loss,
                         logs, training.generator.scheduler.get_last_lr()[0], rate)
    return {"steps": training.step, "resumed_from": resumed_from, "losses": training.losses, "terms": training.terms,
            "final_loss": training.losses[-1] if training.losses else None,
            "wall_s": round(time.perf_counter() - start, 3), "world_size": training.world}


@torch.no_grad()
def sample_error(generator: nn.Module, clips: list[ClipConditioning], sigmas: torch.Tensor) -> float:
    """Mean relative error of the generator's K-step samples from the teacher's noise against its latents."""
    was_training = generator.training
    generator.eval()
    errors = [relative_error(rollout(generator, clip.noise().to(clip.target.device), clip.cond, sigmas), clip.target)
              for clip in clips]
    generator.train(was_training)
    return sum(errors) / len(errors)


LIVEAVATAR_LORA = "liveavatar.safetensors"  # in adapters/: the same adapters in LiveAvatar's format (`liveavatar_lora`)


def _networks(source_artifact, teacher_artifact, config: DmdConfig, device) -> tuple[AdapterRole, AdapterRole,
                                                                                      AdapterView]:
    """The generator and the scores: on the teacher's one base when the source is the teacher (shared-base), else
    on two (a pruned / quantized generator base)."""
    teacher, teacher_quant = teacher_artifact.load_model(device=device), source_quant_config(teacher_artifact)
    if same_base(source_artifact, teacher_artifact):
        return dmd_networks(teacher, teacher, config, teacher_quant, teacher_quant)
    return dmd_networks(source_artifact.load_model(device=device), teacher, config,
                        source_quant_config(source_artifact), teacher_quant)


def _write_generator(training: DmdTraining, source_artifact, quant_config, config: DmdConfig, out, ctx) -> None:
    """The generator's adapters in peft's format (whole, whatever the layout) and, with the teacher's layout,
    LiveAvatar's; with `merge`, the source model with them merged (rank 0 rebuilds it from the saved adapters)."""
    generator, scores = training.generator.model, training.fake.model
    whole = {name.removeprefix("base."): full(p.detach()) for name, p in training.generator.named.items()}  # all ranks
    if ctx.rank != 0:
        return
    adapters = save_adapters(generator.base, out.path / ADAPTERS_DIR, base=str(source_artifact.path), state_dict=whole)
    if dict(generator.config) == dict(scores.config):  # the teacher's layout: LiveAvatar's loader takes it
        write_liveavatar_lora(read_peft_adapters(adapters), adapters / LIVEAVATAR_LORA)
    if config.merge:
        model = source_artifact.load_model(device="cpu" if training.sharding == "fsdp" else ctx.device)
        view = load_adapters(model, adapters, quant_config)
        merge_adapters(model, view, config.requantize)
        save_merged(model, out.path, view.quant_config)


def run_dmd(source_artifact, teacher_artifact, reference, holdout: int, config: DmdConfig, train: TrainConfig,
            out, ctx, checkpoint_dir: Path) -> dict:
    """Train a K-step generator (adapters on the source artifact's model) against the teacher on the reference's
    conditioning (all but its last `holdout` inputs); write the adapters, the merged model and the history (rank 0);
    returns the K-step samples' error against the teacher's latents on the held-out inputs, before and after."""
    from compress.distill.data import split_rows

    quant_config = source_quant_config(source_artifact)
    if config.merge:
        check_mergeable(quant_config, config.requantize)  # fail before training, not after
    train_rows, heldout_rows = split_rows(len(reference.rows), holdout)
    generator, scores, view = _networks(source_artifact, teacher_artifact, config, ctx.device)
    real_guidance = config.real_guidance_scale
    real_guidance = reference.config.guidance_scale if real_guidance is None else real_guidance
    training = DmdTraining(generator, scores, reference_conditionings(reference.rows.select(train_rows), ctx.device),
                           config, train, real_guidance)
    heldout = reference_conditionings(reference.rows.select(heldout_rows), ctx.device)
    before = sample_error(generator, heldout, training.sigmas)
    ctx.log(f"  dmd: layout {training.layout}, {training.world} process(es), sharding {training.sharding}; "
            f"{len(view.adapted)} modules adapted, {sum(p.numel() for p in training.generator.params):,} "
            f"generator / {sum(p.numel() for p in training.fake.params):,} fake-score LoRA parameters; "
            f"{len(training.clips)} training / {len(heldout)} held-out clips; K={config.num_inference_steps}, "
            f"real guidance {real_guidance}; held-out error {before:.4g}")
    result = train_dmd(training, checkpoint_dir, ctx, log_prefix=f"{out.final_path.name}/dmd")
    after = sample_error(generator, heldout, training.sigmas)
    _write_generator(training, source_artifact, quant_config, config, out, ctx)
    if ctx.rank == 0:
        out.write_json("train_history.json", {"losses": result["losses"], "terms": result["terms"],
                                              "config": train.model_dump(), "dmd": config.model_dump()})
    out.extra["dmd_layout"] = {"layout": training.layout, "sharding": training.sharding, "world_size": training.world}
    out.extra[MANIFEST_KEY] = SamplingConfig(sampler="euler", num_inference_steps=config.num_inference_steps,
                                             guidance_scale=0.0, shift=config.shift).model_dump()
    out.extra["description"] = (f"{config.num_inference_steps}-step generator: rank-{config.rank} LoRA adapters on "
                                f"'{source_artifact.name}' distilled by DMD from '{teacher_artifact.name}' (CFG "
                                f"{real_guidance}) for {result['steps']} steps; sample it with the Euler sampler, "
                                f"{config.num_inference_steps} steps, no guidance")
    terms = {f"final_{k}": v[-1] for k, v in result["terms"].items() if k in ("fake_loss", "regression_mse")}
    return {"heldout_error_space": "kstep_latent_rel_error", "heldout_error_before": before, "heldout_error": after,
            "heldout_improvement": 1 - after / before if before else None,
            "dit_forwards": dit_forwards(config.num_inference_steps, 0.0),
            "teacher_dit_forwards": dit_forwards(reference.config.num_inference_steps, reference.config.guidance_scale),
            "adapted_modules": len(view.adapted), "lora_params": sum(p.numel() for p in training.generator.params),
            "final_loss": result["final_loss"], **terms, "train_steps": result["steps"],
            "train_wall_s": result["wall_s"], "resumed_from_step": result["resumed_from"],
            "world_size": result["world_size"]}
