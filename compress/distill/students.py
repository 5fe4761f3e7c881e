"""Trainer tasks that distill the teacher's reference outputs into the students of `compress.models.students`.

- `LipSyncTask`: per video frame, (log-mel window, reference latent, masked latent) -> the teacher frame's image
  latent (each teacher frame encoded as one image by the teacher's VAE; cached in `cache_dir`).
- `DecoderTask`: per latent frame of the teacher's video latents (+ the one before it) -> its 4 teacher frames.

Both read a reference artifact's rows one at a time (`compress.distill.data.stream_batches`), hold out the last
inputs, and report `heldout_error`: latent MSE (lip-sync) or pixel MSE (decoder) on the held-out inputs.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from compress.distill.data import split_rows, stream_batches
from compress.distill.losses import LossConfig, combined_loss
from compress.errors import UserInputError
from compress.models.students import LipSyncStudent, TinyVAEDecoder, decoder_inputs, mel_windows
from compress.models.students.vae_io import decode_latents, encode_frames, frames_to_pixels
from compress.pipelines.dataset import decode_array, load_reference_dataset

DEFAULT_LOSSES = {LipSyncStudent: LossConfig(latent_mse=1.0), TinyVAEDecoder: LossConfig(pixel_l1=1.0)}


class _ReferenceTask:
    """Shared parts: rows, the train / held-out split, batches, mouth boxes, held-out error."""

    error_space = "latent"

    def __init__(self, model, reference, vae, losses: LossConfig, batch_size: int, holdout: int,
                 boxes: dict[str, tuple] | tuple | None = None):
        self.model, self.vae, self.losses, self.batch_size = model, vae, losses, batch_size
        self.rows = load_reference_dataset(reference)
        self.train_rows, self.heldout_rows = split_rows(len(self.rows), holdout)
        self.boxes = boxes
        if vae is not None:
            vae.requires_grad_(False).eval()

    def _box(self, row: dict, count: int) -> torch.Tensor:
        box = self.boxes if not isinstance(self.boxes, dict) else self.boxes.get(row["id"])
        return torch.tensor(box or (0.0, 0.0, 1.0, 1.0), dtype=torch.float32).expand(count, 4)

    def batches(self, rank: int, world_size: int, seed: int):
        return stream_batches(self.train_rows, self.examples, self.batch_size, rank, world_size, seed)

    def _loss_pairs(self, model, batch) -> tuple[dict, torch.Tensor]:
        """({"latent" / "pixel": (prediction, target)}, the mouth box of each prediction)."""
        raise NotImplementedError

    def loss(self, model, batch):
        device = next(self.model.parameters()).device
        return combined_loss(self.losses, *self._loss_pairs(model, {k: v.to(device) for k, v in batch.items()}))

    @torch.no_grad()
    def heldout_error(self, model=None) -> float | None:
        """Mean squared error against the teacher on the held-out inputs (None without any)."""
        model = model or self.model
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        total, count = 0.0, 0
        for i in self.heldout_rows:
            examples = self.examples(i)
            for start in range(0, len(examples["box"]), self.batch_size):
                batch = {k: v[start:start + self.batch_size].to(device) for k, v in examples.items()}
                pred, target = self._prediction(model, batch)
                total += float(((pred.float() - target.float()) ** 2).sum())
                count += target.numel()
        model.train(was_training)
        return total / count if count else None


class LipSyncTask(_ReferenceTask):
    def __init__(self, model: LipSyncStudent, reference, vae, losses: LossConfig, batch_size: int, holdout: int,
                 cache_dir: Path, boxes=None):
        if not losses.active():
            raise UserInputError("distill losses: the lip-sync student needs latent_mse, pixel_l1 or pixel_mse > 0")
        super().__init__(model, reference, vae, losses, batch_size, holdout, boxes)
        self.cache_dir = Path(cache_dir)

    def frame_latents(self, index: int) -> torch.Tensor:
        """Image latents [T, C, h, w] of row `index`'s teacher frames (encoded once, cached on disk)."""
        row = self.rows[index]
        path = self.cache_dir / f"frame-latents-{index:06d}.safetensors"
        if path.is_file():
            return load_file(path)["latents"]
        latents = encode_frames(self.vae, decode_array(row, "frames"))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{torch.randint(1 << 30, ()).item()}")
        save_file({"latents": latents.contiguous()}, tmp)
        tmp.replace(path)
        return latents

    def examples(self, index: int) -> dict[str, torch.Tensor]:
        row = self.rows[index]
        frames = decode_array(row, "frames")
        target = self.frame_latents(index)
        ref = torch.from_numpy(decode_array(row, "ref_latents").copy())[:, 0][None].expand_as(target)
        audio = mel_windows(decode_array(row, "audio").copy(), row["fps"], len(frames), self.model.config.audio_window)
        return {"audio": audio, "ref": ref.contiguous(), "masked": self.model.masked(target, ref[:1]),
                "target": target, "frames": torch.from_numpy(frames.copy()), "box": self._box(row, len(frames))}

    def _prediction(self, model, batch):
        return model(batch["audio"], batch["ref"], batch["masked"]), batch["target"]

    def _loss_pairs(self, model, batch) -> tuple[dict, torch.Tensor]:
        pred, target = self._prediction(model, batch)
        pairs = {"latent": (pred, target)}
        if self.losses.pixel_l1 or self.losses.pixel_mse:
            pairs["pixel"] = (decode_latents(self.vae, pred), frames_to_pixels(batch["frames"]).to(pred.device))
        return pairs, batch["box"]


class DecoderTask(_ReferenceTask):
    error_space = "pixel"

    def __init__(self, model: TinyVAEDecoder, reference, losses: LossConfig, batch_size: int, holdout: int,
                 boxes=None):
        if losses.latent_mse or not losses.active():
            raise UserInputError("distill losses: the VAE decoder student outputs frames; use pixel_l1 and/or "
                                 "pixel_mse (latent_mse does not apply)")
        super().__init__(model, reference, None, losses, batch_size, holdout, boxes)

    def examples(self, index: int) -> dict[str, torch.Tensor]:
        row = self.rows[index]
        latents, previous = decoder_inputs(row)
        frames = torch.from_numpy(decode_array(row, "frames").copy())
        per = self.model.config.frames_per_latent
        if len(frames) != per * len(latents):
            raise UserInputError(f"distill: row {row['id']} has {len(frames)} frames for {len(latents)} latent "
                                 f"frames; the decoder student expects {per} per latent frame")
        return {"latents": latents, "previous": previous, "frames": frames.unflatten(0, (len(latents), per)),
                "box": self._box(row, len(latents))}

    def _prediction(self, model, batch):
        target = frames_to_pixels(batch["frames"].flatten(0, 1))
        return model(batch["latents"], batch["previous"]).flatten(0, 1), target.to(batch["latents"].device)

    def _loss_pairs(self, model, batch) -> tuple[dict, torch.Tensor]:
        pred, target = self._prediction(model, batch)
        return {"pixel": (pred, target)}, batch["box"].repeat_interleave(self.model.config.frames_per_latent, dim=0)
