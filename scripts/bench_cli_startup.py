"""Wall time of the command line's quick commands beside `python -c "import torch"`, measured in the same run.

    python scripts/bench_cli_startup.py            # 5 runs each; prints the median, min and max
    python scripts/bench_cli_startup.py --runs 9

Each command runs in a fresh interpreter (`python -m compress.cli ...`, what the `compress` script runs), from the
repository root, with its output discarded. The target is at most 1.5 s for each of the three commands.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMANDS = {
    "compress --help": ["-m", "compress.cli", "--help"],
    "compress recipe validate recipes/quickstart.yaml": ["-m", "compress.cli", "recipe", "validate",
                                                         "recipes/quickstart.yaml"],
    "compress inspect tiny": ["-m", "compress.cli", "inspect", "tiny"],
    'python -c "import torch"': ["-c", "import torch"],
}
TARGET_S = 1.5


def wall_times(args: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, *args], cwd=REPO, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per command (default 5)")
    runs = parser.parse_args().runs
    width = max(map(len, COMMANDS))
    print(f"{'command':<{width}}  median s    min s    max s  (runs: {runs})")
    for label, args in COMMANDS.items():
        times = wall_times(args, runs)
        verdict = "" if label.startswith("python") else ("  ok" if statistics.median(times) <= TARGET_S else "  SLOW")
        print(f"{label:<{width}}  {statistics.median(times):8.2f} {min(times):8.2f} {max(times):8.2f}{verdict}")


if __name__ == "__main__":
    main()
