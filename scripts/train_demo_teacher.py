"""Train the `demo` preset: a tiny Wan2.2-S2V teacher that has learned to talk, on CPU.

    python scripts/train_demo_teacher.py --work /tmp/demo-train            # writes compress/models/presets/demo/

Data: the built-in synthetic talking-face set (`compress.data.build_synthetic_set`, split "train": 12 sentences,
espeak-ng voices x rates, the five astronaut identities), 96x96 at 16 fps, 48-frame clips.
1. VAE: a small Wan2.2-style `AutoencoderKLWan` (`DEMO_VAE_CONFIG`: z_dim 16, stride 4x8x8) learns to reconstruct
   single frames (MSE, mouth box weighted x16, KL 1e-6); then, inflated to video (`inflate_to_video`) and with
   only its temporal resamplers trainable, to encode whole clips [neutral face, 48 frames] and draw them back
   with one mouth per 4-frame chunk (`chunk_held_frames`); then its per-channel latent mean / std are fitted on
   whole clips and stored in its config (the pipeline normalises latents with them).
2. DiT: `WanS2VTransformer3DModel` with the `demo` config, flow matching (sigma ~ U(0, 1), target
   noise - clean) on the VAE latents of clip prefixes of 16, 32 or 48 frames, conditioned exactly as the
   pipeline's first clip: reference latent, no motion tokens, the fixed prompt's umT5 embedding, and
   `LogMelAudioEncoder` features; text and audio are dropped together 10% of the time (for CFG). Mouth-box
   latent cells weigh x4 in the loss.
3. Check: held-out sentences (`compress.pipelines.demo_check.heldout_set`: 5 clips) are generated with their own and with another clip's audio;
   the pooled correlation of the mouth opening with the true schedule (MediaPipe landmarks when
   .venv-landmarks exists, and a pixel measure) and the frame PSNR go into the model card, README.md.
Seeded; resumable (a checkpoint in --work every --save-every steps; rerun the same command to continue).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKLWan
from rich.progress import Progress

from compress.data import MouthBox, build_synthetic_set, load_synthetic_set, split_sentences
from compress.data.synthetic import PROMPT
from compress.models.demo import DEMO_CONFIG, DEMO_DIR, DEMO_FRAMES, DEMO_SIZE, DEMO_VAE_CONFIG
from compress.models.s2v import WanS2VTransformer3DModel
from compress.pipelines.audio import audio_features, load_audio
from compress.pipelines.components import (COMPONENT_DIRS, ByteTokenizer, S2VComponents, flow_scheduler,
                                          tiny_text_encoder)
from compress.pipelines.demo_check import (HELDOUT_VIDEOS, chunk_held_frames, heldout_check, heldout_set,
                                          lagged_correlation)
from compress.pipelines.log_mel_audio import LogMelAudioEncoder
from compress.pipelines.s2v import FPS, UPSTREAM_NEGATIVE_PROMPT, S2VPipeline
from compress.pipelines.video import load_image, prepare_image

FRAMES = DEMO_FRAMES
PREFIXES = (4, 8, 12)  # latent frames per DiT training sample (16, 32, 48 pixel frames)
MOUTH_WEIGHT = 4.0  # of the mouth-box latent cells in the DiT's loss
# of the mouth box's pixels in the VAE's loss: the face mesh reads lips a few pixels wide, and a VAE that blurs them
# draws mouths it reads as closed
VAE_MOUTH_WEIGHT = 16.0


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, required=True, help="data, checkpoints and logs")
    p.add_argument("--out", type=Path, default=DEMO_DIR, help="where the preset is written")
    p.add_argument("--clips", type=int, default=60, help="training clips")
    p.add_argument("--vae-steps", type=int, default=700, help="VAE steps on single frames")
    p.add_argument("--vae-batch", type=int, default=16)
    p.add_argument("--vae-lr", type=float, default=2e-3, help="learning rate of the single-frame VAE phase")
    p.add_argument("--vae-clip-steps", type=int, default=150, help="VAE steps on whole clips, after --vae-steps")
    p.add_argument("--vae-clip-batch", type=int, default=2)
    p.add_argument("--vae-clip-lr", type=float, default=1e-3)
    p.add_argument("--dit-steps", type=int, default=3000)
    p.add_argument("--dit-batch", type=int, default=6)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--save-every", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--check-steps", type=int, default=10, help="sampling steps of the held-out check")
    p.add_argument("--check-guidance", type=float, default=3.0, help="CFG scale of the held-out check")
    p.add_argument("--check-only", action="store_true",
                   help="only rerun the held-out check on the preset in --out and rewrite its card")
    return p.parse_args()


# ---- data ------------------------------------------------------------------------------------------------

def load_clips(work: Path, count: int, seed: int) -> list[dict]:
    """The training clips (built once, same bytes on every rerun): frames, face, audio, mouth box, and the VAE's
    clip-phase target ("held": `chunk_held_frames`)."""
    path = work / "data" / "inputs.yaml"
    if not path.is_file():
        build_synthetic_set(path.parent, num_clips=count, size=DEMO_SIZE, frames=FRAMES, seed=seed, split="train")
    meta = load_synthetic_set(path)
    if meta["speech_source"] != "espeak-ng":
        raise SystemExit("espeak-ng is needed for the training speech (apt-get install espeak-ng)")
    return [_clip(entry) for entry in meta["clips"]]


def _clip(entry: dict) -> dict:
    face, box = np.asarray(load_image(entry["image"])), entry["mouth_box"]
    return {"frames": np.load(entry["frames"]), "face": face, "audio": load_audio(entry["audio"]), "box": box,
            "held": chunk_held_frames(face, np.load(entry["schedule"]), MouthBox(**box)),
            **{k: entry[k] for k in ("sentence", "identity", "voice")}}


def pixels(frames: np.ndarray) -> torch.Tensor:
    """uint8 [T, H, W, 3] -> [3, T, H, W] in [-1, 1]."""
    return torch.from_numpy(frames).permute(3, 0, 1, 2).float() / 127.5 - 1


def mouth_mask(box: dict, size: int) -> torch.Tensor:
    """[size, size] 1 inside the mouth region (lip seam down to the displaced chin), else 0."""
    mask = torch.zeros(size, size)
    half, top = box["half_width"] * size, box["cy"] * size - box["smile"] * size - 1
    x0, x1 = math.floor(box["cx"] * size - 1.3 * half), math.ceil(box["cx"] * size + 1.3 * half)
    y0, y1 = math.floor(top), math.ceil(box["cy"] * size + box["jaw"] * size + 1.2 * half)
    mask[max(y0, 0) : y1, max(x0, 0) : x1] = 1
    return mask


# ---- checkpoints -----------------------------------------------------------------------------------------

def load_state(path: Path) -> dict | None:
    return torch.load(path, weights_only=True) if path.is_file() else None


def save_state(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def train_loop(name: str, work: Path, model, steps: int, lr: float, seed: int, save_every: int, loss_fn) -> list:
    """AdamW with warm-up + cosine decay; resumes from work/NAME.pt. Returns the loss log (step, loss)."""
    path = work / f"{name}.pt"
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 50) * 0.5 * (1 + math.cos(math.pi * min(s / steps, 1.0))))
    generator = torch.Generator().manual_seed(seed)
    state, log, step = load_state(path), [], 0
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        generator.set_state(state["generator"])
        step, log = int(state["step"]), state["log"].tolist()
    model.train()
    with Progress() as progress:
        task = progress.add_task(f"{name}", total=steps, completed=step)
        while step < steps:
            loss = loss_fn(model, generator)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            log.append([step, loss.item()])
            progress.update(task, completed=step, description=f"{name} loss {np.mean([v for _, v in log[-20:]]):.4f}")
            if step % save_every == 0 or step == steps:
                save_state(path, {"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                                  "generator": generator.get_state(), "step": torch.tensor(step),
                                  "log": torch.tensor(log)})
    return log


# ---- phase 1: VAE ----------------------------------------------------------------------------------------

def vae_loss(clips: list[dict], batch: int, whole_clips: bool):
    """Mouth-weighted reconstruction of single frames (any talking frame, as a 1-frame video), or whole clips
    [neutral face, talking frames] decoded to [neutral face, chunk-held frames] (the causal decoder's temporal
    receptive field spans a whole clip: one trained on a few 4-frame chunks only drifts to noise over the later
    chunks of a clip)."""
    masks = [mouth_mask(c["box"], DEMO_SIZE) for c in clips]

    def loss_fn(vae, generator):
        items = torch.randint(len(clips), (batch,), generator=generator).tolist()
        if whole_clips:
            x, target = (torch.stack([pixels(np.concatenate([clips[i]["face"][None], clips[i][key]])) for i in items])
                         for key in ("frames", "held"))
        else:
            frames = torch.randint(FRAMES, (batch,), generator=generator).tolist()
            x = target = torch.stack([pixels(clips[i]["frames"][f : f + 1]) for i, f in zip(items, frames)])
        posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.sample(generator)).sample
        weight = 1 + (VAE_MOUTH_WEIGHT - 1) * torch.stack([masks[i] for i in items])[:, None, None]
        return (weight * (recon - target) ** 2).mean() + 1e-6 * posterior.kl().mean()

    return loss_fn


@torch.no_grad()
def inflate_to_video(vae) -> None:
    """Make a VAE trained on single frames treat a video frame by frame, the usual start of a video VAE from an
    image one: the causal convolutions' taps on earlier frames start at zero, the temporal downsamplers keep the
    latest frame and the upsamplers repeat it. Single frames only ever saw those taps through zero padding, so the
    image behaviour is unchanged; whole clips then start near it (25 dB instead of 10 dB) and the clip phase
    learns how to pack each 4-frame chunk into one latent frame."""
    from diffusers.models.autoencoders.autoencoder_kl_wan import WanCausalConv3d, WanResample

    for module in vae.modules():
        if isinstance(module, WanResample) and hasattr(module, "time_conv"):
            weight = module.time_conv.weight  # [out, in, 3, 1, 1]; upsamplers have out = 2 x in (two frames)
            weight.zero_()
            module.time_conv.bias.zero_()
            weight[:, :, -1] = torch.eye(weight.shape[1])[..., None, None].repeat(weight.shape[0] // weight.shape[1],
                                                                                  1, 1, 1)
        elif isinstance(module, WanCausalConv3d) and module.weight.shape[2] > 1:
            module.weight[:, :, :-1] = 0


def train_only_time_convs(vae) -> None:
    """Freeze all but the temporal resamplers (`time_conv`) for the clip phase: it learns how a chunk is packed
    into one latent frame and drawn back, and the lips stay as sharp as the single-frame phase drew them (tuning
    every weight on whole clips blurs them again)."""
    for name, param in vae.named_parameters():
        param.requires_grad_("time_conv" in name)


@torch.no_grad()
def fit_latent_stats(vae, clips: list[dict]) -> None:
    """Per-channel mean / std of the posterior means of whole clips, into the VAE's config."""
    vae.eval()
    mus = [vae.encode(pixels(np.concatenate([c["face"][None], c["frames"]]))[None]).latent_dist.mode()
           for c in clips]
    z = torch.cat([m.transpose(0, 1).flatten(1) for m in mus], dim=1)
    vae.register_to_config(latents_mean=z.mean(1).tolist(), latents_std=z.std(1).tolist())


