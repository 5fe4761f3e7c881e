"""Walks a recipe's stages: resolves the source, resumes finished stages, runs the rest, writes artifacts.

`run(recipe)` is the Python face of `compress run` (and of `Recipe.run`). The runner reads a recipe through
`RunnableRecipe`, the fields and methods it needs, so it does not import `compress.recipe`.
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import torch
from rich.markup import escape

from compress.artifacts import Artifact, ArtifactWriter, DamagedArtifactError, OutputLock, remove_partials
from compress.artifacts.artifact import LEFTOVER
from compress.distributed import all_ranks_succeeded, broadcast, init_from_env
from compress.errors import CompressError, StageError, UserInputError
from compress.sources import SourceSpec, resolve_source
from compress.stages.base import Stage
from compress.stages.context import RecipeSettings, StageContext
from compress.tracking import Tracker
from compress.utils.console import Console, quiet_libraries
from compress.utils.environment import environment
from compress.utils.hashing import sha256_json
from compress.utils.paths import allowed_roots, is_inside
from compress.utils.resources import ResourceMonitor

#: bump when a change to the runner makes old artifacts unsuitable for resuming
RUNNER_VERSION = 1
#: written into the output directories the runner creates: they hold nothing but what it wrote
OUTPUT_MARK = ".compress-output"
#: what runs write into an output directory (besides the mark): artifacts, leftovers, the lock, distillation
#: checkpoints, the evaluate stage's leaderboard, wandb's files; an unmarked folder holding only these is adopted
_OWN_NAME = re.compile(rf"\d{{2,}}-.+|{LEFTOVER.pattern}|\.lock|\.checkpoints|leaderboard|wandb")


class RunnableRecipe(RecipeSettings, Protocol):
    """What the runner reads of a recipe (`compress.recipe.Recipe`)."""

    name: str
    output: str
    seed: int
    device: str
    wandb_project: str
    stages: list[Stage]

    @property
    def source_file(self) -> Path | None: ...

    def stage(self, name: str) -> Stage: ...

    def check_paths(self, root: Path) -> None: ...

    def recipe_hash(self) -> str: ...

    def to_dict(self) -> dict: ...


def run(recipe: RunnableRecipe, root: str | Path = ".", force: bool = False, from_stage: str | None = None,
        quiet: bool = False, console: Console | None = None) -> RunResult:
    """Run (or resume) a recipe's stages with `root` as the working root: finished stages whose inputs did not
    change are skipped, `force` redoes all of them, `from_stage` that one and every later one."""
    runner = Runner(recipe, Path(root), force=force, from_stage=from_stage, quiet=quiet, console=console)
    with quiet_libraries() if runner.console.quiet else contextlib.nullcontext():
        return runner.run()


@dataclass
class StageResult:
    name: str
    kind: str
    status: str  # "ran" or "skipped"
    artifact: Artifact
    wall_s: float = 0.0

    @property
    def metrics(self) -> dict:
        return self.artifact.metrics


@dataclass
class RunResult:
    output_dir: Path
    results: list[StageResult] = field(default_factory=list)

    def __getitem__(self, name: str) -> Artifact:
        return next(r.artifact for r in self.results if r.name == name)


class Runner:
    def __init__(self, recipe: RunnableRecipe, root: Path = Path("."), force: bool = False,
                 from_stage: str | None = None, quiet: bool = False, console: Console | None = None):
        self.recipe = recipe
        self.root = Path(root).resolve()
        self.force = force
        self.redo_from = recipe.stages.index(recipe.stage(from_stage)) if from_stage else None
        self.rank, self.world_size = init_from_env()
        self.console = Console(quiet=True) if self.rank != 0 else console or Console(quiet=quiet)
        self.output_dir = self.root / recipe.output
        self.roots = allowed_roots(self.root, recipe.roots)

    def run(self) -> RunResult:
        self.recipe.check_paths(self.root)
        if self.rank != 0:  # rank 0 owns the output directory; the others follow its decisions
            return self._run_stages(Tracker.off())
        self._claim_output()
        with OutputLock(self.output_dir, log=self.console.log):
            remove_partials(self.output_dir, log=self.console.log)
            tracker = Tracker(self.recipe, self.output_dir)
            try:
                return self._run_stages(tracker)
            finally:
                tracker.finish()

    def _claim_output(self) -> None:
        """Create the output directory and mark it as the runner's, or accept one it wrote: never a root itself or
        a folder holding files the toolkit did not write (its cleanup would be free to touch)."""
        out, where = self.output_dir, f"output: '{self.recipe.output}'"
        if any(is_inside(r, [out]) for r in self.roots):
            raise UserInputError(f"{where} is the working root or contains a declared root; name a folder of its "
                                 f"own, e.g. runs/{self.recipe.name}")
        if (out / OUTPUT_MARK).is_file():
            return
        foreign = sorted(p.name for p in out.iterdir() if not _OWN_NAME.fullmatch(p.name)) if out.exists() else []
        if foreign:
            raise UserInputError(f"{where}: {out} holds files this toolkit did not write ({', '.join(foreign[:5])}"
                                 f"{', ...' if len(foreign) > 5 else ''}); choose a new or empty folder (or, if an "
                                 f"earlier version wrote them, mark the folder as the toolkit's: touch "
                                 f"{out / OUTPUT_MARK})")
        out.mkdir(parents=True, exist_ok=True)
        (out / OUTPUT_MARK).write_text("compress: this folder holds a recipe's artifacts\n")

    def _run_stages(self, tracker: Tracker) -> RunResult:
        result = RunResult(self.output_dir)
        ctx = StageContext(self.recipe, self.root, self.output_dir, {}, _device(self.recipe.device), self.console,
                           self.recipe.seed, self.rank, self.world_size)
        source = resolve_source(self.recipe.model, self.root, self.roots, self.recipe.seed)
        ctx.artifacts["source"] = self._source_artifact(source, result)
        previous = "source"
        for index, stage in enumerate(self.recipe.stages, start=1):
            parent = ctx.artifacts[stage.input or previous]
            reads = {field: ctx.artifacts[name].hash for field, name in stage.referenced_stages().items()}
            key = sha256_json({"runner": RUNNER_VERSION, "stage": stage.config_dict(), "input": parent.hash,
                               "reads": reads, "data": stage.data_fingerprint(ctx), "seed": self.recipe.seed,
                               **_artifact_version(stage)})
            redo = self.force or (self.redo_from is not None and index - 1 >= self.redo_from)
            produced = self._execute(
                name=stage.display_name, kind=stage.kind, key=key, config=stage.config_dict(), parent=parent,
                final=self.output_dir / f"{index:02d}-{stage.display_name}", redo=redo,
                work=lambda out, s=stage, p=parent: s.run(p, out, ctx), result=result, all_ranks=stage.distributed,
            )
            tracker.log_stage(stage.display_name, produced.metrics)
            ctx.artifacts[stage.display_name] = produced
            if stage.produces_model:
                previous = stage.display_name
        return result

    def _source_artifact(self, source: SourceSpec, result: RunResult) -> Artifact:
        if source.artifact is not None:
            source.artifact.verify().check_pointers(self.roots)  # not ours to redo: refused when damaged
            result.results.append(StageResult("source", "artifact", "skipped", source.artifact))
            return source.artifact
        return self._execute(name="source", kind="source", key=source.key, config=source.describe(), parent=None,
                             final=self.output_dir / "00-source", redo=self.force, work=source.materialize,
                             result=result, all_ranks=False)

    def _finished(self, final: Path, key: str) -> Artifact | None:
        """The finished artifact at `final` if it was built with `key` and is intact; a damaged one is logged (its
        stage runs again); one whose manifest points outside the roots is refused."""
        if not Artifact.is_artifact(final):
            return None
        try:
            artifact = Artifact.open(final).verify()
        except DamagedArtifactError as err:
            self.console.log(f"[yellow]{escape(str(err))}: running its stage again[/]")
            return None
        return artifact.check_pointers(self.roots) if artifact.manifest.get("stage_key") == key else None

    def _execute(self, *, name: str, kind: str, key: str, config: dict, parent: Artifact | None, final: Path,
                 redo: bool, work: Callable[[ArtifactWriter], dict], result: RunResult, all_ranks: bool) -> Artifact:
        """Run one stage into an atomic writer, or skip it if its finished artifact matches `key`."""
        finished = self._finished(final, key) if self.rank == 0 and not redo else None
        if broadcast(finished is not None if self.rank == 0 else None):
            self.console.log(f"[dim]{escape(name)}: up to date, skipping ({escape(final.name)})[/]")
            result.results.append(StageResult(name, kind, "skipped", finished or Artifact.open(final)))
            return result.results[-1].artifact
        self.console.log(f"[bold]{escape(name)}[/] ({kind}) -> {escape(str(final.relative_to(self.root)))}")
        out = ArtifactWriter(final) if self.rank == 0 else None
        path = broadcast(out.path if out else None)
        out = out or ArtifactWriter(final, path)  # every rank writes into rank 0's partial directory
        try:
            metrics = {}
            with ResourceMonitor() as monitor:
                if self.rank == 0 or all_ranks:
                    metrics = work(out) or {}
            if not all_ranks_succeeded(True):
                raise StageError(f"stage '{name}' ({kind}) failed on another rank")
            if self.rank == 0:
                out.commit(self._manifest(name, kind, key, config, parent, metrics, monitor, out))
            if not all_ranks_succeeded(True):
                raise StageError(f"stage '{name}' ({kind}) could not be committed by rank 0")
        except BaseException as err:
            if not isinstance(err, StageError):
                all_ranks_succeeded(False)  # matches the other ranks' pending check
            if self.rank == 0:
                out.abort()
            if isinstance(err, CompressError) or not isinstance(err, Exception):
                raise
            raise StageError(f"stage '{name}' ({kind}) failed: {type(err).__name__}: {err}") from err
        result.results.append(StageResult(name, kind, "ran", Artifact.open(final), monitor.wall_s))
        return result.results[-1].artifact

    def _manifest(self, name, kind, key, config, parent, metrics, monitor, out: ArtifactWriter) -> dict:
        return {
            "name": name, "kind": kind, "stage_key": key, "stage_config": config, "metrics": metrics,
            "input": None if parent is None else {"name": parent.name, "path": str(parent.path), "hash": parent.hash},
            "lineage": [] if parent is None else parent.lineage,
            "recipe": {"name": self.recipe.name, "hash": self.recipe.recipe_hash(),
                       "file": str(self.recipe.source_file) if self.recipe.source_file else None},
            "environment": environment(),
            "timing": {"wall_s": round(monitor.wall_s, 3), "peak_rss_bytes": monitor.peak_rss_bytes,
                       "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
            **out.extra,
        }


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserInputError(f"device '{name}' requested but no CUDA GPU is visible; use device: cpu or auto")
    return device


def _artifact_version(stage: Stage) -> dict:
    """A stage kind's artifact version, in its resume key from version 2 on (version-1 keys stay as they were)."""
    return {"artifact_version": stage.artifact_version} if stage.artifact_version > 1 else {}
