"""Time per clip of reference decoder layouts (`tiny-vae-decoder`, untrained), measured in the same run.

    python scripts/bench_decoder.py              # 96x96, 48 frames (12 latent frames), one thread, median of 5
    python scripts/bench_decoder.py --size 256 --threads 2

Each layout decodes one clip's latents against a reference image with `TinyVAEDecoder.decode` (channels-last, as the
pipeline runs it); the ratio column is against the first layout, the one with a pixel-resolution stage.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from compress.models.students.decoder import TinyVAEDecoder

LAYOUTS = {
    "[64, 32, 16, 8]": {"channels": [64, 32, 16, 8]},
    "[64, 32, 16], output_shuffle": {"channels": [64, 32, 16], "output_shuffle": True},
    "[64, 32, 16], output_shuffle, block: plain": {"channels": [64, 32, 16], "output_shuffle": True,
                                                   "block": "plain"},
}


def seconds_per_clip(decoder: TinyVAEDecoder, size: int, latent_frames: int, runs: int) -> float:
    gen = torch.Generator().manual_seed(0)
    latents, previous = (torch.randn(latent_frames, 16, size // 8, size // 8, generator=gen) for _ in range(2))
    reference = torch.rand(1, 3, size, size, generator=gen) * 2 - 1
    decoder.decode(latents, previous, reference)  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        decoder.decode(latents, previous, reference)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=96, help="frame side in pixels (a multiple of 8)")
    parser.add_argument("--frames", type=int, default=48, help="frames per clip (a multiple of 4)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{args.size}x{args.size}, {args.frames} frames, {args.threads} thread(s), median of {args.runs}")
    print(f"{'layout':45} {'parameters':>10} {'s / clip':>9} {'ratio':>6}")
    first = None
    for name, layout in LAYOUTS.items():
        decoder = TinyVAEDecoder(reference=True, **layout).eval()
        seconds = seconds_per_clip(decoder, args.size, args.frames // 4, args.runs)
        first = first or seconds
        params = sum(p.numel() for p in decoder.parameters())
        print(f"{name:45} {params:>10,} {seconds:9.4f} {seconds / first:6.2f}")


if __name__ == "__main__":
    main()