# ---- phase 2: DiT ----------------------------------------------------------------------------------------

@torch.no_grad()
def dit_samples(components: S2VComponents, clips: list[dict]) -> dict[str, torch.Tensor]:
    """Everything the DiT sees, per clip, computed the way the pipeline computes it."""
    pipe = S2VPipeline(components)
    ref, clean, audio, weight = [], [], [], []
    for c in track(clips, "encoding clips"):
        ref.append(pipe.encode_video(prepare_image(load_image(c["face"]), DEMO_SIZE, DEMO_SIZE))[0])
        clean.append(pipe.encode_video(pixels(np.concatenate([c["face"][None], c["frames"]]))[None])[0, :, 1:])
        audio.append(audio_features(components.audio_encoder, c["audio"], FPS, FRAMES))
        cells = F.avg_pool2d(mouth_mask(c["box"], DEMO_SIZE)[None], 8)[0] > 0
        weight.append(1 + (MOUTH_WEIGHT - 1) * cells.float())
    text_len = components.dit.config.text_len

    def text(prompt):
        e = components.encode_text(prompt)[0]
        return F.pad(e, (0, 0, 0, text_len - e.shape[0]))

    return {"ref": torch.stack(ref), "clean": torch.stack(clean), "audio": torch.stack(audio),
            "weight": torch.stack(weight), "text": text(PROMPT), "negative": text(UPSTREAM_NEGATIVE_PROMPT)}


