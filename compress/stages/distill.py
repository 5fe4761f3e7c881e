"""`distill`: train a small student on the teacher's reference outputs (`method: student`), LoRA adapters
that recover a pruned / quantized teacher (`method: lora`, `compress.distill.lora`), or a few-step generator by
distribution matching distillation (`method: dmd`, `compress.distill.dmd`).

    - kind: distill
      name: lipsync
      student: lipsync-30m          # or lipsync-120m, lipsync-450m, tiny-vae-decoder, tiny-frame-decoder
      reference: reference          # a reference stage: the teacher's frames, latents and audio
      holdout: 1                    # the last N inputs are held out for the before / after error
      losses: {latent_mse: 1.0, pixel_l1: 0.5, mouth_weight: 2.0}
      train: {steps: 300, batch_size: 16, lr: 1e-3, checkpoint_every: 50}

Losses (`compress.distill.losses.LossConfig`): latent MSE, pixel L1 / MSE on frames decoded by the teacher's VAE,
`mouth_weight` (extra weight inside a mouth box: `mouth_box: inputs`, the input set's boxes; `landmarks`, the lips'
extent over each clip's teacher frames from MediaPipe face landmarks, which need `scripts/setup_landmarks.sh`; or
one fixed [x0, y0, x1, y1]) and, for the lip-sync students, `sync`: an expert lip-sync loss.

    - kind: sync_expert
      name: train_expert
      reference: reference
    - kind: distill
      student: lipsync-30m
      reference: reference
      sync_expert: train_expert     # the frozen expert of the sync loss
      losses: {latent_mse: 1.0, sync: 0.05}

With `sync`, each training example is a window of 5 consecutive frames of one clip (`batch_size` counts
windows); the student's frames, decoded by the teacher's VAE, are cropped to the mouth as the expert's stage
cropped its training frames (its `mouth` setting), embedded by the expert with the window's MFCC and scored with
Wav2Lip's expert loss (BCE of the cosine similarity mapped to [0, 1], target 1). The student learns to please
that expert, so its tier-B scores from the same expert are not honest: give the evaluate stage a sync expert
trained separately (another `sync_expert` stage, e.g. another seed, width or reference), or rely on tiers A / C.

With `curve_reference: heldout` (a held-out reference stage; lip-sync students), training runs in segments of
`curve_every` steps and after each measures tier A and the wrong-audio control (`compress.evaluate.wrong_audio`)
on that reference's clips: `train_history.json["curve"]` and `learning_curve.png` in the model card. Those clips
are recorded as "measured" (read only to measure, so the evaluate stage still counts them held-out); the curve
informs the recipe's choice of steps, so report scores on it as what they are.

The manifest's `inputs_seen` lists the reference's clips (id, content key) and which trained the student ("train")
or were held out ("holdout"); an evaluation on the clips it trained on is refused (`compress.reference.seen`).

The artifact holds the student (`save_pretrained`: config.json + safetensors, loads with `Artifact.load_model`)
and `train_history.json` (the loss of every step, and in `terms` that of each loss term). Metrics:
`heldout_error_before` / `heldout_error` (MSE of the student's latents, or frames for the decoder, against the
teacher's on the held-out inputs; per frame, with or without `sync`) and `heldout_improvement` (1 - after / before).

`method: dmd` (DMD2, as LiveAvatar's 4-step LoRA): LoRA adapters on the input model (the source, or a pruned /
quantized artifact) learn to sample in K flow-matching Euler steps on LiveAvatar's sigmas without guidance, on the
reference's conditioning (text, audio, reference and motion latents of each clip). The real score is the frozen
`teacher` with CFG (`real_guidance_scale`, default the reference's); the fake score is LoRA on the same teacher
(zero at the start), trained on the generator's samples `fake_updates_per_step` times per generator step.

    - kind: distill
      name: dmd
      method: dmd
      input: source                 # or a prune / quantize stage: the generator's base
      teacher: source               # the real score, with CFG
      reference: reference          # the conditioning; its last `holdout` inputs measure the K-step error
      holdout: 1
      dmd: {num_inference_steps: 4, rank: 16, fake_updates_per_step: 5, regression_warmup_steps: 20}
      train: {steps: 200, batch_size: 1, lr: 1.0e-4, checkpoint_every: 50}

The artifact holds `adapters/` (peft; with the teacher's layout also `adapters/liveavatar.safetensors`, the same
adapters as LiveAvatar's loader reads them), the merged model and `train_history.json`; its manifest's
`sampling` says how to sample it (`{"sampler": "euler", "num_inference_steps": K, "guidance_scale": 0.0,
"shift": 3.0}`). Metrics: `heldout_error_before` / `heldout_error` (relative error of the K-step samples from the
teacher's noise against the teacher's latents on the held-out inputs), DiT forwards per clip against the teacher's.

When `input` is the teacher itself (the same artifact), generator and fake score are two named adapter sets on
ONE base (`shared-base`; the real score runs it with both disabled); a pruned or quantized input is the
generator's own base (`two-bases`). The log and the manifest's `dmd_layout` say which ran. Under torchrun,
`train: {sharding: fsdp}` shards the bases with FSDP2 (each DiT block, then the rest), as `compress vram
--task dmd-train --sharding fsdp` plans it; the default `ddp` replicates them. `dmd: {checkpointing: true}`
recomputes each DiT block's activations in the backward instead of keeping them (the plan's default).

Training checkpoints live in `<output>/.checkpoints/<stage name>/<config hash>/`, outside the stage's partial
artifact directory (which a failed or killed run loses): running the recipe again after a kill resumes from the
latest checkpoint, exactly. They are deleted once the stage has finished. Under torchrun every rank trains
(DDP, gloo on CPU; or FSDP2 for dmd), each on its own share of the training inputs.
"""

