"""Trainer tasks that distill the teacher's reference outputs into the students of `compress.models.students`.

- `LipSyncTask`: per video frame, (log-mel window, reference latent, masked latent) -> the teacher frame's image
  latent (each teacher frame encoded as one image by the teacher's VAE; cached in `cache_dir`). With a sync
  expert (`SyncSetup`), each training example is a window of `WINDOW` consecutive frames of one clip
  (non-overlapping windows) with the expert's MFCC input, for the `sync` loss on the decoded frames.
- `DecoderTask`: per latent frame of the teacher's video latents (+ the one before it, and for a decoder against the
  reference image the VAE's decoding of the reference latent) -> its 4 teacher frames, with `recolour` also from
  recoloured copies of each clip (`compress.distill.recolour`); for a decoder of image latents (`latents: image`),
  per video frame: its image latent (as `LipSyncTask`'s, cached the same way) behind the reference latent -> the
  teacher frame.

Both read a `ReferenceArtifact`'s rows one at a time (`compress.distill.data.stream_batches`), hold out the last
inputs, and report `heldout_error`: latent MSE (lip-sync) or pixel MSE (decoder) on the held-out inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from compress.distill.config import LossConfig
from compress.distill.data import split_rows, stream_batches, stream_seed
from compress.distill.losses import combined_loss, expert_sync_loss
from compress.distill.recolour import recoloured_clip
from compress.errors import UserInputError
from compress.face.crops import stack_windows
from compress.face.mfcc import WINDOW, window_count
from compress.models.students import LipSyncStudent, TinyVAEDecoder, decoder_inputs
from compress.models.students.vae_io import (decode_latents, encode_frames, frames_to_pixels, reference_latent,
                                             reference_pixels)
from compress.models.sync_expert import SyncExpert, expert_audio_windows
from compress.utils.arrays import decode_array, decode_tensor

DEFAULT_LOSSES = {LipSyncStudent: LossConfig(latent_mse=1.0), TinyVAEDecoder: LossConfig(pixel_l1=1.0)}


class _ReferenceTask:
    """Shared parts: rows, the train / held-out split, batches, mouth boxes, held-out error."""

    error_space = "latent"

    def __init__(self, model, reference, vae, losses: LossConfig, batch_size: int, holdout: int,
                 boxes: dict[str, tuple] | tuple | None = None, cache_dir: Path | None = None):
        self.model, self.vae, self.losses, self.batch_size = model, vae, losses, batch_size
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.rows = reference.rows
        self.train_rows, self.heldout_rows = split_rows(len(self.rows), holdout)
        self.boxes = boxes
        if vae is not None:
            vae.requires_grad_(False).eval()

    def _box(self, row: dict, count: int) -> torch.Tensor:
        box = self.boxes if not isinstance(self.boxes, dict) else self.boxes.get(row["id"])
        return torch.tensor(box or (0.0, 0.0, 1.0, 1.0), dtype=torch.float32).expand(count, 4)

    def frame_latents(self, index: int) -> torch.Tensor:
        """Image latents [T, C, h, w] of row `index`'s teacher frames (encoded once by the
        teacher's VAE, cached in `cache_dir`)."""
        def encode():
            return {"latents": encode_frames(self.vae, decode_array(self.rows[index], "frames"))}

        return self._cached(f"frame-latents-{index:06d}", encode)["latents"]

    def _cached(self, name: str, compute: Callable[[], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """`compute()`'s tensors, computed once and kept in `cache_dir` as NAME.safetensors (written atomically)."""
        path = self.cache_dir / f"{name}.safetensors"
        if path.is_file():
            return load_file(path)
        tensors = {k: v.contiguous() for k, v in compute().items()}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{torch.randint(1 << 30, ()).item()}")
        save_file(tensors, tmp)
        tmp.replace(path)
        return tensors

    def batches(self, rank: int, world_size: int, seed: int):
        return stream_batches(self.train_rows, self.examples, self.batch_size, rank, world_size, seed)

    def examples(self, index: int) -> dict[str, torch.Tensor]:
        """Training examples of row `index` (by default `frame_examples`, as the held-out error uses)."""
        return self.frame_examples(index)

    def _on_device(self, batch: dict) -> dict:
        device = next(self.model.parameters()).device
        return {k: v.to(device) for k, v in batch.items()}

    @torch.no_grad()
    def heldout_error(self, model=None) -> float | None:
        """Mean squared error against the teacher on the held-out inputs (None without any)."""
        model = model or self.model
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        total, count = 0.0, 0
        for i in self.heldout_rows:
            examples = self.frame_examples(i)
            for start in range(0, len(examples["box"]), self.batch_size):
                batch = {k: v[start:start + self.batch_size].to(device) for k, v in examples.items()}
                pred, target = self._prediction(model, batch)
                total += float(((pred.float() - target.float()) ** 2).sum())
                count += target.numel()
        model.train(was_training)
        return total / count if count else None


@dataclass
class SyncSetup:
    """The `sync` loss's frozen expert and the int [T, 4] boxes it crops each clip's frames with, by clip id."""

    expert: SyncExpert
    crop_boxes: dict[str, np.ndarray]


class LipSyncTask(_ReferenceTask):
    def __init__(self, model: LipSyncStudent, reference, vae, losses: LossConfig, batch_size: int, holdout: int,
                 cache_dir: Path, boxes=None, sync: SyncSetup | None = None):
        if not losses.active():
            raise UserInputError("distill losses: the lip-sync student needs latent_mse, pixel_l1 or pixel_mse > 0")
        if bool(losses.sync) != (sync is not None):
            raise UserInputError("distill losses.sync: the sync loss needs a sync expert (`sync_expert`), and a "
                                 "sync expert a sync loss weight > 0")
        super().__init__(model, reference, vae, losses, batch_size, holdout, boxes, cache_dir)
        self.sync = sync
        if sync is not None:
            sync.expert.requires_grad_(False).eval()

    def frame_examples(self, index: int) -> dict[str, torch.Tensor]:
        """One example per video frame of row `index`."""
        row = self.rows[index]
        frames = decode_array(row, "frames")
        target = self.frame_latents(index)
        ref = reference_latent(row).expand_as(target)
        audio = self.model.audio_windows(decode_array(row, "audio").copy(), row["fps"], len(frames))
        return {"audio": audio, "ref": ref.contiguous(), "masked": self.model.masked(target, ref[:1]),
                "target": target, "frames": torch.from_numpy(frames.copy()), "box": self._box(row, len(frames))}

    def examples(self, index: int) -> dict[str, torch.Tensor]:
        """Per frame, or with the sync loss per window: every frame field [N, WINDOW, ...], the expert's crop
        boxes "crop_box" [N, WINDOW, 4] and its audio input "mfcc" [N, 1, 13, 20]."""
        if self.sync is None:
            return self.frame_examples(index)
        row = self.rows[index]
        frames = {**self.frame_examples(index), "crop_box": torch.from_numpy(self.sync.crop_boxes[row["id"]])}
        audio = decode_array(row, "audio")
        count = window_count(len(frames["box"]), len(audio), row["fps"])
        windows = {k: stack_windows(v, count)[::WINDOW] for k, v in frames.items()}
        return {**windows, "mfcc": expert_audio_windows(audio, row["fps"], count)[::WINDOW]}

    def _prediction(self, model, batch):
        return model(batch["audio"], batch["ref"], batch["masked"]), batch["target"]

    def loss(self, model, batch):
        batch = self._on_device(batch)
        if self.sync is not None:  # windows -> their frames, in order
            batch = {k: v if k == "mfcc" else v.flatten(0, 1) for k, v in batch.items()}
        pred, target = self._prediction(model, batch)
        pixel = self.losses.pixel_l1 or self.losses.pixel_mse
        decoded = decode_latents(self.vae, pred) if pixel or self.sync is not None else None
        pairs = {"latent": (pred, target)}
        if pixel:
            pairs["pixel"] = (decoded, frames_to_pixels(batch["frames"]).to(pred.device))
        total, logs = combined_loss(self.losses, pairs, batch["box"])
        if self.sync is None:
            return total, logs
        term = expert_sync_loss(self.sync.expert, decoded, batch["crop_box"], batch["mfcc"])
        return total + self.losses.sync * term, {**logs, "sync": float(term.detach())}


class DecoderTask(_ReferenceTask):
    """`recolour`: recoloured copies of each training clip (`compress.distill.recolour`, decoders of video latents)
    join its examples, drawn from `seed`. Decoders of image latents, recoloured copies and decoders against the
    reference image (`reference: true`) need the teacher's `vae`."""

    error_space = "pixel"

    def __init__(self, model: TinyVAEDecoder, reference, losses: LossConfig, batch_size: int, holdout: int,
                 boxes=None, vae=None, cache_dir: Path | None = None, recolour: int = 0, seed: int = 0):
        if losses.latent_mse or not losses.active():
            raise UserInputError("distill losses: the VAE decoder student outputs frames; use pixel_l1 and/or "
                                 "pixel_mse (latent_mse does not apply)")
        if losses.sync:
            raise UserInputError("distill losses.sync: the sync loss applies to lip-sync students, not the decoder")
        if model.config.latents == "image" and (vae is None or cache_dir is None):
            raise ValueError("DecoderTask: a decoder of image latents needs the teacher's VAE and a cache_dir")
        if recolour and (model.config.latents != "video" or vae is None or cache_dir is None):
            raise ValueError("DecoderTask: recoloured copies need a decoder of video latents, the teacher's VAE and a "
                             "cache_dir")
        if model.config.reference and vae is None:
            raise ValueError("DecoderTask: a decoder against the reference image needs the teacher's VAE")
        super().__init__(model, reference, vae, losses, batch_size, holdout, boxes, cache_dir)
        self.recolour, self.seed = recolour, seed
        self._references: dict[int, torch.Tensor] = {}  # row -> its reference pixels, decoded once

    def examples(self, index: int) -> dict[str, torch.Tensor]:
        """Row `index`'s own examples, then those of its recoloured copies."""
        own = self.frame_examples(index)
        copies = [self._recoloured(index, copy) for copy in range(self.recolour)]
        return {k: torch.cat([own[k], *(c[k] for c in copies)]) for k in own}

    def _recoloured(self, index: int, copy: int) -> dict[str, torch.Tensor]:
        """The examples of one recoloured copy of row `index` (every clip), cached."""
        row = self.rows[index]

        def compute():
            clips = [recoloured_clip(self.vae, row, clip, torch.Generator().manual_seed(
                stream_seed(self.seed, index, copy, clip))) for clip in range(row["num_clips"])]
            box = self._box(row, 1)[0]
            mirrored = box.new_tensor([1 - box[2], box[1], 1 - box[0], box[3]])
            per = self.model.config.frames_per_latent
            return {"latents": torch.cat([c.latents for c in clips]),
                    "previous": torch.cat([c.previous for c in clips]),
                    "frames": torch.cat([c.frames for c in clips]).unflatten(0, (-1, per)),
                    "box": torch.cat([(mirrored if c.mirrored else box).expand(len(c.latents), 4) for c in clips]),
                    "reference": torch.cat([c.reference.expand(len(c.latents), -1, -1, -1) for c in clips])}

        return self._cached(f"recoloured-{index:06d}-{copy}", compute)  # `examples` keeps the keys it needs

    def frame_examples(self, index: int) -> dict[str, torch.Tensor]:
        """One example per latent frame of row `index`."""
        row = self.rows[index]
        if self.model.config.latents == "image":
            latents = self.frame_latents(index)
            previous = reference_latent(row).expand_as(latents).contiguous()
        else:
            latents, previous = decoder_inputs(row)
        frames = decode_tensor(row, "frames")
        per = self.model.config.frames_per_latent
        if len(frames) != per * len(latents):
            raise UserInputError(f"distill: row {row['id']} has {len(frames)} frames for {len(latents)} latent "
                                 f"frames; the decoder student expects {per} per latent frame")
        examples = {"latents": latents, "previous": previous, "frames": frames.unflatten(0, (len(latents), per)),
                    "box": self._box(row, len(latents))}
        if self.model.config.reference:
            if index not in self._references:
                self._references[index] = reference_pixels(self.vae, reference_latent(row))
            examples["reference"] = self._references[index].expand(len(latents), -1, -1, -1)
        return examples

    def _prediction(self, model, batch):
        target = frames_to_pixels(batch["frames"].flatten(0, 1))
        prediction = model(batch["latents"], batch["previous"], batch.get("reference"))
        return prediction.flatten(0, 1), target.to(batch["latents"].device)

    def loss(self, model, batch):
        batch = self._on_device(batch)
        pred, target = self._prediction(model, batch)
        boxes = batch["box"].repeat_interleave(self.model.config.frames_per_latent, dim=0)
        return combined_loss(self.losses, {"pixel": (pred, target)}, boxes)