def track(items, description):
    with Progress() as progress:
        yield from progress.track(items, description=description)


def dit_loss(data: dict, batch: int, drop: float = 0.1):
    def loss_fn(dit, generator):
        items = torch.randint(len(data["clean"]), (batch,), generator=generator)
        frames = PREFIXES[int(torch.randint(len(PREFIXES), (1,), generator=generator))]
        clean = data["clean"][items, :, :frames]
        noise = torch.randn(clean.shape, generator=generator)
        sigma = torch.rand(batch, generator=generator)
        s = sigma.view(-1, 1, 1, 1, 1)
        dropped = (torch.rand(batch, generator=generator) < drop).view(-1, 1, 1)
        text = torch.where(dropped, data["negative"], data["text"])
        audio = data["audio"][items, ..., : 4 * frames] * ~dropped[..., None]
        pred = dit((1 - s) * clean + s * noise, sigma * 1000, text, audio, data["ref"][items],
                   drop_motion_frames=True).sample
        return (data["weight"][items, None, None] * (pred - (noise - clean)) ** 2).mean()

    return loss_fn


# ---- main ------------------------------------------------------------------------------------------------

def seeded(build, seed: int):
    torch.manual_seed(seed)
    return build()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.check_only:
        return write_card(args, json.loads((args.out / "training.json").read_text()))
    start = time.perf_counter()
    clips = load_clips(args.work, args.clips, args.seed)
    print(f"{len(clips)} clips, {len({c['sentence'] for c in clips})} sentences, "
          f"{len({c['identity'] for c in clips})} identities, {len({c['voice'] for c in clips})} voices")

    vae = seeded(lambda: AutoencoderKLWan(**DEMO_VAE_CONFIG), args.seed + 1)
    train_loop("vae", args.work, vae, args.vae_steps, args.vae_lr, args.seed, args.save_every,
               vae_loss(clips, args.vae_batch, whole_clips=False))
    inflate_to_video(vae)
    train_only_time_convs(vae)
    vae_log = train_loop("vae-clips", args.work, vae, args.vae_clip_steps, args.vae_clip_lr, args.seed, args.save_every,
                         vae_loss(clips, args.vae_clip_batch, whole_clips=True))
    fit_latent_stats(vae, clips)

    dit = seeded(lambda: WanS2VTransformer3DModel(**DEMO_CONFIG), args.seed + 2)
    audio_encoder = LogMelAudioEncoder(n_mels=DEMO_CONFIG["audio_dim"],
                                       num_hidden_states=DEMO_CONFIG["num_audio_layers"])
    audio_encoder.fit_normalisation([audio_encoder.log_mel(torch.from_numpy(_standardise(c["audio"]))[None])[0]
                                     for c in clips])
    components = S2VComponents(
        dit=dit, vae=vae.eval(), tokenizer=ByteTokenizer(), audio_encoder=audio_encoder.eval(),
        scheduler=flow_scheduler(),
        text_encoder=seeded(lambda: tiny_text_encoder(DEMO_CONFIG["text_dim"]), args.seed + 3).eval())
    data = dit_samples(components, clips)
    dit_log = train_loop("dit", args.work, dit, args.dit_steps, args.lr, args.seed + 1, args.save_every,
                         dit_loss(data, args.dit_batch))
    components.save(args.out, dit_folder="")
    record = {"args": {k: str(v) for k, v in vars(args).items()}, "wall_s": round(time.perf_counter() - start, 1),
              "torch_threads": args.threads, "train_sentences": list(split_sentences("train")),
              "clips": [{k: c[k] for k in ("sentence", "identity", "voice")} for c in clips],
              "vae_loss_last_50": float(np.mean([v for _, v in vae_log[-50:]])),
              "dit_loss_last_50": float(np.mean([v for _, v in dit_log[-50:]]))}
    write_card(args, record)


