"""The README's quickstart figures come from this script only, so they cannot go stale unnoticed.

    python scripts/quickstart_figures.py readme                 # run the quickstart afresh; rewrite README's block
    python scripts/quickstart_figures.py spread --threads 1 2   # run it once per torch thread count; print how
                                                                # far each figure moves between runs
    python scripts/quickstart_figures.py spread --threads 1 --compare runs/quickstart   # against a finished run

`readme` replaces the text between README's `quickstart-figures` markers with the run's summary table, its
leaderboard and a line naming the command, commit and machine. `tests/test_readme_figures.py` checks that the
block still lists the recipe's stages, so a recipe change without a rerun fails the tests.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
RECIPE = REPO / "recipes" / "quickstart.yaml"
BEGIN, END = "<!-- quickstart-figures:begin -->", "<!-- quickstart-figures:end -->"
SUMMARY_WIDTH, LEADERBOARD_WIDTH = 160, 120  # as `compress run` and `compress leaderboard` print to a pipe


def run_quickstart(output: str, threads: int):
    """Run the quickstart afresh into `output` (relative to the repository) with `threads` torch threads."""
    import torch

    import compress
    from compress.recipe import load_recipe
    from compress.utils.console import Console

    torch.set_num_threads(threads)
    recipe = load_recipe(RECIPE, [f"output={output}"])
    start = time.perf_counter()
    result = compress.run(recipe, REPO, force=True, console=Console(quiet=True))
    return result, time.perf_counter() - start


def figures(output_dir: Path) -> dict[str, float]:
    """Every number a reader compares: each stage's key metrics, and per evaluated model its leaderboard figures."""
    from compress.artifacts import Artifact
    from compress.artifacts.card import flat_metrics
    from compress.evaluate.records import read_records
    from compress.stages import stage_class

    out = {}
    for manifest in sorted(Path(output_dir).glob("[0-9]*-*/manifest.json")):
        stage = Artifact.open(manifest.parent).manifest
        metrics = flat_metrics(stage.get("metrics") or {})
        for key in stage_class(stage["kind"]).key_metrics if stage["kind"] != "source" else ():
            out[f"{stage['name']}.{key}"] = metrics.get(key)
    for record in read_records(Path(output_dir) / "leaderboard"):
        name, tier_a = record["artifact"]["name"], record["tiers"]["A"]
        out[f"{name}.frame_psnr"] = record["metrics"]["fidelity"].get("frame_psnr")
        for key in ("lag", "r0", "gain"):
            out[f"{name}.tier_a.{key}"] = tier_a.get(key)
    return {k: v for k, v in out.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    return f"{os.cpu_count()}-core CPU ({model or platform.machine()})"


def rendered(renderable, width: int) -> str:
    from rich.console import Console

    console = Console(width=width, record=True, file=open(os.devnull, "w"))
    console.print(renderable)
    return console.export_text().rstrip()


def block(result, wall_s: float, threads: int, revision: str) -> str:
    """The README's block: provenance, the summary table and the leaderboard, as `compress` prints them."""
    from compress.cli.run import summary_table
    from compress.evaluate.leaderboard import Board, rich_table
    from compress.evaluate.records import read_records

    board = Board.of(read_records(result.output_dir / "leaderboard"))
    minutes, seconds = divmod(round(wall_s), 60)
    return "\n".join([
        f"Written by `python scripts/quickstart_figures.py readme` at commit {revision} on a {machine()}, "
        f"{threads} torch threads: {minutes} min {seconds:02d} s for the whole recipe.", "",
        "```", rendered(summary_table(result, RECIPE.stem), SUMMARY_WIDTH), "```", "",
        "```", rendered(rich_table(board), LEADERBOARD_WIDTH), "```"])


def write_readme(text: str) -> None:
    readme = README.read_text()
    if BEGIN not in readme or END not in readme:
        raise SystemExit(f"{README}: the markers {BEGIN} and {END} are missing")
    head, rest = readme.split(BEGIN, 1)
    README.write_text(f"{head}{BEGIN}\n{text}\n{END}{rest.split(END, 1)[1]}")


def spread(runs: dict[str, dict[str, float]]) -> str:
    """Per figure that differs between runs: its value per run and the largest difference."""
    names = sorted(set.intersection(*(set(f) for f in runs.values())))
    lines = [f"{'figure':48} " + " ".join(f"{Path(run).name[-12:]:>12}" for run in runs) + f" {'spread':>10}"]
    for name in names:
        values = [runs[t][name] for t in runs]
        if max(values) != min(values):
            lines.append(f"{name:48} " + " ".join(f"{v:12.6g}" for v in values) + f" {max(values) - min(values):10.3g}")
    same = len(names) - len(lines) + 1
    return "\n".join([*lines, f"{same} of {len(names)} figures identical in every run"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    readme = sub.add_parser("readme", help="run the quickstart afresh and rewrite README's block")
    readme.add_argument("--threads", type=int, default=os.cpu_count())
    many = sub.add_parser("spread", help="run the quickstart per thread count; print the figures that differ")
    many.add_argument("--threads", type=int, nargs="*", default=[], help="default: 1 and all cores")
    many.add_argument("--compare", nargs="*", default=[], metavar="OUTPUT_DIR", help="finished runs to compare too")
    args = parser.parse_args()
    if args.command == "readme":
        from compress.utils.environment import git_revision

        revision = git_revision() or "?"  # before the run: the code it runs
        result, wall_s = run_quickstart("runs/quickstart", args.threads)
        write_readme(block(result, wall_s, args.threads, revision[:12] + revision[40:]))
        print(f"{README}: quickstart figures rewritten")
    else:
        threads = args.threads or ([] if args.compare else [1, os.cpu_count()])
        outputs = [*map(Path, args.compare),
                   *(run_quickstart(f"runs/quickstart-threads-{t}", t)[0].output_dir for t in threads)]
        print(spread({str(o): figures(o) for o in outputs}))


if __name__ == "__main__":
    main()