from __future__ import annotations

import shutil
from typing import Literal

from pydantic import Field, field_validator, model_validator

from compress.distill.config import DmdConfig, LoraRecoveryConfig, LossConfig, TrainConfig
from compress.errors import UserInputError
from compress.models.auto import preset_class_name
from compress.stages.base import Stage
from compress.stages.refs import ModelRef, StageRef
from compress.utils.hashing import sha256_json

CHECKPOINTS_DIR = ".checkpoints"


class DistillStage(Stage):
    kind = "distill"
    artifact_version = 2  # 2: records the reference clips it saw (inputs_seen), which evaluation reads
    summary = ("distill the teacher's reference outputs into a student (lip-sync, VAE decoder), LoRA recovery "
               "adapters or a few-step DMD generator")
    key_metrics = ("params", "heldout_error", "heldout_improvement", "train_wall_s")
    distributed = True

    method: Literal["student", "lora", "dmd"] = "student"
    student: str | None = Field(default=None, description="student preset: lipsync-30m, lipsync-120m, "
                                                          "lipsync-450m, tiny-vae-decoder, tiny-frame-decoder")
    student_config: dict = Field(default_factory=dict, description="overrides of the preset's config "
                                                                   "(e.g. masked_input: reference)")
    reference: StageRef["reference"] | None = Field(default=None, description="the reference stage whose outputs are "
                                                                            "the targets")
    teacher: ModelRef = Field(default="source", description="lora, dmd: the stage (or 'source') whose model is the "
                                                            "teacher")
    holdout: int = Field(default=1, ge=0, description="student, dmd: the last N reference inputs are held out")
    losses: LossConfig | None = Field(default=None, description="loss weights; default latent_mse 1 "
                                                                "(lip-sync), pixel_l1 1 (decoder)")
    sync_expert: StageRef["sync_expert"] | None = Field(
        default=None, description="the sync_expert stage whose frozen expert scores the `sync` loss (lip-sync "
                                  "students; not the evaluate stage's expert)")
    train: TrainConfig = Field(default_factory=TrainConfig)
    recolour: int = Field(default=0, ge=0, description="tiny-vae-decoder: recoloured and randomly mirrored copies of "
                                                       "each training clip, re-encoded by the teacher's VAE, added to "
                                                       "its examples (compress.distill.recolour)")
    curve_reference: StageRef["reference"] | None = Field(
        default=None, description="lip-sync students: a held-out reference on which tier A and the wrong-audio "
                                  "control are measured every `curve_every` steps (the model card's learning curve)")
    curve_every: int = Field(default=100, ge=1, description="steps between learning-curve points (a multiple of "
                                                            "train.checkpoint_every)")
    lora: dict = Field(default_factory=dict, description="lora: compress.distill.lora.LoraRecoveryConfig fields")
    dmd: dict = Field(default_factory=dict, description="dmd: compress.distill.config.DmdConfig fields")

    @field_validator("lora")
    @classmethod
    def _lora_settings(cls, value: dict) -> dict:
        if not value:
            return value
        return LoraRecoveryConfig.model_validate(value).model_dump(mode="json")

    @field_validator("dmd")
    @classmethod
    def _dmd_settings(cls, value: dict) -> dict:
        return DmdConfig.model_validate(value).model_dump(mode="json") if value else value

    @model_validator(mode="after")
    def _method_fields(self) -> "DistillStage":
        if self.method == "student" and (self.student is None or self.reference is None):
            raise ValueError("method 'student' needs `student` (a preset) and `reference` (a reference stage)")
        if self.method == "lora" and (self.student is not None or self.student_config):
            raise ValueError("method 'lora' trains adapters on the input model; `student` does not apply")
        if self.recolour and self.method != "student":
            raise ValueError(f"recolour applies to method 'student' (a tiny-vae-decoder), not '{self.method}'")
        if self.dmd and self.method != "dmd":
            raise ValueError(f"`dmd` settings apply to method 'dmd', not '{self.method}'")
        if self.train.sharding != "ddp" and self.method != "dmd":
            raise ValueError(f"train.sharding '{self.train.sharding}' applies to method 'dmd'; method "
                             f"'{self.method}' trains with DDP under torchrun")
        if self.method == "dmd":
            self._check_dmd()
        if self.curve_reference and not (self.student or "").startswith("lipsync"):
            raise ValueError("curve_reference: the learning curve measures lip-sync students (lipsync-*)")
        if self.curve_reference and self.curve_every % self.train.checkpoint_every:
            raise ValueError(f"curve_every ({self.curve_every}) must be a multiple of train.checkpoint_every "
                             f"({self.train.checkpoint_every}): each learning-curve point resumes from a checkpoint")
        self._check_sync()
        return self

    def _check_dmd(self) -> None:
        if self.reference is None:
            raise ValueError("method 'dmd' needs `reference`: the reference stage whose conditioning it trains on")
        given = [name for name in ("student", "student_config", "losses", "sync_expert", "lora") if getattr(self, name)]
        if given:
            raise ValueError(f"method 'dmd' trains LoRA adapters by distribution matching; {', '.join(given)} does "
                             f"not apply (its settings go in `dmd`)")
        if self.holdout < 1:
            raise ValueError("method 'dmd' needs holdout >= 1: the held-out inputs measure its K-step samples")
        if self.train.grad_accum != 1 or self.train.ema_decay is not None:
            raise ValueError("method 'dmd': train.grad_accum and train.ema_decay are not supported")

    def _check_sync(self) -> None:
        weight = self.losses.sync if self.losses else 0.0
        if weight and not self.sync_expert:
            raise ValueError("losses.sync needs `sync_expert`: the sync_expert stage whose expert scores it")
        if not self.sync_expert:
            return
        if not weight:
            raise ValueError("sync_expert is set but losses.sync is 0: give the sync loss a weight, or drop it")
        if self.method == "lora" or preset_class_name(self.student) == "TinyVAEDecoder":
            raise ValueError(f"sync_expert: the sync loss trains lip-sync students (lipsync-*), not "
                             f"{self.student or 'LoRA adapters'}")

    def references(self) -> list:
        """`teacher` is read by LoRA recovery and DMD only (a student's resume key does not name it)."""
        return [ref for ref in super().references() if self.method != "student" or ref[0] != ("teacher",)]

    def run(self, source, out, ctx) -> dict:
        checkpoints = self._checkpoint_dir(source, ctx)
        if self.method == "lora":
            metrics = self._run_lora(source, out, ctx, checkpoints)
        elif self.method == "dmd":
            metrics = self._run_dmd(source, out, ctx, checkpoints)
        else:
            metrics = self._run_student(out, ctx, checkpoints)
        ctx.barrier()
        if ctx.rank == 0:
            shutil.rmtree(checkpoints.parent, ignore_errors=True)
        return metrics

    def _checkpoint_dir(self, source, ctx):
        reads = {name: ctx.artifact(name).hash for name in self.referenced_stages().values()}
        key = sha256_json({"stage": self.config_dict(), "input": source.hash, "reads": reads, "seed": ctx.seed,
                           "world_size": ctx.world_size})
        return ctx.output_dir / CHECKPOINTS_DIR / self.display_name / key[:16]

    def _run_lora(self, source, out, ctx, checkpoints) -> dict:
        from compress.distill.lora import run_lora_recovery
        from compress.reference.seen import SEEN_FIELD, inputs_seen

        teacher = ctx.artifact(self.teacher).load_model(device=ctx.device)
        reference = ctx.reference(self.reference) if self.reference else None
        if reference is not None:  # its noised clips are the adapters' training data
            out.extra[SEEN_FIELD] = inputs_seen(reference, "train")
        return run_lora_recovery(source, teacher, reference, LoraRecoveryConfig.model_validate(self.lora),
                                 self.train, out, ctx, checkpoint_dir=checkpoints)

    def _run_dmd(self, source, out, ctx, checkpoints) -> dict:
        from compress.distill.data import split_rows
        from compress.distill.dmd_training import run_dmd
        from compress.reference.seen import SEEN_FIELD, inputs_seen

        reference = ctx.reference(self.reference)
        heldout = split_rows(len(reference.rows), self.holdout)[1]
        out.extra[SEEN_FIELD] = inputs_seen(reference, "train", tuple(heldout))
        return run_dmd(source, ctx.artifact(self.teacher), reference, self.holdout, DmdConfig.model_validate(self.dmd),
                       self.train, out, ctx, checkpoints)

    def _run_student(self, out, ctx, checkpoints) -> dict:
        from compress.distill.trainer import train
        from compress.reference.seen import SEEN_FIELD, inputs_seen

        reference = ctx.reference(self.reference)
        model = self._build_student(ctx)
        task = self._task(model, reference, ctx, checkpoints)
        out.extra[SEEN_FIELD] = inputs_seen(reference, "train", tuple(task.heldout_rows))
        params = sum(p.numel() for p in model.parameters())
        ctx.log(f"  {self.student}: {params:,} parameters, {len(task.train_rows)} training / "
                f"{len(task.heldout_rows)} held-out inputs")
        before = task.heldout_error()
        if self.curve_reference:
            result, curve = self._train_with_curve(task, out, ctx, checkpoints)
        else:
            result, curve = train(task, self.train, checkpoints, ctx=ctx, log_prefix=f"{self.display_name}/train"), []
        after = task.heldout_error()
        if ctx.rank == 0:
            out.save_model(model.eval())
            out.write_json("train_history.json", {"losses": result["losses"], "terms": result["terms"],
                                                  "config": self.train.model_dump(), "curve": curve})
        out.extra["description"] = (f"{self.student} ({params:,} parameters) distilled from the teacher's reference "
                                    f"outputs in '{self.reference}' for {result['steps']} steps.")
        metrics = {"student": self.student, "params": params, "heldout_error_space": f"{task.error_space}_mse",
                   "heldout_error_before": before, "heldout_error": after,
                   "final_loss": result["final_loss"], "train_steps": result["steps"],
                   "train_wall_s": result["wall_s"], "train_samples_per_s": result["samples_per_s"],
                   "resumed_from_step": result["resumed_from"], "world_size": result["world_size"]}
        if before and after is not None:
            metrics["heldout_improvement"] = 1 - after / before
        if curve:
            metrics["curve"] = {key: curve[-1][key] for key in ("step", "tier_a", "wrong_audio")}
        return metrics

    def _train_with_curve(self, task, out, ctx, checkpoints):
        """Training in segments with tier A and the wrong-audio control on `curve_reference` after each (the
        clips are recorded as 'measured': read only to measure); the curve is plotted into the model card."""
        from compress.distill.curve import plot_learning_curve, train_with_curve
        from compress.evaluate.wrong_audio import curve_point
        from compress.face.landmarks import LandmarkDetector, LandmarksUnavailable
        from compress.reference.seen import SEEN_FIELD, inputs_seen

        reference = ctx.reference(self.curve_reference)
        out.extra[SEEN_FIELD]["clips"] += inputs_seen(reference, "measured")["clips"]
        components = reference.components()
        try:
            with LandmarkDetector() as detector:
                result, curve = train_with_curve(
                    task, self.train, checkpoints, self.curve_every, ctx=ctx,
                    log_prefix=f"{self.display_name}/train",
                    measure=lambda model: curve_point(model, reference, detector, components))
        except LandmarksUnavailable as err:
            raise UserInputError(f"distill curve_reference: tier A needs the face-landmark environment ({err}); "
                                 f"run scripts/setup_landmarks.sh or drop curve_reference") from None
        if ctx.rank == 0:
            series = {"tier A r0": lambda p: p["tier_a"]["zero_lag_corr"],
                      "wrong-audio r0": lambda p: p["wrong_audio"]["zero_lag_corr"],
                      "tier A gain": lambda p: p["tier_a"]["gain"],
                      "tier A max |clip lag|": lambda p: p["tier_a"]["max_clip_abs_lag"],
                      "frame PSNR (dB)": lambda p: p["tier_a"]["frame_psnr"]}
            bands = {"tier A r0": (0.8, 1.0), "wrong-audio r0": (-1.0, 0.4), "tier A gain": (0.8, 1.2),
                     "tier A max |clip lag|": (0, 1), "frame PSNR (dB)": (26, 40)}
            plot_learning_curve(curve, series, bands, out.path / "learning_curve.png",
                                f"{self.student} on '{self.curve_reference}' ({len(reference)} held-out clips)")
            out.extra["figures"] = ["learning_curve.png"]
        return result, curve

    def _build_student(self, ctx):
        import torch

        from compress.models.auto import get_preset

        preset = get_preset(self.student)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(ctx.seed)
            try:
                model = preset.model_class.from_config({**preset.config, **self.student_config})
            except TypeError as err:
                raise UserInputError(f"distill student_config: {err}") from None
        return model.to(ctx.device)

    def _task(self, model, reference, ctx, checkpoints):
        from compress.distill.students import DEFAULT_LOSSES, DecoderTask, LipSyncTask
        from compress.models.students import LipSyncStudent, TinyVAEDecoder

        if not isinstance(model, (LipSyncStudent, TinyVAEDecoder)):
            raise UserInputError(f"distill: '{self.student}' is not a student preset (lipsync-*, tiny-vae-decoder, "
                                 "tiny-frame-decoder)")
        losses = self.losses or DEFAULT_LOSSES[type(model)]
        boxes = self._mouth_boxes(losses, reference) if losses.mouth_weight else None
        common = dict(losses=losses, batch_size=self.train.batch_size, holdout=self.holdout, boxes=boxes)
        cache_dir = checkpoints / "frame-latents"
        video = isinstance(model, TinyVAEDecoder) and model.config.latents == "video"
        if self.recolour and not video:
            raise UserInputError(f"distill recolour: recoloured copies train decoders of video latents "
                                 f"(tiny-vae-decoder), not '{self.student}'")
        if video and not (self.recolour or model.config.reference):  # no VAE needed
            return DecoderTask(model, reference, **common)
        vae = reference.vae().to(ctx.device)
        if isinstance(model, TinyVAEDecoder):
            return DecoderTask(model, reference, vae=vae, cache_dir=cache_dir, recolour=self.recolour,
                               seed=self.train.seed, **common)
        sync = self._sync_setup(reference, ctx) if self.sync_expert else None
        return LipSyncTask(model, reference, vae, cache_dir=cache_dir, sync=sync, **common)

    @staticmethod
    def _mouth_boxes(losses, reference):
        """The mouth box of every clip (a dict by id), or the one fixed box."""
        from compress.distill.data import landmark_mouth_boxes, mouth_boxes

        if losses.mouth_box == "inputs":
            return mouth_boxes(reference)
        return landmark_mouth_boxes(reference) if losses.mouth_box == "landmarks" else losses.mouth_box

    def _sync_setup(self, reference, ctx):
        """The frozen expert and the boxes its stage would crop this reference's clips with."""
        from compress.distill.students import SyncSetup
        from compress.models.sync_expert import load_sync_expert
        from compress.reference.mouth import mouth_tracks

        artifact = ctx.artifact(self.sync_expert)
        mouth = artifact.manifest["stage_config"]["mouth"]
        boxes = {row["id"]: crops for row, _, crops in mouth_tracks(reference, mouth)}
        return SyncSetup(load_sync_expert(artifact).to(ctx.device), boxes)