def write_card(args, record: dict) -> None:
    """Run the held-out check on the preset in --out; write training.json and the model card."""
    record["check"] = check(args)
    (args.out / "training.json").write_text(json.dumps(record, indent=1) + "\n")
    (args.out / "README.md").write_text(model_card(record))
    print(json.dumps({k: v for k, v in record.items() if k not in ("clips", "train_sentences")}, indent=1))


def check(args) -> dict:
    """The held-out lip-sync check (what tests/models/test_demo_teacher.py asserts), for the model card."""
    inputs = heldout_set(args.work / "heldout")
    shipped = S2VComponents.from_dirs(args.out, *(args.out / d for d in COMPONENT_DIRS))  # exactly what ships
    result = heldout_check(shipped, inputs, args.check_steps, args.check_guidance)
    out = {"clips": len(result["truth"]), "steps": args.check_steps, "guidance_scale": args.check_guidance,
           "psnr_db": round(result["psnr"], 2),
           "pixel": {**_summary(result["pixel_correlation"], result["pixel_swapped"]),
                     "vae_round_trip_lag0": round(result["pixel_reconstructed"], 3),
                     "chunk_held_lag0": round(result["pixel_chunk_held"], 3)}}
    from compress.face.landmarks import LandmarkDetector, LandmarksUnavailable
    from compress.face.mouth import mouth_opening

    try:
        with LandmarkDetector() as detector:
            tracks = {k: [detector.detect(v) for v in result[k]] for k in HELDOUT_VIDEOS}
    except LandmarksUnavailable as err:  # optional here (scripts/setup_landmarks.sh); the card says so
        out["landmarks"] = f"not measured: {err}"
        return out
    mouth = {k: [mouth_opening(t.points) for t in v] for k, v in tracks.items()}
    out["landmarks"] = {**_summary(lagged_correlation(mouth["own"], result["truth"]),
                                   lagged_correlation(mouth["swapped"], result["truth"])[0]),
                        "frames_with_face": _faces(tracks["own"] + tracks["swapped"])}
    for key, name in (("reconstructed", "landmarks_vae_round_trip"), ("chunk_held", "landmarks_chunk_held")):
        correlation = lagged_correlation(mouth[key], result["truth"])
        out[name] = {"correlation_lag0": round(correlation[0], 3), "best_lag": max(correlation, key=correlation.get),
                     "frames_with_face": _faces(tracks[key])}
    return out


def _faces(tracks) -> str:
    return f"{sum(int(t.found.sum()) for t in tracks)} / {sum(len(t.found) for t in tracks)}"


def _summary(correlation: dict[int, float], swapped: float) -> dict:
    return {"correlation_lag0": round(correlation[0], 3), "best_lag": max(correlation, key=correlation.get),
            "swapped_audio_correlation": round(swapped, 3)}


def model_card(record: dict) -> str:
    c, a = record["check"], record["args"]
    lm, px, rt, ch = c["landmarks"], c["pixel"], c.get("landmarks_vae_round_trip"), c.get("landmarks_chunk_held")
    return f"""# demo: a tiny Wan2.2-S2V teacher trained to talk

`WanS2VTransformer3DModel` with the `demo` config of `compress/models/demo.py` (dim 128, 4 blocks, an audio
injector after each, {sum(p.numel() for p in WanS2VTransformer3DModel(**DEMO_CONFIG).parameters()):,} parameters),
with its own components: `vae/` (small Wan2.2-style `AutoencoderKLWan`, trained), `text_encoder/` (tiny umT5, seeded, untrained;
prompt "a person talking"), `audio_encoder/` (`LogMelAudioEncoder`: standardised 80-bin log-mel at 50 Hz,
25 hidden states = shifts of -12..+12 steps, per-bin statistics fitted on the training speech).
Load it with `model: demo` in a recipe; `S2VComponents.tiny(dit)` picks these components for it and for its
quantized and pruned artifacts.

## Training (`scripts/train_demo_teacher.py`, all on CPU, seed {a['seed']}, {record['torch_threads']} threads)

- Data: the built-in synthetic talking-face set, split "train" ({len(record['train_sentences'])} sentences; the 4
  held-out ones never seen), {a['clips']} clips of {FRAMES} frames at {DEMO_SIZE}x{DEMO_SIZE}, 16 fps, espeak-ng
  voices {sorted({x['voice'] for x in record['clips']})}, identities {sorted({x['identity'] for x in record['clips']})}.
- VAE (`DEMO_VAE_CONFIG`: Wan2.2-style residual `AutoencoderKLWan`, stride 4x8x8, z_dim 16): {a['vae_steps']} AdamW
  steps (lr {a['vae_lr']}, batch {a['vae_batch']}) on single frames, MSE with the mouth region x{VAE_MOUTH_WEIGHT:g}, KL 1e-6; then,
  inflated to video (`inflate_to_video`) with only its temporal resamplers (`time_conv`) trainable, {a['vae_clip_steps']} steps
  (lr {a['vae_clip_lr']}, batch {a['vae_clip_batch']}) on whole clips [neutral face + {FRAMES} frames], each drawn back with one mouth per
  4-frame chunk, open by the chunk's mean (`chunk_held_frames`); final loss {record['vae_loss_last_50']:.4f}; latent
  mean / std fitted on whole clips. So the teacher's mouth moves once per latent frame (4 frames, 250 ms): a VAE
  this small, trained this briefly, draws a mouth that changes within a chunk as a blend of open and closed lips,
  which the face mesh reads as closed.
- DiT: {a['dit_steps']} AdamW steps (lr {a['lr']}, batch {a['dit_batch']}), flow matching (sigma ~ U(0, 1)) on clip prefixes of 16 /
  32 / 48 frames, first-clip conditioning (reference latent, no motion), text + audio dropped together 10%;
  mouth cells x{MOUTH_WEIGHT:g}; final loss {record['dit_loss_last_50']:.4f}.
- Wall time of the last run of the command: {record['wall_s']:.0f} s (phases an earlier run finished are resumed from
  their checkpoints, not counted).

## Held-out check (measured on these weights; `tests/models/test_demo_teacher.py` asserts it)

{c['clips']} clips of the held-out sentences (`compress.pipelines.demo_check.heldout_set`), {c['steps']} UniPC steps, CFG {c['guidance_scale']},
one {FRAMES}-frame clip each; generated again with the next clip's audio (another sentence). Correlations are
zero-lag Pearson correlations with the true mouth-open schedule, pooled over clips.

| clips | face mesh: lag-0 correlation | best lag | pixel measure: lag-0 correlation | best lag | faces found |
|---|---|---|---|---|---|
| generated from their own audio | {_cell(lm, 'correlation_lag0')} | {_cell(lm, 'best_lag')} | {px['correlation_lag0']} | {px['best_lag']} | {_cell(lm, 'frames_with_face')} (both audios) |
| generated from another sentence's audio | {_cell(lm, 'swapped_audio_correlation')} | - | {px['swapped_audio_correlation']} | - | - |
| the VAE's round trip of the true frames (the best the DiT can draw) | {_cell(rt, 'correlation_lag0')} | {_cell(rt, 'best_lag')} | {px['vae_round_trip_lag0']} | - | {_cell(rt, 'frames_with_face')} |
| the true frames with one mouth per latent frame (`chunk_held_frames`: the design's ceiling) | {_cell(ch, 'correlation_lag0')} | {_cell(ch, 'best_lag')} | {px['chunk_held_lag0']} | - | {_cell(ch, 'frames_with_face')} |

Face mesh: MediaPipe landmarks (`compress.face.mouth.mouth_opening`, what tier A reads); pixel measure:
darkening in the mouth box (`compress.data.mouth_opening_measure`).

Frame PSNR against the true synthetic frames: {c['psnr_db']} dB.
"""


def _cell(landmarks, key):
    return landmarks[key] if isinstance(landmarks, dict) else "not measured"


def _standardise(audio: np.ndarray) -> np.ndarray:
    """The waveform normalisation `audio_features` applies before the encoder."""
    return ((audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)).astype(np.float32)


if __name__ == "__main__":
    main()
